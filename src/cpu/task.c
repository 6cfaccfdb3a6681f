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

/* The 16-bit TSS (SDM vol. 3 fig. 7-11), by word: the back link, SP0..SS2,
 * IP, FLAGS, AX..DI, the selectors ES, CS, SS, DS and the LDT selector;
 * 44 bytes at least.  It has no CR3, FS or GS. */
enum {
	T16_IP = 7,
	T16_FLAGS = 8,
	T16_GPR = 9,
	T16_SEG = 17,
	T16_LDT = 21,
	T16_WORDS = 22,
};
#define TSS16_MIN_LIMIT (2u * T16_WORDS - 1)

/* A task's state as a TSS of either size holds it. */
struct task_state {
	uint32_t cr3, eip, eflags, gpr[8], ldt;
	uint16_t seg[S_COUNT];
};

bool task_stack(struct vcpu *v, unsigned cpl, uint32_t *esp, uint16_t *ss)
{
	if (!(v->tr.type & 8)) {
		uint32_t at = 2 + 4 * cpl;
		if (!v->tr.valid || at + 3 > v->tr.limit)
			return false;
		uint32_t w = vmem_read_supervisor(v, v->tr.base + at, 4);
		*esp = w & 0xFFFF;
		*ss = (uint16_t)(w >> 16);
		return true;
	}
	uint32_t at = 4 + 8 * cpl, stack[2];
	if (!v->tr.valid || at + 5 > v->tr.limit)
		return false;
	if (at + 7 <= v->tr.limit) { /* one access when the limit covers SSn's high half */
		vmem_read_words(v, v->tr.base + at, stack, 2, true);
	} else {
		stack[0] = vmem_read_supervisor(v, v->tr.base + at, 4);
		stack[1] = vmem_read_supervisor(v, v->tr.base + at + 4, 2);
	}
	*esp = stack[0];
	*ss = (uint16_t)stack[1];
	return true;
}

/* The new task's state from its TSS, read whole (a #PF here is the old
 * task's).  A 16-bit TSS gives the low halves of EIP, EFLAGS and the
 * general registers, whose high halves keep the old task's (the SDM leaves
 * them undefined), and null FS and GS, as QEMU does. */
static void read_state(struct vcpu *v, const struct seg_cache *tss, struct task_state *t)
{
	if (tss->type & 8) {
		uint32_t n[TSS_WORDS];
		vmem_read_words(v, tss->base, n, TSS_WORDS, true);
		t->cr3 = n[TSS_CR3];
		t->eip = n[TSS_EIP];
		t->eflags = n[TSS_EFLAGS];
		memcpy(t->gpr, &n[TSS_GPR], sizeof t->gpr);
		for (enum sreg s = S_ES; s < S_COUNT; s++)
			t->seg[s] = (uint16_t)n[TSS_SEG + s];
		t->ldt = n[TSS_LDT];
		return;
	}
	uint32_t d[T16_WORDS / 2];
	vmem_read_words(v, tss->base, d, T16_WORDS / 2, true);
	const uint16_t *w = (const uint16_t *)d;
	t->cr3 = v->cr3;
	t->eip = w[T16_IP];
	t->eflags = (vcpu_eflags(v) & 0xFFFF0000u) | w[T16_FLAGS];
	for (unsigned i = 0; i < 8; i++)
		t->gpr[i] = (v->hot->gpr[i] & 0xFFFF0000u) | w[T16_GPR + i];
	for (enum sreg s = S_ES; s <= S_DS; s++)
		t->seg[s] = w[T16_SEG + s];
	t->seg[S_FS] = t->seg[S_GS] = 0;
	t->ldt = w[T16_LDT];
}

/* The old task's EIP, EFLAGS, general registers and selectors, into its
 * TSS of either size. */
static void save_state(struct vcpu *v, uint32_t eip, uint32_t eflags)
{
	if (v->tr.type & 8) {
		uint32_t old[TSS_SEG - TSS_EIP];
		old[0] = eip;
		old[1] = eflags;
		memcpy(&old[2], v->hot->gpr, sizeof v->hot->gpr);
		vmem_write_words_supervisor(v, v->tr.base + 4 * TSS_EIP, old, TSS_SEG - TSS_EIP);
		for (enum sreg s = S_ES; s < S_COUNT; s++)
			vmem_write_supervisor(v, v->tr.base + 4 * (TSS_SEG + s), 2, v->seg[s].sel);
		return;
	}
	uint32_t d[(T16_LDT - T16_IP) / 2]; /* IP .. DS: 14 words */
	uint16_t *w = (uint16_t *)d;
	w[0] = (uint16_t)eip;
	w[1] = (uint16_t)eflags;
	for (unsigned i = 0; i < 8; i++)
		w[2 + i] = (uint16_t)v->hot->gpr[i];
	for (enum sreg s = S_ES; s <= S_DS; s++)
		w[T16_SEG - T16_IP + s] = v->seg[s].sel;
	vmem_write_words_supervisor(v, v->tr.base + 2 * T16_IP, d, (T16_LDT - T16_IP) / 2);
}

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

	/* The new TSS: in the GDT, a TSS of either size, busy only for a
	 * return to it, present, large enough for its size. */
	if ((sel & 4) || !seg_read_descriptor(v, sel, &lo, &hi))
		vcpu_raise(v, bad, true, code);
	seg_decode(lo, hi, &tss);
	unsigned type = tss.type & ~2u;
	if (tss.s || (type != 9 && type != 1) || (cause == TASK_IRET) != ((tss.type & 2) != 0))
		vcpu_raise(v, bad, true, code);
	if (!tss.p)
		vcpu_raise(v, EXC_NP, true, code);
	if (tss.limit < (type == 9 ? TSS_MIN_LIMIT : TSS16_MIN_LIMIT))
		vcpu_raise(v, EXC_TS, true, code);
	struct task_state n;
	read_state(v, &tss, &n);

	/* The old task's state, into its TSS (NT cleared by a return). */
	save_state(v, next_eip, vcpu_eflags(v) & (cause == TASK_IRET ? ~FL_NT : ~0u));
	if (cause == TASK_JMP || cause == TASK_IRET)
		set_busy(v, v->tr.sel, false);

	/* The new task: nested under the old for a call or an interrupt. */
	if (cause == TASK_CALL || cause == TASK_INT) {
		vmem_write_supervisor(v, tss.base + 4 * TSS_LINK, 2, v->tr.sel);
		n.eflags |= FL_NT;
	}
	if (cause != TASK_IRET)
		set_busy(v, sel, true);
	tss.type |= 2;
	tss.sel = sel;
	v->tr = tss;
	uint32_t old_cr0 = v->cr0;
	v->cr0 |= CR0_TS;
	emu_cr0_fpu_follow(v, old_cr0);
	if ((v->cr0 & CR0_PG) && type == 9)
		emu_load_cr3(v, n.cr3);
	vcpu_set_eflags(v, n.eflags);
	memcpy(v->hot->gpr, n.gpr, sizeof v->hot->gpr);
	v->hot->eip = n.eip;
	/* From here a fault is the new task's (its EIP is the one saved). */
	load_ldt(v, (uint16_t)n.ldt);
	if (v->vm) {
		/* A virtual-8086 task (EFLAGS.VM from its TSS): CPL 3, each
		 * selector a base of sixteen times it. */
		v->cpl = 3;
		seg_load_cs(v, n.seg[S_CS], 3);
		for (enum sreg s = S_ES; s < S_COUNT; s++)
			if (s != S_CS)
				seg_load(v, s, n.seg[s]);
	} else {
		seg_load_task(v, S_CS, n.seg[S_CS]);
		if (v->stopped)
			return;
		static const enum sreg rest[] = {S_SS, S_ES, S_DS, S_FS, S_GS};
		for (unsigned i = 0; i < sizeof rest / sizeof rest[0]; i++)
			seg_load_task(v, rest[i], n.seg[rest[i]]);
	}
	if (has_err) /* as wide as the new TSS */
		vmem_push(v, type == 9 ? 4 : 2, err);
	vcpu_follow_windows(v);
}
