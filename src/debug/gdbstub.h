/*
 * The GDB remote stub: -s, -gdb tcp:[HOST]:PORT and -S, as QEMU spells them.
 *
 * One debugger at a time, on a TCP socket bound before containment.  While
 * the guest runs, a watcher thread waits for a connection or for the
 * debugger's Ctrl-C (a 0x03 byte) and asks the VCPU for attention
 * (ATTN_REQ_DEBUG); the VCPU thread then serves the debugger's packets
 * itself, the guest stopped, until it is told to continue, step, detach
 * or kill.  Everything the stub touches of the machine it touches from the
 * VCPU thread, between blocks.
 *
 * Breakpoints live here, never in guest memory: the translator ends a
 * block before an instruction at a breakpoint (gdb_stops_before), the run
 * loop stops before entering a block that starts at one, and while any is
 * set the run loop chains no exit and fills no inline lookup entry, so that
 * every block entry passes that check.  A step runs one guest instruction
 * with the host's trap flag (run.c).  Watchpoints (write, read, access)
 * are the shadow's (watch.h): their pages fault, the emulator runs the
 * instructions that touch them, and the run loop stops after one whose
 * access fired one.
 */
#ifndef BT86_GDBSTUB_H
#define BT86_GDBSTUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vcpu;
struct gdb;

/* Listens on spec ("tcp::PORT", "tcp:HOST:PORT"; an empty HOST is
 * localhost).  With wait (-S), also waits for the debugger to connect. */
struct gdb *gdb_open(const char *spec, bool wait, char *err, size_t errlen);

/* Starts the watcher for v; the first stop comes at once with -S. */
int gdb_start(struct gdb *g, struct vcpu *v, int vcpu_tid, char *err, size_t errlen);

void gdb_close(struct gdb *g);

/* Serves the debugger with the guest stopped (sig: the stop's signal,
 * GDB_SIGTRAP after a breakpoint or step, GDB_SIGINT for Ctrl-C and the
 * first stop), until it continues, steps, detaches or kills the run. */
#define GDB_SIGINT 2
#define GDB_SIGTRAP 5
void gdb_stop(struct gdb *g, int sig);

/* Whether a breakpoint is set at linear address eip. */
bool gdb_breakpoint(const struct gdb *g, uint32_t eip);

/* Whether any breakpoint is set (the run loop then does not chain). */
bool gdb_has_breakpoints(const struct gdb *g);

/* For the translator: true when a block must end before eip (ctx is the
 * struct gdb). */
bool gdb_stops_before(const void *ctx, uint32_t eip);

#endif
