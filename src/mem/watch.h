/*
 * The debugger's watchpoints (gdbstub.c): ranges of guest linear addresses
 * whose reads, writes or both stop the guest, in whatever address space
 * (as QEMU's are).
 *
 * The shadow (shadow.c, stlb.c) keeps the guest from touching a watched
 * page without the monitor: no window maps it writable while a write is
 * watched on it, none maps it at all while a read is, and the soft TLB
 * sends its accesses through the user view, which faults.  The fault sends
 * the instruction to the emulator (run.c), whose accesses, like the
 * processor's own (interrupt frames, descriptor tables), go through vmem.c,
 * which matches them against the ranges.  Everything else runs as fast as
 * without a debugger.
 */
#ifndef BT86_WATCH_H
#define BT86_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#define WATCH_MAX 16u
#define WATCH_WRITE 0x1u
#define WATCH_READ 0x2u

struct watch {
	uint32_t addr, len; /* len >= 1, addr + len - 1 does not wrap */
	unsigned kind;      /* WATCH_WRITE, WATCH_READ, or both (an access watchpoint) */
};

struct watch_set {
	unsigned n;
	struct watch w[WATCH_MAX];
};

/* The kinds of access watched somewhere on linear page `page`. */
static inline unsigned watch_page(const struct watch_set *ws, uint32_t page)
{
	unsigned kind = 0;
	for (unsigned i = 0; i < ws->n; i++)
		if (page >= ws->w[i].addr >> 12 && page <= (ws->w[i].addr + ws->w[i].len - 1) >> 12)
			kind |= ws->w[i].kind;
	return kind;
}

/* The first watchpoint that a read or write of `size` bytes at `lin`
 * fires, or NULL. */
static inline const struct watch *watch_match(const struct watch_set *ws, uint32_t lin, unsigned size, bool write)
{
	for (unsigned i = 0; i < ws->n; i++) {
		const struct watch *w = &ws->w[i];
		if ((w->kind & (write ? WATCH_WRITE : WATCH_READ)) && lin <= w->addr + w->len - 1 &&
		    w->addr <= lin + (size - 1))
			return w;
	}
	return NULL;
}

#endif
