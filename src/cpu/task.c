#include "task.h"

#include <string.h>

#include "../mem/vmem.h"
#include "emulate.h"
#include "exception.h"
#include "run.h"
#include "segment.h"

/* The 32-bit TSS (SDM vol. 3 fig. 7-2), by dword: the back link, CR3, EIP,
 * EFLAGS, EAX..EDI, the selectors ES, CS, SS, DS, FS, GS (enum sreg's
 * order) and the LDT selector; 104 bytes at least. */
enum {
	TSS_LINK = 0,
	TSS_CR3 = 7,
	TSS_EIP = 8,
	TSS_EFLAGS = 9,
	TSS_GPR = 10,
	TSS_SEG = 18,
	TSS_LDT = 24,
	TSS_WORDS = 26,
};
#define TSS_MIN_LIMIT (4u * TSS_WORDS - 1)

/* Sets or clears the busy bit of the GDT's TSS descriptor `sel`. */
static void set_busy(struct vcpu *v, uint16_t sel, bool busy)
{
	uint32_t at = v->gdtr.base + (sel & ~7u) + 5;
	uint32_t access = vmem_read_supervisor(v, at, 1);
	vmem_write_supervisor(v, at, 1, busy ? access | 2u : access & ~2u);
}

/* The new task's LDT: null, or an LDT descriptor in the GDT. */
static void load_ldt(struct vcpu *v, uint16_t sel)
{
	uint32_t lo, hi;
	struct seg_cache c = {0};
	if ((sel & ~3u) == 0) {
		memset(&v->ldtr, 0, sizeof v->ldtr);
		return;
	}
	if ((sel & 4) || !seg_read_descriptor(v, sel, &lo, &hi))
		vcpu_raise(v, EXC_TS, true, sel & ~3u);
	seg_decode(lo, hi, &c);
	if (c.s || c.type != 2 || !c.p)
		vcpu_raise(v, EXC_TS, true, sel & ~3u);
	c.sel = sel;
	v->ldtr = c;
}

void task_switch(struct vcpu *v, uint16_t sel, enum task_cause cause, uint32_t ext, uint32_t next_eip, bool has_err,
		 uint32_t err)
{
	uint32_t code = (sel & ~3u) | ext, lo, hi;
	unsigned bad = cause == TASK_IRET ? EXC_TS : EXC_GP;
	struct seg_cache tss = {0};

	/* The new TSS: in the GDT, a 32-bit TSS, busy only for a return to
	 * it, present, 104 bytes at least. */
	if ((sel & 4) || !seg_read_descriptor(v, sel, &lo, &hi))
		vcpu_raise(v, bad, true, code);
	seg_decode(lo, hi, &tss);
	unsigned type = tss.type & ~2u;
	if (!tss.s && type == 1) {
		vcpu_stop(v, BT86_EXIT_UNSUPPORTED, "unsupported: task switch to a 16-bit TSS (%#x) at eip %#x", sel,
			  v->hot->eip);
		return;
	}
	if (tss.s || type != 9 || (cause == TASK_IRET) != ((tss.type & 2) != 0))
		vcpu_raise(v, bad, true, code);
	if (!tss.p)
		vcpu_raise(v, EXC_NP, true, code);
	if (tss.limit < TSS_MIN_LIMIT)
		vcpu_raise(v, EXC_TS, true, code);
	/* Read whole before anything changes: a #PF here is the old task's. */
	uint32_t n[TSS_WORDS];
	vmem_read_words(v, tss.base, n, TSS_WORDS, true);
	if (n[TSS_EFLAGS] & FL_VM) {
		vcpu_stop(v, BT86_EXIT_UNSUPPORTED, "unsupported: task switch into virtual-8086 mode (TSS %#x) at eip %#x",
			  sel, v->hot->eip);
		return;
	}

	/* The old task's state, into its TSS: EIP, EFLAGS (NT cleared by a
	 * return), the general registers as dwords, the selectors as words. */
	uint32_t old[TSS_SEG - TSS_EIP];
	old[0] = next_eip;
	old[1] = vcpu_eflags(v) & (cause == TASK_IRET ? ~FL_NT : ~0u);
	memcpy(&old[2], v->hot->gpr, sizeof v->hot->gpr);
	vmem_write_words_supervisor(v, v->tr.base + 4 * TSS_EIP, old, TSS_SEG - TSS_EIP);
	for (enum sreg s = S_ES; s < S_COUNT; s++)
		vmem_write_supervisor(v, v->tr.base + 4 * (TSS_SEG + s), 2, v->seg[s].sel);
	if (cause == TASK_JMP || cause == TASK_IRET)
		set_busy(v, v->tr.sel, false);

	/* The new task: nested under the old for a call or an interrupt. */
	if (cause == TASK_CALL || cause == TASK_INT) {
		vmem_write_supervisor(v, tss.base + 4 * TSS_LINK, 2, v->tr.sel);
		n[TSS_EFLAGS] |= FL_NT;
	}
	if (cause != TASK_IRET)
		set_busy(v, sel, true);
	tss.type |= 2;
	tss.sel = sel;
	v->tr = tss;
	uint32_t old_cr0 = v->cr0;
	v->cr0 |= CR0_TS;
	emu_cr0_fpu_follow(v, old_cr0);
	if (v->cr0 & CR0_PG)
		emu_load_cr3(v, n[TSS_CR3]);
	vcpu_set_eflags(v, n[TSS_EFLAGS]);
	memcpy(v->hot->gpr, &n[TSS_GPR], sizeof v->hot->gpr);
	v->hot->eip = n[TSS_EIP];
	/* From here a fault is the new task's (its EIP is the one saved). */
	load_ldt(v, (uint16_t)n[TSS_LDT]);
	seg_load_task(v, S_CS, (uint16_t)n[TSS_SEG + S_CS]);
	if (v->stopped)
		return;
	static const enum sreg rest[] = {S_SS, S_ES, S_DS, S_FS, S_GS};
	for (unsigned i = 0; i < sizeof rest / sizeof rest[0]; i++)
		seg_load_task(v, rest[i], (uint16_t)n[TSS_SEG + rest[i]]);
	if (has_err)
		vmem_push(v, 4, err);
	vcpu_follow_windows(v);
}
