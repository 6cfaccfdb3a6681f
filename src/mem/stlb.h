/*
 * The soft TLB: what ring-3 code uses instead of host page tables for the
 * pages it touches under paging, while its address space is young or once
 * its working set has outgrown what host mappings can hold.
 *
 * A host mapping costs dearly on this host (the architecture document's
 * host table): ~35,000 cycles for each page a process touches over its
 * life, mapped into a user view and dropped again, and the host allows
 * only vm.max_map_count of them (SHADOW_MAX_MAPPINGS).  Short-lived processes
 * (fork+exec) pay that on every page, and a process touching more memory
 * than the bound would thrash.  So ring-3 code reaches guest memory through
 * two tables of host addends indexed by linear page, one for reads and one
 * for writes, in the VCPU's hot mapping (VC_STLB_READ, VC_STLB_WRITE): an
 * access computes its linear address L into r10d, loads the entry E for
 * L's page into r11 and accesses (%r11,%r10), host address E + L
 * (translate.c, emit.c).
 *
 * - E = 0 (no entry) leaves for the monitor (a jrcxz, no signal), which
 *   fills the entry, or delivers the guest's #PF, and resumes the
 *   instruction (`run.c`).
 * - Otherwise E leads to the page's frame in the frame region
 *   (STLB_FRAMES_BASE), one host mapping of all of guest RAM made at
 *   start-up: no frame costs a mapping of its own, so the tables hold any
 *   working set at a steady cost.
 * - An access whose last byte lies on the next linear page is found in
 *   line and goes through the user view instead (E = VC_UWIN_BASE), whose
 *   host mappings check both pages; so does a store to a frame holding
 *   translated code (its write entry is the user view's base), which
 *   faults there like any store to code.
 *
 * The tables cost every access a dozen instructions, which a long-running
 * process would pay for ever, so an address space starts young, its ring-3
 * code translated in the soft-TLB form (XMODE_SOFT), and goes direct (the
 * user view through gs: alone) once it has entered STLB_YOUNG_BLOCKS blocks
 * in that form and STLB_ENTRY_WORTH for each entry it holds (each
 * soft-form block spends one of VC_SOFT_BUDGET at its entry, the last one
 * of a budget leaving for the monitor, which weighs the two): a fork+exec
 * child enters a few thousand, a shell loop or md5sum that many in well
 * under a millisecond, and a process that has touched 512 MiB would pay
 * 131,072 host faults and mappings to go direct, so it stays.  A CR3 load that finds most of a space's entries gone makes
 * it young again: that is a new process whose page directory took a dead
 * one's frame, which the space is bound to.  A direct space whose user
 * view fills the host mappings (shadow.c) is *big*: its ring-3 code goes
 * back to the soft form for as long as the space lives.  Both forms are
 * right in any space; the mode only picks the faster.
 *
 * Invariants:
 *  - The tables hold entries for the current pair's address space only (a
 *    space's own list keeps them while another runs); an entry is one a TLB
 *    could hold: the write table's only where the guest's entry allows the
 *    write and D is set, and the read table has every page the write table
 *    has.
 *  - A write entry leads to the frame region only for a frame that holds
 *    no translated code (`frame_written` marks the frames that may have
 *    one, so that a frame turning into code finds them).
 *  - Entries go where the user view's pages go: invlpg, a CR3 load that finds
 *    the tables changed (the same check as the user view's), paging-mode
 *    changes; dropping one is a store, not a system call.  A CR3 load may
 *    also drop a space's entries unchecked (STLB_PROBE_TURNS), never keep
 *    one unchecked.
 *  - A page the debugger watches (watch.h) goes through the user view for
 *    the kinds of access watched on it, as a store to code does.
 *  - The soft TLB makes no host mapping after start-up.
 *
 * Ring 0 has a pair of tables of its own (VC_KSTLB_READ, VC_KSTLB_WRITE),
 * filled by supervisor walks, for the kernel's instructions found to touch
 * pages that churn: pages the guest remaps and invlpgs over and over
 * (Linux's kmap_atomic slots under highmem, the nano guest's PTE write +
 * invlpg), where each remap cost the kernel window a host mapping and a
 * first touch (~15,000 cycles) and costs an entry a store.  Their entries
 * follow the same rules, with the current kernel view (VC_KWIN_BASE) where
 * ring 3's use the user view; invlpg drops one, a CR3 load the non-global
 * ones, paging-mode changes all.
 */
#ifndef BT86_STLB_H
#define BT86_STLB_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

#define STLB_PAGES (1u << 20)
#define STLB_TABLE_BYTES (STLB_PAGES * 8u)
/* Block entries in the soft-TLB form an address space makes before its
 * code goes direct (a fork+exec child makes about 4,800). */
#define STLB_YOUNG_BLOCKS (1u << 13)
#define STLB_CHUNK_SHIFT 21
/* A space stays young while it has entered fewer soft-form blocks than
 * STLB_ENTRY_WORTH times its live entries.  Going direct costs each of
 * those pages a host fault and mapping (~30,000 cycles) when next used; a
 * soft-form block entry costs ~3 cycles more than a direct one (the nano
 * guest's CRC loop: 8.6 against 5.7 cycles a byte, one block and two
 * accesses a byte).  So the break-even factor would be ~10,000 if every
 * live page were used again; most are not (a process that faulted in 512
 * pages and then computes on 17), and 128 is what the memory sweep (no
 * size slower than QEMU's) and the nano compute figure (~6.0 cycles a
 * byte) measured as the balance; 64 left the 64 MiB sweep promoted in the
 * middle of its random reads, 1,024 left the CRC loop in the soft form. */
#define STLB_ENTRY_WORTH 128u

struct gmem;
struct stats;
struct watch_set;

/* Whether a CR3 load keeps a space's entries that its tables still give
 * (a walk each) or drops them all (a soft miss, ~240 cycles, for each one
 * used again; a walk costs ~45-60 on the 2026-12-07 host, where two
 * processes switching with 264 entries kept spent ~6,400 cycles a switch
 * on them and used none).  A space starts keeping; every STLB_PROBE_TURNS
 * switches into it, and at every one while it drops, it drops them and
 * counts its fills until it next leaves: it keeps from then on only when
 * at least one dropped entry in STLB_REFILL_WORTH came back. */
#define STLB_PROBE_TURNS 16u
#define STLB_REFILL_WORTH 4u
/* A drop still checks this many of the oldest entries, for a recycled
 * page directory (a new process, young again when none agrees). */
#define STLB_DROP_CHECKED 4u

struct stlb_space {
	bool direct;            /* promoted: its ring-3 code uses the user view directly */
	bool big;               /* outgrew the host mappings: soft for good */
	bool dropping;          /* CR3 loads drop its entries unchecked (above) */
	uint32_t turns;         /* switches into it since it last dropped */
	uint32_t dropped;       /* entries the last switch into it dropped unchecked */
	uint32_t fills;         /* entries made since it last came in */
	uint64_t budget;        /* soft-TLB block entries left (while another space runs) */
	uint64_t entered;       /* soft-form block entries since it was young, in whole budgets */
	uint32_t n, cap;
	uint32_t *page, *frame; /* linear page, its frame */
	uint8_t *rw;            /* whether the guest allows the write (the write table has it) */
};

/* Ring 0's entries: one list, its pages' globalness kept so that a CR3
 * load drops only the others. */
#define STLB_KERNEL_ENTRIES 4096u
struct stlb_kernel {
	uint64_t *read, *write;  /* the tables (NULL until stlb_attach) */
	uint64_t view;           /* host base of the current kernel view */
	uint32_t n;
	uint32_t *pos;           /* per linear page: its index in the list */
	uint32_t page[STLB_KERNEL_ENTRIES], frame[STLB_KERNEL_ENTRIES];
	uint8_t rw[STLB_KERNEL_ENTRIES], global[STLB_KERNEL_ENTRIES];
};

struct stlb {
	struct gmem *mem;
	struct stats *stats;
	uint64_t *read, *write;  /* the tables (NULL until stlb_attach) */
	uint64_t *budget;        /* the current space's block entries left: VC_SOFT_BUDGET */
	uint64_t view;           /* host base of the current user view */
	uint32_t *pos;           /* per linear page: its index in the current space's list */
	struct stlb_space space[SPACE_SLOTS];
	unsigned cur;
	uint8_t *frame_written;  /* per RAM frame: may have a write entry in the tables */
	uint8_t *chunk_ready;    /* per 2 MiB of RAM: populated in the frame region */
	bool outgrown;           /* the current space turned big since the run loop last looked */
	const struct watch_set *watch; /* the debugger's watchpoints (the shadow's) */
	struct stlb_kernel k;
};

/* What a CR3 load's check says of an entry (shadow.c decides). */
enum stlb_keep { STLB_DROP, STLB_KEEP_READ, STLB_KEEP };
typedef enum stlb_keep (*stlb_check)(void *ctx, uint32_t page, uint32_t frame, bool rw);

/* Maps the frame region; -1 when the host refuses. */
int stlb_init(struct stlb *st, struct gmem *mem, struct stats *stats);
void stlb_destroy(struct stlb *st);
/* The tables, STLB_TABLE_BYTES each, zero-filled (ring 3's, then ring
 * 0's), and the VCPU's budget word. */
void stlb_attach(struct stlb *st, uint64_t *read, uint64_t *write, uint64_t *kread, uint64_t *kwrite,
		 uint64_t *budget);
/* Enters linear page `page` -> RAM frame `frame` for reads, and for writes
 * too when `rw`. */
void stlb_fill(struct stlb *st, uint32_t page, uint32_t frame, bool rw);
/* Ring 0's: `page` -> `frame`, for writes too when `rw`. */
void stlb_kernel_fill(struct stlb *st, uint32_t page, uint32_t frame, bool rw, bool global);
/* Whether the current space has an entry for `page`. */
bool stlb_has(const struct stlb *st, uint32_t page);
/* invlpg (ring 3's entry and ring 0's). */
void stlb_drop(struct stlb *st, uint32_t page);
/* A CR3 load made pair `k` current, with user view base `view` and kernel
 * view base `kview`: ring 0's non-global entries go; the old
 * space's entries leave the tables; pair k's return, those `check` keeps
 * (emptied first when `fresh`: the pair was bound to another CR3); a space
 * that keeps fewer than a quarter of 8 or more is young again. */
void stlb_switch(struct stlb *st, unsigned k, uint64_t view, uint64_t kview, bool fresh, stlb_check check,
		 void *ctx);
/* Whether the current space's ring-3 code uses the soft TLB (young or big). */
static inline bool stlb_soft(const struct stlb *st)
{
	return !st->space[st->cur].direct;
}
/* The current space spent its budget: it goes direct unless it is big
 * (true when it was young until now), and the budget is refilled. */
bool stlb_spent(struct stlb *st);
/* Drops every entry of every space, and ring 0's. */
void stlb_flush(struct stlb *st);
/* Frame `frame` now holds translated code, or no longer does. */
void stlb_protect(struct stlb *st, uint32_t frame);
/* The current space's user view filled the host mappings: its ring-3 code
 * uses the soft TLB for good (true when it did not already). */
bool stlb_outgrow(struct stlb *st);

#endif
