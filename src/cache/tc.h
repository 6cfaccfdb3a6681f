/*
 * The translation cache: blocks of translated code, their lookup (an inline
 * direct-mapped table in front of a hash on guest-physical address, EIP and
 * mode),
 * chaining of direct branches, invalidation and flushing.
 *
 * One host mapping holds the lookup table, the per-block execution counters
 * and then the code; translated code reaches all three through r14, and every
 * code offset here is relative to it.  Counters exist only when the cache was
 * created with counting on (--stats): each block entry then increments its own
 * with a flag-free load/lea/store.
 *
 * Invariants:
 *  - A valid block is in the hash and on the page list of each guest page its
 *    code came from, and those pages are write-protected in the shadow.
 *  - An exit is either unlinked (its branch targets its own stub) or linked
 *    to a valid block and on that block's incoming list; invalidating a block
 *    unpatches exactly its incoming exits.
 *  - Only branches whose target lies on the block's own guest page are
 *    chained, so a change of the linear->physical view never leaves a stale
 *    link between pages; other transfers go through the lookup table, which
 *    is cleared whenever that view or the mode changes.
 */
#ifndef BT86_TC_H
#define BT86_TC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../cpu/vcpu_abi.h"
#include "stats.h"

struct gmem;

/* Bytes for the emulator's bounce thunk (emulate.c), before the code. */
#define BOUNCE_AREA 256u

enum tc_exit_kind {
	TCX_BRANCH,    /* direct branch; chainable when patch != 0 */
	TCX_EMULATE,   /* the instruction at guest_eip goes to the emulator */
	TCX_ATTN,      /* block entry saw the attention word */
	TCX_STI,       /* continue at guest_eip after an interrupt window opened */
	TCX_DIVIDE_ERROR, /* the div or idiv at guest_eip raises #DE (its test said so) */
	TCX_PORT,      /* the in or out at guest_eip (CPL 0), described by io; the block goes on at resume */
	TCX_INVLPG,    /* the invlpg at guest_eip (CPL 0) of the linear address in VC_TARGET */
	TCX_SYSTEM,    /* int n, int3, iretd, sysenter or sysexit at guest_eip, described by io (emu_system) */
};

struct tc_block;

struct tc_exit {
	uint32_t stub;        /* code offset of the exit stub */
	uint32_t patch;       /* code offset of the rel32 that chaining rewrites, or 0 */
	uint32_t guest_eip;
	uint8_t kind;
	uint32_t io;          /* TCX_PORT: TC_IO_* bits, the length and the immediate port; TCX_INVLPG: the length;
	                         TCX_SYSTEM: enum emu_sys in bits 0-3, the length in 4-7, the vector in 8-15 */
	uint32_t resume;      /* TCX_PORT: code offset of the next instruction's code */
	struct tc_block *owner;
	struct tc_block *linked;
	struct tc_exit *in_next;
};

/* A TCX_PORT exit's io word: the access size in bytes (1, 2, 4) in bits
 * 0-2, the instruction's length in bits 4-7 (a TCX_INVLPG's has only
 * that), the immediate port in bits 16-31 unless the port is DX. */
#define TC_IO_IN 0x8u
#define TC_IO_DX 0x100u

/* Host offset (from the block's start) of each guest instruction's code. */
struct tc_insn_map {
	uint32_t host;
	uint32_t eip;
};

/* A block's phys2: the guest-physical frame (page address) the tail of its
 * first instruction came from, when under paging that instruction runs onto
 * the next linear page (its bytes are gathered from both frames); or
 * TC_PHYS2_UNMAPPED when it was sent to the emulator because that page was
 * not mapped; TC_PHYS2_ANY for every other block.  Such a block is only
 * valid while the next page still maps to phys2, so lookups compare it and
 * nothing chains to it. */
#define TC_PHYS2_ANY 0xFFFFFFFFu
#define TC_PHYS2_UNMAPPED 0xFFFFFFFEu

struct tc_block {
	uint32_t eip;         /* guest linear EIP of the entry */
	uint32_t phys;        /* guest-physical address of the first byte */
	uint32_t phys2;       /* see TC_PHYS2_ANY */
	uint32_t mode;        /* mode bits the translation assumed */
	uint32_t guest_len;
	uint32_t host;        /* code offset of the entry */
	uint32_t host_len;
	uint32_t pages[2];    /* guest-physical pages the code came from */
	uint16_t n_pages;
	uint16_t n_insns;     /* map has n_insns + 1 entries; the last is the end */
	uint16_t n_exits;
	bool valid;
	struct tc_insn_map *map;
	struct tc_exit *exits;
	struct tc_exit *incoming;
	struct tc_block *hash_next;
	struct tc_block *page_next[2];
	uint32_t counter;     /* index into tc->counters, or TC_NO_COUNTER */
	uint16_t n_verbatim, n_retargeted, n_rewritten, n_callout;
};

struct tc_victim {
	uint32_t eip, host, page; /* a dropped entry, and its tc->jtab_page */
};

/* A set of the victim cache (tc_jtab_switch, tc_jtab_unpark): the entries
 * of one EIP page, the newest TC_VICTIM_WAYS of them. */
#define TC_VICTIM_SETS 4096u
#define TC_VICTIM_WAYS 16u
struct tc_victims {
	uint32_t eip_page;       /* EIP >> 12, + 1: 0 is an empty set */
	uint32_t n;              /* entries put in, the oldest overwritten past TC_VICTIM_WAYS */
	uint64_t invalidations;  /* stats->blocks_invalidated when the set was last written */
	uint64_t put_at;         /* tc->switches then */
	struct tc_victim e[TC_VICTIM_WAYS];
};

#define TC_NO_COUNTER 0xFFFFFFFFu
#define TC_COUNTERS 262144u
/* The cache's mapping: the lookup table, the counters, the shared stubs,
 * then code; below TC_MIN_SIZE there would be no room for a block. */
#define TC_TABLES_BYTES (JTAB_ENTRIES * 8u + TC_COUNTERS * 8u + 320u)
#define TC_MIN_SIZE (TC_TABLES_BYTES + (64u << 10))
#define TC_JTAB_LOCAL_MAX 8192u
#define TC_JTAB_USER 0x80000000u
#define TC_JTAB_SOFT 0x40000000u /* a block in the soft-TLB form */
#define TC_MODE_SOFT 0x10u       /* that form's bit in tc_block.mode (XMODE_SOFT) */
#define TC_JTAB_NEVER_KEEP 0xFFFFFFFFu

struct tc {
	uint8_t *base;        /* r14: lookup table, counters, stubs, code */
	uint64_t *counters;   /* execution counts, when counting */
	uint32_t n_counted;   /* counters handed out this generation */
	bool counting;
	size_t size;
	uint32_t code_start;  /* first code offset */
	uint32_t used;        /* next free code offset */
	uint32_t miss_stub;   /* code offset of the shared lookup-miss stub */
	uint32_t soft_miss_stub; /* and of the soft TLB's (stlb.h) */
	uint32_t bounce;      /* code offset of the emulator's bounce thunk (emulate.c), BOUNCE_AREA bytes */
	/* lookup-table entries set for non-global pages since the last clear,
	 * each once (jtab_listed says which are) */
	uint32_t jtab_local[TC_JTAB_LOCAL_MAX];
	bool jtab_listed[JTAB_ENTRIES];
	/* per entry: the guest-physical page of the block it leads to, with
	 * TC_JTAB_USER for a CPL-3 block and TC_JTAB_SOFT for one in the
	 * soft-TLB form; TC_JTAB_NEVER_KEEP for a block with
	 * a straddling instruction */
	uint32_t jtab_page[JTAB_ENTRIES];
	/* a bit for each 4 KiB page of EIPs: set when an entry for an EIP in
	 * it was set since the page's entries were last all dropped */
	uint8_t jtab_eip_pages[(1u << 20) / 8];
	/* Entries a CR3 load dropped, by the page of their EIP, to come back
	 * at a lookup miss in that page when it maps to the same frame. */
	struct tc_victims *victims;
	uint64_t switches;     /* CR3 loads (tc_jtab_switch calls) so far */
	uint32_t n_jtab_local;
	bool jtab_local_overflow;
	struct tc_block **hash;
	struct tc_block **by_host; /* every block of this generation, by host offset */
	uint32_t *host_at;         /* and each one's host offset, to search */
	size_t n_blocks, cap_blocks;
	/* per 4 KiB of the mapping, for tc_block_at: the index in by_host of
	 * the first block starting there or later (filled for n_indexed) */
	uint32_t *first_at, n_indexed;
	struct tc_block **page_blocks; /* per guest RAM page */
	uint32_t n_pages;
	uint64_t generation;  /* bumped by every flush */
	struct gmem *mem;
	struct stats *stats;
};

int tc_init(struct tc *tc, struct gmem *mem, struct stats *stats, size_t size, bool counting,
	    char *err, size_t errlen);
void tc_destroy(struct tc *tc);

static inline uint8_t *tc_ptr(const struct tc *tc, uint32_t off)
{
	return tc->base + off;
}

/* The block for guest EIP `eip` whose code is at guest-physical `phys`.
 * Both must match: a block's exits, return addresses and fault EIPs are
 * absolute guest EIPs, so one physical page mapped at two addresses (the
 * vDSO in two processes, a shared library) needs a translation for each.
 * `phys2` is where the next linear page maps now (a frame, or
 * TC_PHYS2_UNMAPPED; TC_PHYS2_ANY when EIP is not near a page's end): a
 * block whose first instruction straddles must agree with it. */
struct tc_block *tc_lookup(struct tc *tc, uint32_t eip, uint32_t phys, uint32_t mode, uint32_t phys2);

/* Room for at most `max` bytes of new code at tc_ptr(tc, tc->used), or false
 * when the cache is full (the caller flushes and translates again). */
bool tc_has_room(const struct tc *tc, size_t max);

/* Registers a block whose code has been written at b->host: takes ownership
 * of b, b->map and b->exits; hashes it and write-protects its pages. */
void tc_commit(struct tc *tc, struct tc_block *b);

struct tc_block *tc_block_at(const struct tc *tc, uint32_t host_off);
struct tc_exit *tc_exit_by_stub(struct tc_block *b, uint32_t stub_off);

/* Guest EIP of the instruction whose code contains host_off; *boundary says
 * whether host_off is exactly where that instruction's code starts. */
uint32_t tc_guest_eip_at(const struct tc_block *b, uint32_t host_off, bool *boundary);

void tc_chain(struct tc *tc, struct tc_exit *x, struct tc_block *target);

/* The inline lookup table, keyed by guest EIP alone: entries must go when
 * the EIP may mean other code.  `global` says the EIP's page is mapped
 * global (or paging is off), so that the entry survives a CR3 load. */
void tc_jtab_set(struct tc *tc, uint32_t eip, const struct tc_block *b, bool global);
void tc_jtab_clear(struct tc *tc);
/* A CR3 load: drops the entries set for non-global pages, except those
 * for which `still(ctx, eip, page)` says the new address space fetches EIP
 * from the same physical page (page carries TC_JTAB_USER for a CPL-3
 * block), as a TLB could still hold it; the dropped ones go to the victim
 * cache. */
void tc_jtab_switch(struct tc *tc, bool (*still)(void *ctx, uint32_t eip, uint32_t page), void *ctx);
/* A lookup miss at `eip`, whose page the current address space maps to
 * physical page `page` (with TC_JTAB_USER for CPL 3), found by a walk
 * that set A: puts back the victim cache's entries of that EIP page that
 * lead from the same frame to blocks still valid, if they were dropped
 * before the last two CR3 loads. */
void tc_jtab_unpark(struct tc *tc, uint32_t eip, uint32_t page);
/* invlpg: drops the entries whose EIP lies in [first, first + n), n at
 * most 4096 (a page, or the last bytes of the page before, where an
 * instruction may start that runs onto the page). */
void tc_jtab_clear_range(struct tc *tc, uint32_t first, uint32_t n);

/* Invalidates every block whose code came from guest-physical `page` and
 * restores write access to it. */
void tc_invalidate_page(struct tc *tc, uint32_t page, enum inval_cause cause);
void tc_flush(struct tc *tc);

/* Code offset of the next free counter, or TC_NO_COUNTER. */
uint32_t tc_counter_alloc(struct tc *tc);
static inline uint64_t tc_block_execs(const struct tc *tc, const struct tc_block *b)
{
	return b->counter == TC_NO_COUNTER ? 0 : tc->counters[b->counter];
}
/* Executed guest instructions by kind, over every generation so far:
 * verbatim, re-targeted, rewritten, through the emulator. */
void tc_exec_totals(const struct tc *tc, uint64_t out[4]);

#endif
