/*
 * The shadow page tables: the host's own page tables, driven by mmap, acting
 * as a virtual TLB for the guest's linear space.
 *
 * Guest linear space is seen through several windows (layout.h): the kernel
 * window at host address 0, which translated ring-0 code uses, and
 * SPACE_SLOTS pairs of space windows, each pair bound to one recent CR3: a
 * kernel view, which the ring-0 instructions found to touch user pages
 * reach through VC_KWIN_BASE, and a user view, which ring-3 code reaches
 * through its gs: prefix and which only ever holds pages a user access may
 * touch.  A CR3 load moves both to the incoming CR3's pair instead of
 * remapping what a process and the kernel's copies to and from it touch.
 * A "slot" names a page of any window: window << 20 | linear page.
 *
 * With paging off the kernel window and the current user view are the
 * identity view of RAM.  With paging on, a guest linear page enters a
 * window on first use (a hidden fault), mapped to its guest-physical page of
 * the RAM memfd.  invlpg drops one page from the kernel window and the
 * current pair (and a global page from every window); a CR3 load drops
 * the kernel window's non-global pages the new tables do not map alike (a
 * page that only lost the write stays, read-only), and the same check runs
 * over the incoming pair's pages (the other pairs, invlpg's included, wait
 * for their own CR3's return); paging-mode changes drop all.
 *
 * Invariants:
 *  - A mapped page is writable in the window only if the guest's entry allows
 *    the write, its dirty bit is already set, and its physical page holds no
 *    translated code; so the first write of a clean page faults and sets D,
 *    and every write to a code page faults (at every alias, in every window:
 *    the reverse map links each physical page to the slots mapping it).
 *  - A space window's non-global pages are ones its CR3's tables mapped
 *    alike (same frame, A set, D set if writable) when the CR3 was last
 *    loaded or since: what a TLB refill would find.
 *  - Pages leave the window by being re-reserved PROT_NONE, never unmapped,
 *    so no host mapping can ever land where guest code reaches.
 *  - A page the debugger watches (watch.h) is writable in no window while a
 *    write is watched on it, and readable in none while a read is.
 *  - The host mappings the windows hold (counted as host_mappings() in
 *    shadow.c) stay within SHADOW_MAX_MAPPINGS; reaching it flushes the
 *    shadow (counted), and a process whose user view held half of them
 *    moves to the soft TLB (stlb.h).  4 MiB pages count as one mapping,
 *    so a kernel's direct map of all of RAM fits.
 */
#ifndef BT86_SHADOW_H
#define BT86_SHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "stlb.h"
#include "watch.h"

/* The host mappings the windows may hold: each single page and each piece
 * of a run (a 4 MiB page, split by pages dropped from it) counts two (its
 * own, and the split of the reservation after it).  This keeps every
 * window together under vm.max_map_count (65,530, Debian's default), with
 * room left for the splits of code pages write-protected inside runs and
 * for the monitor's own, so an mmap never fails for want of one. */
#define SHADOW_MAX_MAPPINGS 49152u
#define SHADOW_NONE 0xFFFFFFFFu
#define SHADOW_CHURN_SLOTS 256u
#define SHADOW_CHURN 4u

/* Windows: the kernel window, then a kernel and a user view a slot. */
#define SHADOW_KERNEL 0u
#define SHADOW_WINDOWS (1u + 2u * SPACE_SLOTS)
static inline unsigned shadow_kview(unsigned k)
{
	return 1 + 2 * k;
}
static inline unsigned shadow_uview(unsigned k)
{
	return 2 + 2 * k;
}
static inline bool shadow_is_user(unsigned window)
{
	return window != SHADOW_KERNEL && window % 2 == 0;
}

enum shadow_flush_cause {
	SHFLUSH_CR3,       /* CR3 load (non-global pages) */
	SHFLUSH_MODE,      /* CR0.PG/WP, CR4.PSE/PAE/PGE/SMEP or EFER.NXE changed */
	SHFLUSH_CAPACITY,  /* the mapping count reached its bound */
	SHFLUSH_DEBUG,     /* the debugger's watchpoints changed */
	SHFLUSH_CAUSES,
};

struct gmem;
struct stats;

/* Another holder of guest linear mappings, which must drop them whenever
 * the shadow must (a TLB's rules): the ring-3 host process's view
 * (ring3.h).  Called for an invlpg of linear page `lin_page`, for a flush
 * of every page (keep_global: but the global ones; a CR3 load is one), and
 * when physical page `phys` begins or ceases to hold translated code. */
struct shadow_follower {
	void *ctx;
	void (*invlpg)(void *ctx, uint32_t lin_page);
	void (*flush)(void *ctx, bool keep_global);
	void (*frame)(void *ctx, uint32_t phys);
};

struct shadow {
	struct gmem *mem;
	struct stats *stats;
	bool paging;
	unsigned nxe;          /* PW_NXE while the guest's EFER.NXE is set: its walks' flag */
	uint32_t *lin_phys;    /* per slot: physical page, when SHADOW_MAPPED */
	uint8_t *lin_flags;    /* per slot: SHADOW_MAPPED, SHADOW_RW, SHADOW_GLOBAL (zero: unmapped) */
	uint32_t *alias_next;  /* per slot: next slot mapping the same physical page */
	uint32_t *alias_head;  /* per physical RAM page: first slot mapping it */
	/* The mapped slots, for flushes: the global ones on one list, the
	 * others on their window's, so that a CR3 load touches only the kernel
	 * window's and the incoming pair's.  list_pos is each slot's index in
	 * its list. */
	uint32_t *global, n_global;
	uint32_t *local[SHADOW_WINDOWS], n_local[SHADOW_WINDOWS];
	uint32_t *list_pos;
	uint32_t *scratch;     /* a window's worth of slots of working room */
	/* For the host-mapping bound: mapped single pages, pages of runs,
	 * and the pieces the runs may be in (one a run, one more a page
	 * dropped from one, none once no run is left). */
	uint32_t n_single, n_run_pages, n_pieces;
	/* The CR3 each slot's pair is bound to, when each was last entered (0:
	 * never), and the current slot. */
	uint32_t slot_cr3[SPACE_SLOTS];
	uint64_t slot_used[SPACE_SLOTS], clock;
	unsigned cur;
	struct stlb soft;      /* the soft TLB (ring 3's and ring 0's), which follows the views */
	/* invlpgs of linear pages mapped in the kernel window: a page that
	 * counts SHADOW_CHURN of them churns (hashed; a collision restarts
	 * the count). */
	struct {
		uint32_t page, count;
	} churn[SHADOW_CHURN_SLOTS];
	struct watch_set watch; /* the debugger's watchpoints (watch.h), which every window and the soft TLB honour */
	bool reserved;         /* the space windows are reserved (for teardown) */
	struct shadow_follower follow; /* ctx NULL: none */
};

#define SHADOW_RW 0x1u      /* the guest may write and D is set */
#define SHADOW_GLOBAL 0x2u
#define SHADOW_MAPPED 0x4u  /* the slot maps lin_phys */
#define SHADOW_RUN 0x8u     /* as part of a run (shadow_map_run) */

int shadow_init(struct shadow *s, struct gmem *mem, struct stats *stats, char *err, size_t errlen);
void shadow_destroy(struct shadow *s);

/* CR0.PG changed: drops every mapping; off restores the identity view.  The
 * current pair stays current, bound to no CR3 (none finds it again). */
void shadow_set_paging(struct shadow *s, bool on);
/* The host address of window `window`'s linear address 0. */
uint64_t shadow_window_base(unsigned window);
/* The window holding host address `addr`, if any. */
bool shadow_window_at(uint64_t addr, unsigned *window);
/* Whether linear page `lin` may enter window `window`: never host page 0
 * (below mmap_min_addr), nor a kernel view's first or last page or the
 * kernel window's last (layout.h's guards); accesses there are emulated. */
bool shadow_mappable(const struct shadow *s, unsigned window, uint32_t lin);
/* Maps linear page `lin` of window `window` to physical page `phys` (RAM)
 * with the guest's permission `rw` (write allowed and dirty) and
 * globalness. */
void shadow_map(struct shadow *s, unsigned window, uint32_t lin, uint32_t phys, bool rw, bool global);
/* Maps `n` consecutive linear pages onto consecutive physical pages with
 * one host mapping (a large page: 4 MiB, or 2 MiB under PAE), same
 * permissions for all. */
void shadow_map_run(struct shadow *s, unsigned window, uint32_t lin, uint32_t phys, uint32_t n, bool rw,
		    bool global);
/* invlpg: linear page `lin` leaves the kernel window and the current pair,
 * and its global mappings every window.  A slot of the kernel window or the
 * current pair that held it takes at once what the tables at cr3 map there
 * now, when that is RAM with A already set (writable only with D set):
 * what a refill would find, nothing in guest memory changed, as a TLB may
 * load a translation ahead of use (SDM vol. 3 4.10.2.3).  Linux's
 * kmap_atomic and copy-on-write change an entry, invlpg it and touch the
 * page next: one host mapping over the old one, where dropping it cost a
 * reservation, a host fault and a mapping. */
void shadow_invlpg(struct shadow *s, uint32_t cr0, uint32_t cr3, uint32_t cr4, uint32_t lin);
/* Whether linear page `lin` churns: invlpg'd SHADOW_CHURN times while the
 * kernel window held it.  Its kernel-window slot is then dropped at
 * invlpg, not mapped ahead, and the ring-0 instructions that touch it are
 * moved to ring 0's soft TLB (stlb.h), whose entry an invlpg drops with a
 * store. */
bool shadow_churning(const struct shadow *s, uint32_t lin);
/* Drops every mapping, or with keep_global every non-global one. */
void shadow_flush(struct shadow *s, bool keep_global, enum shadow_flush_cause cause);
/* A CR3 load (the new tables at cr3): drops the kernel window's non-global
 * pages, except those the new tables map to the same frame with A already
 * set and, for a writable mapping, still writable with D set (what a refill
 * would find; nothing in guest memory changes), keeping read-only those that
 * only lost the write.  Makes current the pair
 * bound to cr3, its pages checked under the same rule, or else the least
 * recently used pair, emptied of its non-global pages and bound to cr3:
 * `cur` says which.  Counted as a CR3 flush. */
void shadow_switch_cr3(struct shadow *s, uint32_t cr0, uint32_t cr3, uint32_t cr4);
/* Whether linear page `lin` of window `window` maps physical page `phys`
 * with permission `rw` already. */
/* The current space goes direct (stlb.h): the soft TLB's entries that
 * form runs of SHADOW_ADOPT_RUN or more consecutive pages onto consecutive
 * frames with one permission enter the user view as one host mapping
 * each, as a large page does (what a TLB holds may be mapped ahead); each
 * page of them would otherwise cost a host fault and a signal (~30,000
 * cycles here) when next used. */
#define SHADOW_ADOPT_RUN 4u
void shadow_adopt_runs(struct shadow *s);
bool shadow_holds(const struct shadow *s, unsigned window, uint32_t lin, uint32_t phys, bool rw);
/* The physical page slot `sl` maps, or SHADOW_NONE. */
uint32_t shadow_frame(const struct shadow *s, uint32_t sl);
/* Write-protects every alias of physical page `phys` (code) or restores the
 * write access its mappings allow. */
void shadow_protect(struct shadow *s, uint32_t phys, bool code);
/* Takes the debugger's watchpoints `ws`: every mapping goes, and comes
 * back as they allow (a watched write faults, a watched page with reads
 * watched is not mapped at all). */
void shadow_set_watches(struct shadow *s, const struct watch_set *ws);
/* The kinds of access watched on linear page `lin_page` (WATCH_*). */
unsigned shadow_watched(const struct shadow *s, uint32_t lin_page);

#endif
