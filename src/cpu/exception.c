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

/* Builds the frame and switches to the handler; faults go to delivery_raise. */
static void deliver_once(struct vcpu *v, unsigned vec, bool has_err, uint32_t err, bool soft,
			 uint32_t next_eip)
{
	uint32_t ext = soft ? 0 : 1;
	uint32_t gate_err = vec * 8 + 2 + ext;
	uint32_t lo, hi;

	if (vec * 8 + 7 > v->idtr.limit)
		delivery_raise(EXC_GP, gate_err);
	lo = vmem_read(v, v->idtr.base + vec * 8, 4);
	hi = vmem_read(v, v->idtr.base + vec * 8 + 4, 4);
	unsigned type = (hi >> 8) & 0x1F, dpl = (hi >> 13) & 3;
	if (type != 0x0E && type != 0x0F) {
		if (type == 0x05 || type == 0x06 || type == 0x07) {
			vcpu_stop(v, 1, "unsupported: %s gate for vector %u at eip %#x",
				  type == 0x05 ? "task" : "16-bit", vec, v->hot->eip);
			return;
		}
		delivery_raise(EXC_GP, gate_err);
	}
	if (soft && dpl < v->cpl)
		delivery_raise(EXC_GP, gate_err);
	if (!(hi & 0x8000))
		delivery_raise(EXC_NP, gate_err);

	uint16_t sel = (uint16_t)(lo >> 16);
	uint32_t offset = (lo & 0xFFFF) | (hi & 0xFFFF0000u);
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
	unsigned new_cpl = (cs.type & 4) ? v->cpl : cs.dpl;
	if (new_cpl != v->cpl) {
		vcpu_stop(v, 1, "unsupported: interrupt %u changes privilege (CPL %u -> %u) at eip %#x",
			  vec, v->cpl, new_cpl, v->hot->eip);
		return;
	}

	/* Push the frame on the current stack, all or nothing. */
	uint32_t esp = v->hot->gpr[R_ESP];
	uint32_t frame[4] = {next_eip, v->seg[S_CS].sel, vcpu_eflags(v), 0};
	unsigned words = 3;
	if (has_err) {
		memmove(frame + 1, frame, 3 * sizeof frame[0]);
		frame[0] = err;
		words = 4;
	}
	uint32_t new_esp = esp - 4 * words;
	uint32_t lin = vmem_seg_lin(v, S_SS, new_esp, 4 * words, true);
	for (unsigned i = 0; i < words; i++)
		vmem_write(v, lin + 4 * i, 4, frame[i]);

	v->hot->gpr[R_ESP] = new_esp;
	seg_load_cs(v, sel, new_cpl);
	v->hot->eip = offset;
	uint32_t fl = vcpu_eflags(v) & ~(FL_TF | FL_NT | FL_RF | FL_VM);
	if (type == 0x0E)
		fl &= ~FL_IF;
	vcpu_set_eflags(v, fl);
}

void vcpu_deliver(struct vcpu *v, unsigned vec_in, bool has_err_in, uint32_t err_in, bool soft_in,
		  uint32_t next_eip_in)
{
	volatile unsigned vec = vec_in;
	volatile bool has_err = has_err_in, soft = soft_in;
	volatile uint32_t err = err_in, next_eip = next_eip_in;
	jmp_buf env;

	for (;;) {
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
			vcpu_stop(v, 1, "triple fault: vector %u (error %#x) while delivering #DF at eip %#x",
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
