/*
 * Direct execution of guest ring 3 (issue 14): the run loop's side of the
 * ring-3 host process (direct.h).
 *
 * While the guest runs at CPL 3 with IF = 1, IOPL < 3, TF = 0 and nothing
 * that needs the translator's eye (ring3_wanted), the run loop hands the
 * VCPU to the stub, which runs the guest's code on the CPU until its next
 * event, and ring3_run turns that event into what a PC does: a mapping for
 * a hidden fault, the guest's #PF, the emulator for the instruction that
 * faulted (int n, cpuid, privileged instructions, segment loads), an
 * interrupt at an instruction boundary.
 *
 * The stub's low 4 GiB is a TLB of the current address space's user
 * pages: a page enters it on the fault of its first use (the guest's
 * tables walked for a user access, A and D set as the processor sets
 * them), and leaves it when the shadow drops its own mappings
 * (shadow_follower: invlpg, paging changes), when a CR3 load is followed
 * by a run in another space or by tables that no longer give it
 * (RING3_KEEP_MAX), or when its frame begins or ceases to hold translated
 * code.
 *
 * Invariants:
 *  - A page is in the stub writable only when the guest's tables allow a
 *    user write and D is set, executable only when they allow the fetch,
 *    and never both: an executable page's frame is protected as code
 *    (gmem_protect_code), so a write to it from anywhere (the stub, the
 *    guest kernel, a device) drops it from the stub first.
 *  - No page the stub may execute holds the bytes of `syscall` or
 *    `sysenter`, or of a far jump or call straight to one of the host's
 *    code selectors, or the first bytes of one running onto the next page: from
 *    compatibility mode the host runs the first two as its own fast system
 *    calls, which lose the guest's EIP, and the others leave compatibility
 *    mode (and, where the host cannot make cpuid fault, cpuid's, which
 *    would answer for the host's CPU).  Such pages are mapped without
 *    execute permission, and a fetch there runs translated (R3_UNSAFE).
 */
#ifndef BT86_RING3_H
#define BT86_RING3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "direct.h"

/* Pages the stub may map at once: each costs it up to two host mappings
 * (the page and the split of its reservation), well inside
 * vm.max_map_count; reaching it empties the view (counted). */
#define RING3_MAX_PAGES 16384u
/* A CR3 load marks the view stale; the next run in the same space walks
 * the guest's tables for each of its pages and keeps those they still
 * give (~0.1 µs a page against ~10 µs to fault one in again), when there
 * are no more than RING3_KEEP_MAX; a run in another space empties it. */
#define RING3_KEEP_MAX 2048u

/* The choice per address space (--ring3=auto): every exit of direct
 * code costs a hand-over between processes (~26,000 cycles for a guest
 * system call here, against ~900 translated), while translated ring-3
 * code runs within a few per cent of native (bench/run).  So a space
 * whose direct runs, over RING3_WINDOW of them, average under
 * RING3_MIN_RUN cycles each (where a few per cent of the run no longer
 * pays for the exit) goes translated for RING3_WAIT of its run-loop
 * turns at CPL 3, doubled each time it goes back (up to 2^RING3_BACKOFF
 * times).  A wait ends in a direct window only if its turns took
 * RING3_MIN_TURN cycles or more each (time, kernel included, over CPL-3
 * turns): a direct run ends at least wherever a translated turn does, so
 * a space turning faster would only pay hand-overs, and it waits again,
 * as long.  A space never seen waits RING3_FIRST turns. */
#define RING3_MIN_RUN 1000000u
#define RING3_MIN_TURN (RING3_MIN_RUN / 16)
#define RING3_WINDOW 4u
#define RING3_FIRST 16u
#define RING3_WAIT 1024u
#define RING3_BACKOFF 10u
#define RING3_SPACES 64u

struct ring3_space {
	uint32_t cr3;        /* the space (its page directory), 0: unused */
	uint32_t runs;       /* direct runs in the current window */
	uint64_t cycles;     /* their cycles, hand-overs included */
	uint32_t wait;       /* CPL 3 turns left translated */
	uint32_t turns;      /* the wait's length ... */
	uint64_t since;      /* ... and its start (TSC) */
	uint32_t backoff;    /* times gone back in a row */
};

struct vcpu;

struct ring3 {
	struct direct d;
	struct vcpu *v;
	uint32_t low;         /* the first linear address the stub can map */
	uint32_t *ent;        /* per linear page: frame << 12 | R3_* flags; 0: not in the stub */
	uint32_t *pos;        /* per page in the stub: its index in `list` */
	uint32_t *list, n;    /* the linear pages in the stub */
	uint16_t *frame_refs; /* per RAM page: the linear pages the stub maps it at */
	uint32_t n_large;     /* pages in the stub from large guest pages */
	bool translate_next;  /* the next instruction runs translated (a fetch from an R3_UNSAFE page) */
	bool stale;           /* CR3 was loaded since the view was last checked */
	uint32_t view_cr3;    /* the space whose pages the view holds (but global ones) */
	bool cpuid_runs_here; /* the stub could not make cpuid fault: its bytes are host-only too */
	int counter_fd;       /* the stub's retired user instructions (perf), or -1 */
	bool adaptive;        /* --ring3=auto: choose per space (above); else direct wherever it can */
	struct ring3_space space[RING3_SPACES]; /* direct-mapped by CR3 */
	uint8_t fx[512] __attribute__((aligned(16)));
};

/* Starts the ring-3 host process for v and follows v's shadow.  Returns 0,
 * or -1 with the reason in err (the host lacks what direct execution
 * needs: then ring 3 stays translated). */
int ring3_start(struct ring3 *r, struct vcpu *v, bool adaptive, char *err, size_t errlen);
void ring3_stop(struct ring3 *r);

/* Whether the VCPU's next instructions may run in the stub. */
bool ring3_wanted(struct vcpu *v);
/* Runs the guest in the stub until its next event and handles it; may
 * raise a guest exception (vcpu_raise). */
void ring3_run(struct vcpu *v);

#endif
