#include "vcpu.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <x86intrin.h>

#include "../cache/tc.h"
#include "../mem/shadow.h"
#include "run.h"
#include "segment.h"

/* The hot part and the soft TLB's tables (ring 3's, ring 0's), reached
 * from r15. */
#define VCPU_HOT_MAP_BYTES (VC_KSTLB_WRITE + STLB_TABLE_BYTES)

int vcpu_init(struct vcpu *v, struct gmem *mem, struct shadow *shadow, struct tc *tc,
	      struct stats *stats, struct board *board, char *err, size_t errlen)
{
	memset(v, 0, sizeof *v);
	_Static_assert(sizeof *v->hot <= VC_STLB_READ && VC_STLB_WRITE == VC_STLB_READ + STLB_TABLE_BYTES &&
			       VC_KSTLB_READ == VC_STLB_WRITE + STLB_TABLE_BYTES &&
			       VC_KSTLB_WRITE == VC_KSTLB_READ + STLB_TABLE_BYTES,
		       "the soft TLB's tables follow the hot part");
	void *hot = mmap(NULL, VCPU_HOT_MAP_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			 -1, 0);
	if (hot == MAP_FAILED) {
		snprintf(err, errlen, "out of memory for the VCPU");
		return -1;
	}
	v->hot = hot;
	stlb_attach(&shadow->soft, (uint64_t *)((uint8_t *)hot + VC_STLB_READ),
		    (uint64_t *)((uint8_t *)hot + VC_STLB_WRITE), (uint64_t *)((uint8_t *)hot + VC_KSTLB_READ),
		    (uint64_t *)((uint8_t *)hot + VC_KSTLB_WRITE), &v->hot->soft_budget);
	v->hot->exit_gate = (uint64_t)(uintptr_t)vcpu_exit_gate;
	v->hot->one = 1;
	v->hot->jtab = (uint64_t)(uintptr_t)tc->base;
	v->mem = mem;
	v->shadow = shadow;
	v->tc = tc;
	v->stats = stats;
	v->board = board;
	/* The guest's FPU starts as after FNINIT (this thread's x87 is the
	 * guest's from now on: switch.S), SSE registers zero and MXCSR at its
	 * reset value. */
	__asm__ volatile("fninit");
	memset(v->hot->fx_guest, 0, sizeof v->hot->fx_guest);
	uint32_t mxcsr = 0x1F80;
	memcpy(v->hot->fx_guest + FX_MXCSR, &mxcsr, 4);
	/* As a Multiboot loader leaves it, and exactly as QEMU's Multiboot
	 * ROM does (where the specification leaves a choice): protected
	 * mode, paging off, flat 4 GiB segments, interrupts disabled. */
	v->cr0 = CR0_PE | CR0_ET;
	v->cpl = 0;
	seg_set_flat(v, S_CS, 0x08, true);
	seg_set_flat(v, S_DS, 0x10, false);
	seg_set_flat(v, S_ES, 0x10, false);
	seg_set_flat(v, S_SS, 0x10, false);
	seg_set_flat(v, S_FS, 0x10, false);
	seg_set_flat(v, S_GS, 0x10, false);
	/* LDTR and TR as at reset (SDM vol. 3 table 9-1), and as QEMU
	 * leaves them: base 0, limit 0xFFFF, present. */
	v->ldtr = (struct seg_cache){.limit = 0xFFFF, .type = 0x2, .p = true, .valid = true};
	v->tr = (struct seg_cache){.limit = 0xFFFF, .type = 0xB, .p = true, .valid = true};
	v->dr[6] = DR6_FIXED_1;
	v->dr[7] = DR7_FIXED_1;
	v->gdtr.limit = 0xFFFF;
	v->idtr.limit = 0x3FF;
	vcpu_set_eflags(v, 0x2 | FL_PF);
	seg_reload_disarm(v);
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->hot) {
		stlb_attach(&v->shadow->soft, NULL, NULL, NULL, NULL, NULL);
		munmap(v->hot, VCPU_HOT_MAP_BYTES);
	}
	v->hot = NULL;
}

void vcpu_stop(struct vcpu *v, int status, const char *fmt, ...)
{
	va_list ap;

	if (v->stopped)
		return;
	v->stopped = true;
	v->exit_status = status;
	v->stop_reason[0] = 0;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(v->stop_reason, sizeof v->stop_reason, fmt, ap);
		va_end(ap);
	}
}

void vcpu_fx_read(const struct vcpu *v, struct vcpu_fx *fx)
{
	__asm__ volatile("fxsave %0" : "=m"(*fx));
	memcpy(&fx->mxcsr, v->hot->fx_guest + FX_MXCSR, sizeof fx->mxcsr);
	memcpy(fx->xmm, v->hot->fx_guest + FX_XMM, sizeof fx->xmm);
}

void vcpu_fx_write(struct vcpu *v, const struct vcpu_fx *fx)
{
	uint32_t mon_mxcsr;
	/* fxrstor loads MXCSR and the XMM registers too: the monitor's MXCSR
	 * comes back, and no XMM value of the compiler's lives across it. */
	__asm__ volatile("stmxcsr %0" : "=m"(mon_mxcsr));
	__asm__ volatile("fxrstor %0"
			 :
			 : "m"(*fx)
			 : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
			   "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory");
	__asm__ volatile("ldmxcsr %0" : : "m"(mon_mxcsr));
	memcpy(v->hot->fx_guest + FX_MXCSR, &fx->mxcsr, sizeof fx->mxcsr);
	memcpy(v->hot->fx_guest + FX_XMM, fx->xmm, sizeof fx->xmm);
}
