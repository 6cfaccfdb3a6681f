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

int vcpu_init(struct vcpu *v, struct gmem *mem, struct shadow *shadow, struct tc *tc,
	      struct stats *stats, struct board *board, char *err, size_t errlen);
void vcpu_destroy(struct vcpu *v);

/* Installs the fault handlers for translated code on the calling thread. */
int vcpu_signals_install(struct vcpu *v, char *err, size_t errlen);
/* Points translated code at the shadow's current space windows
 * (VC_KWIN_BASE and VC_UWIN_BASE; the host GS base follows the latter
 * before ring-3 code runs): after a CR3 load or a paging change. */
void vcpu_follow_windows(struct vcpu *v);
/* Before the VCPU is destroyed: later pokes (terminal input, the timer) are
 * ignored instead of reaching freed state. */
void vcpu_signals_quiesce(void);

/* Runs until the guest ends the run (exit port, triple fault, a stop). */
void vcpu_run(struct vcpu *v, struct xlate *x);

/* The interrupt controller's output line (VCPU thread only). */
void vcpu_set_irq_line(struct vcpu *v, bool level);

/* Asks the run to stop at the next block boundary.  Async-signal-safe: the
 * host's SIGINT/SIGTERM handlers call it. */
void vcpu_request_stop(struct vcpu *v);
/* The same for the console's Ctrl-A x: the run ends with status 0, as QEMU's
 * does.  Any thread. */
void vcpu_request_quit(struct vcpu *v);

/* After an iret: when the guest's last #PF from translated code is pending,
 * maps its page into the shadow if the guest's tables now allow the access
 * (setting A and D as the retried access would), so that the retry does
 * not fault again in the host.  A CR3 load drops the pending retry. */
void vcpu_prefault_retry(struct vcpu *v);
/* switch.S */
void vcpu_switch_enter(struct vcpu_hot *hot, uint64_t host_pc);
void vcpu_exit_gate(void);
void vcpu_exit_common(void);

#endif
