/*
 * Containment (issue 3): once set up, the monitor keeps only the system calls
 * it needs, and a system call made from guest-reachable memory (the two
 * guest windows) or from translated code (the translation cache) ends the
 * VM with a diagnostic.  Guest code never runs natively on this host, so
 * either would be a monitor bug or an escape; both are stopped.
 *
 * Two filters stack (the stricter verdict wins): an allow-list built with
 * libseccomp, which also refuses new executable mappings, and a few
 * classic-BPF instructions of our own that check the architecture and the
 * instruction pointer, which libseccomp cannot express.
 */
#ifndef BT86_CONTAIN_H
#define BT86_CONTAIN_H

#include "../exit_status.h"
#include <stdbool.h>
#include <stddef.h>

/* Exit status of a run ended by a blocked system call. */
#define CONTAIN_EXIT_STATUS BT86_EXIT_CONTAINED

struct tc;

/* Whether the host kernel lets ring 3 run wrgsbase (HWCAP2_FSGSBASE:
 * Linux 5.9 and later on processors with FSGSBASE).  Then the monitor moves
 * the GS base with it (~30 cycles here, where arch_prctl(ARCH_SET_GS) is a
 * system call through the filters, ~650 bare) and the filter leaves
 * arch_prctl out.  Guest code cannot run it: wrgsbase exists only in
 * 64-bit mode, and decoded as 32-bit code F3 0F AE /3 with a register
 * operand is an invalid opcode, which the emulator answers with #UD. */
bool contain_wrgsbase(void);

/* Applies to every thread of the process; call after all set-up. */
int contain_install(const struct tc *tc, char *err, size_t errlen);

#endif
