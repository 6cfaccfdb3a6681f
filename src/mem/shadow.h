/*
 * The shadow page tables: the host's own page tables over the low 4 GiB,
 * driven by mmap, acting as a virtual TLB for the guest's linear space.
 *
 * There are two windows onto guest linear space: the kernel window at host
 * address 0, which translated ring-0 code uses, and the user window at
 * USER_WINDOW_BASE, which ring-3 code reaches through its gs: prefix and
 * which only ever holds pages a user access may touch.  A "slot" names a
 * page of either: window << 20 | linear page.
 *
 * With paging off both windows are the identity view of guest RAM.  With
 * paging on, a guest linear page enters a window on first use (a hidden
 * fault), mapped to its guest-physical page of the RAM memfd; invlpg drops
 * one page from both, a CR3 load drops the non-global ones, paging-mode
 * changes drop all.
 *
 * Invariants:
 *  - A mapped page is writable in the window only if the guest's entry allows
 *    the write, its dirty bit is already set, and its physical page holds no
 *    translated code; so the first write of a clean page faults and sets D,
 *    and every write to a code page faults (at every alias, in both windows:
 *    the reverse map links each physical page to the slots mapping it).
 *  - Pages leave the window by being re-reserved PROT_NONE, never unmapped,
 *    so no host mapping can ever land where guest code reaches.
 *  - The number of mapped pages stays below SHADOW_MAX_PAGES; reaching it
 *    flushes the shadow (counted), which bounds the host's mapping count.
 */
#ifndef BT86_SHADOW_H
#define BT86_SHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHADOW_MAX_PAGES 32768u
#define SHADOW_NONE 0xFFFFFFFFu

enum shadow_flush_cause {
	SHFLUSH_CR3,       /* CR3 load (non-global pages) */
	SHFLUSH_MODE,      /* CR0.PG/WP or CR4.PSE/PGE changed */
	SHFLUSH_CAPACITY,  /* the mapping count reached its bound */
	SHFLUSH_CAUSES,
};

struct gmem;
struct stats;

/* The pages each recent address space last faulted in, mapped again
 * when its CR3 comes back (if its tables still map them alike): what a
 * process touched before it was switched out it mostly touches again. */
#define SHADOW_SPACES 16u
#define SHADOW_SPACE_FAULTS 8u

struct shadow_space {
	uint32_t cr3;
	uint64_t used;          /* for eviction: the least recent goes */
	uint32_t slot[SHADOW_SPACE_FAULTS], phys[SHADOW_SPACE_FAULTS];
	uint8_t rw[SHADOW_SPACE_FAULTS];
	uint32_t n, next;
};

struct shadow {
	struct gmem *mem;
	struct stats *stats;
	bool paging;
	uint32_t *lin_phys;    /* per slot: physical page, or SHADOW_NONE */
	uint8_t *lin_flags;    /* per slot: SHADOW_RW, SHADOW_GLOBAL */
	uint32_t *alias_next;  /* per slot: next slot mapping the same physical page */
	uint32_t *alias_head;  /* per physical RAM page: first slot mapping it */
	/* The mapped slots, for flushes: global ones apart, so that a CR3 load
	 * touches only the others.  list_pos is each slot's index in its list
	 * (which one its SHADOW_GLOBAL flag says). */
	uint32_t *mapped_local, *mapped_global;
	uint32_t n_local, n_global;
	uint32_t *list_pos;
	bool user_window;      /* the user window is reserved (for teardown) */
	struct shadow_space spaces[SHADOW_SPACES];
	struct shadow_space *space; /* the current CR3's, or NULL */
	uint64_t space_clock;
};

#define SHADOW_RW 0x1u      /* the guest may write and D is set */
#define SHADOW_GLOBAL 0x2u

int shadow_init(struct shadow *s, struct gmem *mem, struct stats *stats, char *err, size_t errlen);
void shadow_destroy(struct shadow *s);

/* CR0.PG changed: drops every mapping; off restores the identity view. */
void shadow_set_paging(struct shadow *s, bool on);
#define SHADOW_KERNEL 0u
#define SHADOW_USER 1u

/* A hidden fault mapped linear page `lin` of `window` (a frame, writable
 * or not): remembered for the current address space (shadow_switch_cr3). */
void shadow_note_fault(struct shadow *s, unsigned window, uint32_t lin, uint32_t phys, bool rw);
/* Whether linear page `lin` may enter window `window`: never host page 0
 * (below mmap_min_addr) or the kernel window's top page (a guard of the
 * user window, layout.h); accesses there are emulated. */
bool shadow_mappable(const struct shadow *s, unsigned window, uint32_t lin);
/* Maps linear page `lin` of window `window` to physical page `phys` (RAM)
 * with the guest's permission `rw` (write allowed and dirty) and
 * globalness. */
void shadow_map(struct shadow *s, unsigned window, uint32_t lin, uint32_t phys, bool rw, bool global);
/* Maps `n` consecutive linear pages onto consecutive physical pages with
 * one host mapping (a 4 MiB page), same permissions for all. */
void shadow_map_run(struct shadow *s, unsigned window, uint32_t lin, uint32_t phys, uint32_t n, bool rw,
		    bool global);
/* invlpg: drops linear page `lin` from both windows. */
void shadow_unmap(struct shadow *s, uint32_t lin);
void shadow_flush(struct shadow *s, bool keep_global, enum shadow_flush_cause cause);
/* A CR3 load (the new tables at cr3): drops the non-global pages, except
 * those the new tables map to the same frame with A already set and, for
 * a writable mapping, still writable with D set (what a TLB could hold
 * across the switch; nothing in guest memory changes); then maps again,
 * under the same rule, the last pages this CR3 faulted in when it ran
 * before.  Counted as a CR3 flush. */
void shadow_switch_cr3(struct shadow *s, uint32_t cr0, uint32_t cr3, uint32_t cr4);
/* Write-protects every alias of physical page `phys` (code) or restores the
 * write access its mappings allow. */
void shadow_protect(struct shadow *s, uint32_t phys, bool code);

#endif
