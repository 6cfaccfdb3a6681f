/*
 * The monitor: QEMU's human monitor commands for looking at a running
 * machine, on the console (Ctrl-A c, as QEMU's -nographic) and on a Unix
 * socket (-monitor unix:PATH,server,nowait) for scripts.
 *
 * Lines come from the console's input thread or from the socket's thread;
 * each is handed to the VCPU thread (ATTN_REQ_MONITOR and a poke), which
 * runs it between blocks, as the GDB stub's packets are, and hands back
 * its output: so every command sees the machine at an instruction
 * boundary and nothing races the guest.  After `stop` the VCPU thread
 * stays in monitor_serve, running commands, until `cont`.  One command
 * runs at a time, whichever side sent it.
 *
 * Commands: help, info registers, info mem, info tlb, info tc, info blocks
 * ADDR, x/FMT ADDR, xp/FMT ADDR, stop, cont (c), quit (q).  Output is
 * QEMU's layout where QEMU has the command.
 */
#ifndef BT86_MONITOR_H
#define BT86_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vcpu;
struct monitor;

/* The monitor, with a socket when spec is given ("unix:PATH" with
 * "server" and, unless bt86 is to wait for the first client, "nowait",
 * comma-separated, or their "server=on", "wait=off" spellings). */
struct monitor *monitor_open(const char *spec, char *err, size_t errlen);

/* Attaches the monitor to the VCPU (whose thread is vcpu_tid) and starts
 * the socket's thread; with stopped (-S without GDB), the guest waits for
 * `cont` before its first instruction. */
int monitor_start(struct monitor *m, struct vcpu *v, int vcpu_tid, bool stopped, char *err, size_t errlen);

/* The console's input while the monitor has it (board.c), from the input
 * thread: edits and runs lines, writing to stdout.  n == 0 announces that
 * the console just switched to the monitor. */
void monitor_console(void *m, const uint8_t *buf, size_t n);

/* stdin is closed (the input thread): a machine stopped with no socket
 * to continue it from ends with BT86_EXIT_USAGE. */
void monitor_console_closed(void *m);

/* On the VCPU thread at ATTN_REQ_MONITOR: runs the waiting command, and
 * after `stop` every command until `cont`. */
void monitor_serve(struct monitor *m);

/* The run is over: lines get an error for an answer; the socket's thread
 * ends and the socket closes. */
void monitor_close(struct monitor *m);

#endif
