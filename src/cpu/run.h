/*
 * The VCPU's life: set-up to the state the boot protocol leaves, the
 * execution loop (look up or translate the block at EIP, run it, handle its
 * exit), and the signal handlers through which the host reports faults in
 * translated code.
 */
#ifndef BT86_RUN_H
#define BT86_RUN_H

#include <stddef.h>

#include "vcpu.h"

struct xlate;

int vcpu_init(struct vcpu *v, struct gmem *mem, struct tc *tc, struct stats *stats,
	      struct board *board, char *err, size_t errlen);
void vcpu_destroy(struct vcpu *v);

/* Installs the fault handlers for translated code on the calling thread. */
int vcpu_signals_install(struct vcpu *v, char *err, size_t errlen);

/* Runs until the guest ends the run (exit port, triple fault, a stop). */
void vcpu_run(struct vcpu *v, struct xlate *x);

/* Asks the run to stop at the next block boundary.  Async-signal-safe: the
 * host's SIGINT/SIGTERM handlers call it. */
void vcpu_request_stop(struct vcpu *v);

/* switch.S */
void vcpu_switch_enter(struct vcpu_hot *hot, uint64_t host_pc);
void vcpu_exit_gate(void);
void vcpu_exit_common(void);

#endif
