/*
 * Hardware task switching (SDM vol. 3 ch. 7): far jmp and call to a TSS
 * or a task gate, iret with NT set, and interrupts and exceptions through
 * a task gate in the IDT.
 */
#ifndef BT86_TASK_H
#define BT86_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "vcpu.h"

enum task_cause { TASK_JMP, TASK_CALL, TASK_IRET, TASK_INT };

/* Switches to the task of the TSS (32- or 16-bit) that GDT selector `sel` names,
 * for `cause`: the checks on the new TSS (faults there leave the old task
 * as it was, with error code sel | ext), the old task's state saved in its
 * TSS with `next_eip` as its EIP, busy bits and the back link as the
 * cause wants them, CR0.TS set, then the new task's CR3, registers, LDT
 * and segments loaded (faults there happen in the new task) and, for an
 * exception with an error code (has_err), `err` pushed on its stack.
 * Ends with EIP the new task's.  The caller has checked the gate or the
 * TSS descriptor's privilege. */
void task_switch(struct vcpu *v, uint16_t sel, enum task_cause cause, uint32_t ext, uint32_t next_eip, bool has_err,
		 uint32_t err);

/* The stack for CPL `cpl` (0-2) from the current TSS, of either size:
 * false when the TSS's limit does not hold it (the caller's #TS). */
bool task_stack(struct vcpu *v, unsigned cpl, uint32_t *esp, uint16_t *ss);

#endif
