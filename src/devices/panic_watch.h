/*
 * Recognises a Linux kernel panic in the guest's console output, so that a
 * panic ends the run with its own status instead of a VM spinning in the
 * panic loop (or a reset that looks like a reboot).  An unmodified PC kernel
 * has no other way to tell the machine: QEMU's pvpanic needs ACPI and a
 * driver Debian builds as a module.  The watcher sees the COM1 byte stream
 * line by line: "Kernel panic - not syncing: REASON" arms it; the kernel's
 * closing "---[ end Kernel panic" line, or the reset that panic=N asks for,
 * ends the run.
 */
#ifndef BT86_PANIC_WATCH_H
#define BT86_PANIC_WATCH_H

#include "../exit_status.h"
#include <stdbool.h>
#include <stddef.h>

#define PANIC_WATCH_LINE 256
#define PANIC_EXIT_STATUS BT86_EXIT_PANIC

struct panic_watch {
	char line[PANIC_WATCH_LINE];
	size_t len;
	bool panicked;
	char reason[PANIC_WATCH_LINE];
};

/* Takes one console byte; true when the panic report is complete. */
bool panic_watch_byte(struct panic_watch *w, char c);

#endif
