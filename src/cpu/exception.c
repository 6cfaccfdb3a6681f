/*
 * Event delivery through the guest IDT (SDM vol. 3, ch. 6).
 *
 * Invariant: a fault during delivery never leaves a half-delivered frame
 * visible as the guest's state: the frame is checked and built first, and
 * registers change only once every push has succeeded.  A fault while
 * delivering becomes #DF when both events are contributory (or page faults),
 * and a fault while delivering #DF ends the run (triple fault).
 */
#include "exception.h"

#include <string.h>

#include "../cache/stats.h"
#include "../mem/vmem.h"
#include "segment.h"
#include "task.h"
#include "trace.h"

struct fault {
	unsigned vec;
	uint32_t err;
};

/* Raised by the checks below instead of vcpu_raise, so that delivery can
 * decide between serial delivery and #DF. */
static jmp_buf *delivery_env;
static struct fault delivery_fault;

_Noreturn static void delivery_raise(unsigned vec, uint32_t err)
{
	delivery_fault = (struct fault){vec, err};
	longjmp(*delivery_env, 1);
}

bool exception_has_error(unsigned vec)
{
	return vec == EXC_DF || vec == EXC_TS || vec == EXC_NP || vec == EXC_SS ||
	       vec == EXC_GP || vec == EXC_PF || vec == EXC_AC;
}

static bool contributory(unsigned vec)
{
	return vec == EXC_DE || vec == EXC_TS || vec == EXC_NP || vec == EXC_SS || vec == EXC_GP;
}

_Noreturn void vcpu_raise(struct vcpu *v, unsigned vec, bool has_err, uint32_t err)
{
	if (delivery_env)
		delivery_raise(vec, err);
	v->pending_vec = vec;
	v->pending_has_err = has_err;
	v->pending_err = err;
	longjmp(v->raise_env, 1);
}

/* Real mode (SDM vol. 3 20.1.4): CS:IP from the interrupt vector table at
 * IDTR.base, FLAGS, CS and IP pushed as words, IF, TF, AC and RF cleared;
 * no error code. */
static void deliver_real(struct vcpu *v, unsigned vec, uint32_t next_eip)
{
	if (vec * 4 + 3 > v->idtr.limit)
		delivery_raise(EXC_GP, 0);
	uint32_t entry = vmem_read_supervisor(v, v->idtr.base + vec * 4, 4);
	uint32_t sp = vmem_sp(v);
	uint16_t frame[3] = {(uint16_t)next_eip, v->seg[S_CS].sel, (uint16_t)vcpu_eflags(v)};
	uint32_t top = (sp - 6) & (v->seg[S_SS].db ? ~0u : 0xFFFFu);
	vmem_seg_lin(v, S_SS, top, 6, true); /* the whole frame first: a fault changes nothing */
	for (unsigned i = 0; i < 3; i++)
		vmem_push(v, 2, frame[2 - i]);
	seg_load_cs(v, (uint16_t)(entry >> 16), 0);
	v->hot->eip = entry & 0xFFFF;
	vcpu_set_eflags(v, vcpu_eflags(v) & ~(FL_IF | FL_TF | FL_AC | FL_RF));
}

/* A frame of `slot`-byte items on a 16-bit stack or from a 16-bit gate:
 * SP alone moves on a 16-bit stack; each item is translated before any is
 * written, so a fault leaves nothing changed.  Returns the new ESP. */
static __attribute__((noinline)) uint32_t push_frame_narrow(struct vcpu *v, const struct seg_cache *ss, uint32_t esp,
							    const uint32_t *frame, unsigned words, unsigned slot,
							    uint32_t ext)
{
	uint32_t new_esp = esp - slot * words;
	if (!ss->db)
		new_esp = (esp & 0xFFFF0000u) | (new_esp & 0xFFFF);
	uint32_t off = ss->db ? new_esp : new_esp & 0xFFFF;
	if (off + slot * words - 1 > ss->limit && ss->limit != 0xFFFFFFFFu)
		delivery_raise(EXC_SS, ext);
	for (unsigned i = 0; i < words; i++)
		vmem_translate_as(v, ss->base + off + slot * i, true, false);
	for (unsigned i = 0; i < words; i++)
		vmem_write_supervisor(v, ss->base + off + slot * i, slot, frame[i]);
	return new_esp;
}

/* Builds the frame and switches to the handler; faults go to delivery_raise. */
static void deliver_once(struct vcpu *v, unsigned vec, bool has_err, uint32_t err, bool soft,
			 uint32_t next_eip)
{
	uint32_t ext = soft ? 0 : 1;
	uint32_t gate_err = vec * 8 + 2 + ext;
	uint32_t lo, hi;

	if (!(v->cr0 & CR0_PE)) {
		deliver_real(v, vec, next_eip);
		return;
	}
	if (vec * 8 + 7 > v->idtr.limit)
		delivery_raise(EXC_GP, gate_err);
	/* IDT and descriptor reads are supervisor accesses whatever the CPL. */
	uint32_t gate[2];
	vmem_read_words(v, v->idtr.base + vec * 8, gate, 2, true);
	lo = gate[0];
	hi = gate[1];
	unsigned type = (hi >> 8) & 0x1F, dpl = (hi >> 13) & 3;
	if (type != 0x0E && type != 0x0F && type != 0x06 && type != 0x07 && type != 0x05)
		delivery_raise(EXC_GP, gate_err);
	/* A 16-bit interrupt or trap gate (6, 7) has a 16-bit offset and a
	 * frame of words. */
	unsigned slot = type & 8 ? 4 : 2;
	if (soft && dpl < v->cpl)
		delivery_raise(EXC_GP, gate_err);
	if (!(hi & 0x8000))
		delivery_raise(EXC_NP, gate_err);
	if (type == 0x05) {
		/* A task gate: the handler is a task of its own (SDM 6.12.2). */
		task_switch(v, (uint16_t)(lo >> 16), TASK_INT, ext, next_eip, has_err, err);
		return;
	}

	uint16_t sel = (uint16_t)(lo >> 16);
	uint32_t offset = (lo & 0xFFFF) | (slot == 4 ? hi & 0xFFFF0000u : 0);
	struct seg_cache cs;
	uint32_t dlo, dhi;
	if ((sel & ~3u) == 0)
		delivery_raise(EXC_GP, ext);
	if (!seg_read_descriptor(v, sel, &dlo, &dhi))
		delivery_raise(EXC_GP, (sel & ~3u) + ext);
	seg_decode(dlo, dhi, &cs);
	if (!cs.s || !(cs.type & 8) || cs.dpl > v->cpl)
		delivery_raise(EXC_GP, (sel & ~3u) + ext);
	if (!cs.p)
		delivery_raise(EXC_NP, (sel & ~3u) + ext);
	bool from_vm86 = v->vm;
	if (from_vm86 && ((cs.type & 4) || cs.dpl != 0))
		delivery_raise(EXC_GP, (sel & ~3u) + ext); /* virtual-8086 mode leaves for ring 0 only */
	unsigned new_cpl = (cs.type & 4) ? v->cpl : cs.dpl;

	/* The frame, lowest address first: [error], EIP, CS, EFLAGS, for a
	 * change to an inner level the old ESP and SS, and from virtual-8086
	 * mode ES, DS, FS and GS, which are then nulled (SDM 20.3.1.1). */
	uint32_t frame[10], words = 0;
	if (has_err)
		frame[words++] = err;
	frame[words++] = next_eip;
	frame[words++] = v->seg[S_CS].sel;
	frame[words++] = vcpu_eflags(v);
	struct seg_cache ss = v->seg[S_SS];
	uint16_t ss_sel = v->seg[S_SS].sel;
	uint32_t esp = v->hot->gpr[R_ESP];
	if (new_cpl < v->cpl) {
		/* Stack switch through the TSS (SDM 6.12.1). */
		uint32_t new_esp;
		uint16_t new_ss;
		if (!task_stack(v, new_cpl, &new_esp, &new_ss))
			delivery_raise(EXC_TS, (v->tr.sel & ~3u) + ext);
		unsigned fault = seg_check_stack(v, new_ss, new_cpl, &ss);
		if (fault)
			delivery_raise(fault, (new_ss & ~3u) + ext);
		frame[words++] = esp;
		frame[words++] = ss_sel;
		if (from_vm86) {
			frame[words++] = v->seg[S_ES].sel;
			frame[words++] = v->seg[S_DS].sel;
			frame[words++] = v->seg[S_FS].sel;
			frame[words++] = v->seg[S_GS].sel;
		}
		ss_sel = new_ss;
		esp = new_esp;
	} else if (new_cpl > v->cpl) {
		delivery_raise(EXC_GP, (sel & ~3u) + ext);
	}
	uint32_t new_esp;
	if (__builtin_expect(slot == 4 && ss.db, 1)) {
		new_esp = esp - 4 * words;
		if (new_esp + 4 * words - 1 > ss.limit && ss.limit != 0xFFFFFFFFu)
			delivery_raise(EXC_SS, ext);
		vmem_write_words_supervisor(v, ss.base + new_esp, frame, words);
	} else {
		new_esp = push_frame_narrow(v, &ss, esp, frame, words, slot, ext);
	}

	uint32_t fl = vcpu_eflags(v) & ~(FL_TF | FL_NT | FL_RF | FL_VM);
	if (type == 0x0E || type == 0x06)
		fl &= ~FL_IF;
	vcpu_set_eflags(v, fl); /* VM first: the loads below are protected mode's */
	if (new_cpl != v->cpl)
		seg_set(v, S_SS, ss_sel, &ss);
	v->hot->gpr[R_ESP] = new_esp;
	seg_load_cs_decoded(v, sel, new_cpl, &cs, dhi);
	v->hot->eip = offset;
	if (from_vm86) {
		static const enum sreg data[] = {S_ES, S_DS, S_FS, S_GS};
		for (unsigned i = 0; i < 4; i++)
			seg_set(v, data[i], 0, &(struct seg_cache){0});
	}
}

void vcpu_deliver(struct vcpu *v, unsigned vec_in, bool has_err_in, uint32_t err_in, bool soft_in,
		  uint32_t next_eip_in)
{
	volatile unsigned vec = vec_in;
	volatile bool has_err = has_err_in, soft = soft_in;
	volatile uint32_t err = err_in, next_eip = next_eip_in;
	jmp_buf env;

	v->step_due = false; /* this event, not a single-step trap, ends the instruction */
	for (;;) {
		trace_interrupt(v, vec, has_err ? err : 0, soft);
		delivery_env = &env;
		if (setjmp(env) == 0) {
			deliver_once(v, vec, has_err, err, soft, next_eip);
			delivery_env = NULL;
			if (vec < 32 && !soft)
				v->stats->guest_exceptions++;
			else
				v->stats->guest_interrupts++;
			return;
		}
		delivery_env = NULL;
		struct fault f = delivery_fault;
		if (vec == EXC_DF) {
			vcpu_stop(v, BT86_EXIT_TRIPLE_FAULT, "triple fault: vector %u (error %#x) while delivering #DF at eip %#x",
				  f.vec, f.err, v->hot->eip);
			return;
		}
		bool df = (contributory(vec) && contributory(f.vec)) ||
			  (vec == EXC_PF && (contributory(f.vec) || f.vec == EXC_PF));
		if (df) {
			vec = EXC_DF;
			err = 0;
		} else {
			vec = f.vec;
			err = f.err;
		}
		has_err = exception_has_error(vec);
		soft = false;
		next_eip = v->hot->eip;
	}
}
