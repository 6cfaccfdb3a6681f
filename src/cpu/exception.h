/*
 * Exceptions and interrupts: raising a guest exception from inside the
 * monitor, and delivering events through the guest IDT (interrupt and trap
 * gates, error codes, nested faults, #DF, triple fault).
 */
#ifndef BT86_EXCEPTION_H
#define BT86_EXCEPTION_H

#include <stdbool.h>
#include <stdint.h>

#include "vcpu.h"

/* Unwinds to the top of the execution loop, which delivers the exception
 * for the instruction at hot->eip.  Guest state must already be as it was
 * before that instruction. */
_Noreturn void vcpu_raise(struct vcpu *v, unsigned vec, bool has_err, uint32_t err);

/* Delivers an event: `soft` for int n/int3/into (pushes next_eip and checks
 * the gate's DPL), otherwise an exception or external interrupt whose
 * pushed EIP is next_eip (the faulting instruction for faults). */
void vcpu_deliver(struct vcpu *v, unsigned vec, bool has_err, uint32_t err, bool soft,
		  uint32_t next_eip);

/* Whether the architecture pushes an error code for this exception vector. */
bool exception_has_error(unsigned vec);

#endif
