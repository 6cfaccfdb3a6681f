/*
 * The host side of the guest's serial console: the terminal in raw mode
 * while the guest owns it, and QEMU's Ctrl-A escapes on the input.
 *
 * Invariant: once console_raw_begin has changed the terminal, every way out
 * of the process restores it: the normal end of the run, exit(), and the
 * monitor's last-resort paths (a blocked system call, an internal error),
 * which call console_restore from their signal handlers.
 */
#ifndef BT86_CONSOLE_H
#define BT86_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

/* Puts the terminal on fd in raw mode if it is one: no echo, no line
 * editing, no ^C or ^Z signals (the guest gets every byte); output
 * processing stays on, as QEMU's stdio leaves it.  Returns false when fd is
 * not a terminal (nothing changes). */
bool console_raw_begin(int fd);

/* Puts the terminal back as it was.  Async-signal-safe and idempotent. */
void console_restore(void);

struct console_escape {
	bool pending; /* the last byte was Ctrl-A */
	bool monitor; /* Ctrl-A c gave the console to the monitor */
};

/* Filters terminal input in place: Ctrl-A x sets *quit, Ctrl-A c switches
 * between the guest and the monitor, Ctrl-A Ctrl-A passes one Ctrl-A on,
 * Ctrl-A h prints the keys to stderr; any other key after Ctrl-A is
 * dropped.  Consumes buf up to the end, a quit or a switch (*used says how
 * far); the bytes it leaves, for whoever had the console before the
 * switch, are compacted at buf's start and their count returned.  The
 * state carries an escape split across reads. */
size_t console_escape(struct console_escape *st, uint8_t *buf, size_t n, bool *quit, size_t *used);

#endif
