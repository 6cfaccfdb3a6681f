#include "vcpu.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

#include "../cache/tc.h"
#include "run.h"
#include "segment.h"

int vcpu_init(struct vcpu *v, struct gmem *mem, struct shadow *shadow, struct tc *tc,
	      struct stats *stats, struct board *board, char *err, size_t errlen)
{
	memset(v, 0, sizeof *v);
	v->hot = aligned_alloc(64, sizeof *v->hot);
	if (!v->hot) {
		snprintf(err, errlen, "out of memory for the VCPU");
		return -1;
	}
	memset(v->hot, 0, sizeof *v->hot);
	v->hot->exit_gate = (uint64_t)(uintptr_t)vcpu_exit_gate;
	v->hot->jtab = (uint64_t)(uintptr_t)tc->base;
	v->mem = mem;
	v->shadow = shadow;
	v->tc = tc;
	v->stats = stats;
	v->board = board;
	/* The guest's FPU starts as after FNINIT with MXCSR at its reset value. */
	__asm__ volatile("fninit; fxsave64 %0" : "=m"(v->hot->fx_guest));
	uint32_t mxcsr = 0x1F80;
	memcpy(v->hot->fx_guest + 24, &mxcsr, 4);
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
	v->tr.type = 0xB;
	v->gdtr.limit = 0xFFFF;
	v->idtr.limit = 0x3FF;
	vcpu_set_eflags(v, 0x2 | FL_PF);
	seg_reload_disarm(v);
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	free(v->hot);
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
