#include "tc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../mem/gmem.h"
#include "../mem/layout.h"
#include "../util.h"

/* Enough that a full cache's blocks make short chains: with 65,536, a
 * Debian fork+exec loop (each process's libraries at new addresses, so
 * ~2,200 new blocks a process, over 300,000 live before a flush) walked
 * chains of 5-15 at every miss, tc_lookup a tenth of the run. */
#define HASH_SHIFT 20u
#define HASH_BUCKETS (1u << HASH_SHIFT)
#define JTAB_BYTES (JTAB_ENTRIES * 8u)
#define COUNTERS_BYTES (TC_COUNTERS * 8u)

/* The EIP takes part: one physical page at many addresses (the vDSO,
 * placed anew in every process) would otherwise pile its translations,
 * one an address, onto one chain. */
static unsigned hash_key(uint32_t phys, uint32_t eip, uint32_t mode)
{
	return (((phys ^ (eip * 0x85EBCA6Bu)) * 0x9E3779B1u) ^ (mode * 0xC2B2AE35u)) >> (32 - HASH_SHIFT);
}

static void put_rel32(struct tc *tc, uint32_t at, uint32_t target)
{
	int32_t rel = (int32_t)(target - (at + 4));
	memcpy(tc_ptr(tc, at), &rel, 4);
}

static void emit_miss_stub(struct tc *tc)
{
	/* mov %r8d, VC_TARGET(%r15); mov $EXIT_ARG_LOOKUP_MISS, %r10d;
	 * jmp *VC_EXIT_GATE(%r15) */
	uint8_t stub[] = {0x45, 0x89, 0x47, VC_TARGET,
			  0x41, 0xba, EXIT_ARG_LOOKUP_MISS, 0, 0, 0,
			  0x41, 0xff, 0x67, VC_EXIT_GATE};
	tc->miss_stub = JTAB_BYTES + COUNTERS_BYTES;
	memcpy(tc_ptr(tc, tc->miss_stub), stub, sizeof stub);
	/* mov $EXIT_ARG_SOFT_MISS, %r10d; jmp *VC_EXIT_GATE(%r15) */
	const uint8_t soft[] = {0x41, 0xba, EXIT_ARG_SOFT_MISS, 0, 0, 0, 0x41, 0xff, 0x67, VC_EXIT_GATE};
	tc->soft_miss_stub = tc->miss_stub + 32;
	memcpy(tc_ptr(tc, tc->soft_miss_stub), soft, sizeof soft);
	/* Room the emulator rewrites for each instruction it runs natively
	 * against a bounce buffer: executable memory made before containment
	 * forbids new executable mappings. */
	tc->bounce = tc->miss_stub + 64;
	tc->code_start = tc->bounce + BOUNCE_AREA;
	BT86_ASSERT(tc->code_start == TC_TABLES_BYTES);
}

/* gmem calls this before the monitor writes into a page holding code. */
static void monitor_write_hook(void *opaque, uint32_t page)
{
	tc_invalidate_page(opaque, page, INVAL_MONITOR_WRITE);
}

int tc_init(struct tc *tc, struct gmem *mem, struct stats *stats, size_t size, bool counting,
	    char *err, size_t errlen)
{
	memset(tc, 0, sizeof *tc);
	if (size < TC_MIN_SIZE) {
		snprintf(err, errlen, "a translation cache of %zu bytes has no room for code (at least %u)", size,
			 TC_MIN_SIZE);
		return -1;
	}
	/* The containment filter compares 32-bit halves of addresses: keep the
	 * cache inside one 4 GiB-aligned region.  Of twice the size, either the
	 * first half does not cross a boundary or the part from the boundary
	 * on does not. */
	uint8_t *region = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE | PROT_EXEC,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	tc->base = region;
	if (region != MAP_FAILED) {
		uintptr_t r = (uintptr_t)region;
		uintptr_t start = (r >> 32) == ((r + size - 1) >> 32) ? r : ((r >> 32) + 1) << 32;
		tc->base = (uint8_t *)start;
		if (start > r)
			munmap(region, start - r);
		if (start + size < r + 2 * size)
			munmap((void *)(start + size), r + 2 * size - (start + size));
	}
	if (tc->base == MAP_FAILED) {
		snprintf(err, errlen, "cannot map the translation cache: %s", strerror(errno));
		return -1;
	}
	BT86_ASSERT((uintptr_t)tc->base >= GUEST_WINDOW_SIZE);
	tc->size = size;
	tc->counters = (uint64_t *)(tc->base + JTAB_BYTES);
	tc->counting = counting;
	tc->mem = mem;
	tc->stats = stats;
	tc->n_pages = mem->size / PAGE_SIZE_4K;
	tc->hash = calloc(HASH_BUCKETS, sizeof *tc->hash);
	tc->page_blocks = calloc(tc->n_pages, sizeof *tc->page_blocks);
	tc->first_at = malloc(((size >> 12) + 1) * sizeof *tc->first_at);
	tc->victims = calloc(TC_VICTIM_SETS, sizeof *tc->victims);
	if (!tc->hash || !tc->page_blocks || !tc->first_at || !tc->victims) {
		snprintf(err, errlen, "out of memory for the translation cache");
		tc_destroy(tc);
		return -1;
	}
	emit_miss_stub(tc);
	tc->used = tc->code_start;
	mem->code_write = monitor_write_hook;
	mem->code_write_opaque = tc;
	tc_jtab_clear(tc);
	return 0;
}

static void free_block(struct tc_block *b)
{
	free(b->map);
	free(b->exits);
	free(b);
}

void tc_destroy(struct tc *tc)
{
	for (size_t i = 0; i < tc->n_blocks; i++)
		free_block(tc->by_host[i]);
	free(tc->by_host);
	free(tc->host_at);
	free(tc->hash);
	free(tc->page_blocks);
	free(tc->first_at);
	free(tc->victims);
	if (tc->base && tc->base != MAP_FAILED)
		munmap(tc->base, tc->size);
	if (tc->mem)
		tc->mem->code_write = NULL;
	memset(tc, 0, sizeof *tc);
}

struct tc_block *tc_lookup(struct tc *tc, uint32_t eip, uint32_t phys, uint32_t mode, uint32_t phys2)
{
	for (struct tc_block *b = tc->hash[hash_key(phys, eip, mode)]; b; b = b->hash_next)
		if (b->phys == phys && b->eip == eip && b->mode == mode &&
		    (b->phys2 == TC_PHYS2_ANY || b->phys2 == phys2)) {
			tc->stats->lookup_hash_hits++;
			return b;
		}
	tc->stats->lookup_hash_misses++;
	return NULL;
}

bool tc_has_room(const struct tc *tc, size_t max)
{
	return tc->used + max <= tc->size;
}

void tc_commit(struct tc *tc, struct tc_block *b)
{
	unsigned h = hash_key(b->phys, b->eip, b->mode);

	b->valid = true;
	b->hash_next = tc->hash[h];
	tc->hash[h] = b;
	for (unsigned i = 0; i < b->n_pages; i++) {
		b->page_next[i] = tc->page_blocks[b->pages[i]];
		tc->page_blocks[b->pages[i]] = b;
		gmem_protect_code(tc->mem, b->pages[i]);
	}
	if (tc->n_blocks == tc->cap_blocks) {
		tc->cap_blocks = tc->cap_blocks ? tc->cap_blocks * 2 : 1024;
		tc->by_host = realloc(tc->by_host, tc->cap_blocks * sizeof *tc->by_host);
		tc->host_at = realloc(tc->host_at, tc->cap_blocks * sizeof *tc->host_at);
		BT86_ASSERT(tc->by_host && tc->host_at);
	}
	BT86_ASSERT(tc->n_blocks == 0 || tc->by_host[tc->n_blocks - 1]->host < b->host);
	for (; tc->n_indexed <= b->host >> 12; tc->n_indexed++)
		tc->first_at[tc->n_indexed] = (uint32_t)tc->n_blocks;
	tc->host_at[tc->n_blocks] = b->host;
	tc->by_host[tc->n_blocks++] = b;
	tc->used = b->host + b->host_len;
	tc->stats->blocks++;
	tc->stats->tc_bytes += b->host_len;
	tc->stats->guest_insns += b->n_insns;
}

struct tc_block *tc_block_at(const struct tc *tc, uint32_t host_off)
{
	/* The last block starting at or before host_off: past the blocks
	 * that start before its 4 KiB of the cache, and up to those that start
	 * after. */
	uint32_t p = host_off >> 12;
	size_t lo = p < tc->n_indexed ? tc->first_at[p] : tc->n_blocks;
	size_t hi = p + 1 < tc->n_indexed ? tc->first_at[p + 1] : tc->n_blocks;

	lo = lo > 0 ? lo - 1 : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (tc->host_at[mid] <= host_off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	struct tc_block *b = tc->by_host[lo - 1];
	return host_off < b->host + b->host_len ? b : NULL;
}

struct tc_exit *tc_exit_by_stub(struct tc_block *b, uint32_t stub_off)
{
	for (unsigned i = 0; i < b->n_exits; i++)
		if (b->exits[i].stub == stub_off)
			return &b->exits[i];
	return NULL;
}

uint32_t tc_guest_eip_at(const struct tc_block *b, uint32_t host_off, bool *boundary)
{
	uint32_t rel = host_off - b->host;
	unsigned i = 0;

	while (i + 1 <= b->n_insns && b->map[i + 1].host <= rel)
		i++;
	*boundary = b->map[i].host == rel;
	return b->map[i].eip;
}

void tc_chain(struct tc *tc, struct tc_exit *x, struct tc_block *target)
{
	BT86_ASSERT(x->patch && !x->linked && target->valid);
	put_rel32(tc, x->patch, target->host);
	x->linked = target;
	x->in_next = target->incoming;
	target->incoming = x;
	tc->stats->chains_made++;
}

static void unchain(struct tc *tc, struct tc_exit *x)
{
	put_rel32(tc, x->patch, x->stub);
	x->linked = NULL;
	tc->stats->chains_broken++;
}

/* Lists entry `i` among those a CR3 load checks. */
static void jtab_list(struct tc *tc, uint32_t i)
{
	if (tc->jtab_listed[i])
		return;
	if (tc->n_jtab_local < TC_JTAB_LOCAL_MAX) {
		tc->jtab_local[tc->n_jtab_local++] = i;
		tc->jtab_listed[i] = true;
	} else {
		tc->jtab_local_overflow = true;
	}
}

/* Enters EIP's entry (code offset `host`, tc_jtab_page value `page`). */
static void jtab_put(struct tc *tc, uint32_t eip, uint32_t host, uint32_t page, bool global)
{
	uint32_t *e = (uint32_t *)tc->base;
	uint32_t i = 2 * jtab_set(eip);

	if (e[2 * i] == -eip) {
		/* way 0 already */
	} else if (e[2 * (i + 1)] == -eip) {
		i++;
	} else if (e[2 * i + 1] != tc->miss_stub) {
		/* The newest entry goes to way 0, where the probe looks first;
		 * the one there moves to way 1 (a CR3 load still checks it). */
		e[2 * i + 2] = e[2 * i];
		e[2 * i + 3] = e[2 * i + 1];
		tc->jtab_page[i + 1] = tc->jtab_page[i];
		if (tc->jtab_listed[i])
			jtab_list(tc, i + 1);
	}
	e[2 * i] = -eip;
	e[2 * i + 1] = host;
	tc->jtab_page[i] = page;
	tc->jtab_eip_pages[eip >> 15] |= (uint8_t)(1u << (eip >> 12 & 7));
	if (!global)
		jtab_list(tc, i);
}

void tc_jtab_set(struct tc *tc, uint32_t eip, const struct tc_block *b, bool global)
{
	jtab_put(tc, eip, b->host, b->phys2 != TC_PHYS2_ANY ? TC_JTAB_NEVER_KEEP
				   : (b->phys >> 12) | ((b->mode & 3u) == 3 ? TC_JTAB_USER : 0) | /* low bits: CPL */
					     (b->mode & TC_MODE_SOFT ? TC_JTAB_SOFT : 0),
		 global);
}

static bool eip_page_has_entries(const struct tc *tc, uint32_t eip)
{
	return tc->jtab_eip_pages[eip >> 15] & (1u << (eip >> 12 & 7));
}

static void jtab_reset(struct tc *tc, uint32_t i)
{
	uint32_t *e = (uint32_t *)tc->base + 2 * i;
	e[0] = 0;
	e[1] = tc->miss_stub;
}

void tc_jtab_clear(struct tc *tc)
{
	for (uint32_t i = 0; i < JTAB_ENTRIES; i++)
		jtab_reset(tc, i);
	memset(tc->jtab_listed, 0, sizeof tc->jtab_listed);
	memset(tc->jtab_eip_pages, 0, sizeof tc->jtab_eip_pages);
	if (tc->victims)
		memset(tc->victims, 0, TC_VICTIM_SETS * sizeof *tc->victims);
	tc->n_jtab_local = 0;
	tc->jtab_local_overflow = false;
}

static struct tc_victims *victims_of(const struct tc *tc, uint32_t eip)
{
	return &tc->victims[((eip >> 12) * 0x9E3779B1u) >> 20];
}

/* Keeps a dropped entry in its EIP page's set (a set that held another
 * page, or entries from before a block invalidation, starts afresh). */
static void victim_put(struct tc *tc, uint32_t eip, uint32_t host, uint32_t page)
{
	struct tc_victims *v = victims_of(tc, eip);
	_Static_assert(TC_VICTIM_SETS == 1u << 12, "a 12-bit hash");
	if (v->eip_page != (eip >> 12) + 1 || v->invalidations != tc->stats->blocks_invalidated) {
		v->eip_page = (eip >> 12) + 1;
		v->n = 0;
		v->invalidations = tc->stats->blocks_invalidated;
	}
	uint32_t held = v->n < TC_VICTIM_WAYS ? v->n : TC_VICTIM_WAYS;
	for (uint32_t i = 0; i < held; i++)
		if (v->e[i].eip == eip) {
			v->e[i] = (struct tc_victim){eip, host, page};
			return;
		}
	v->e[v->n++ % TC_VICTIM_WAYS] = (struct tc_victim){eip, host, page};
	v->put_at = tc->switches;
}

void tc_jtab_unpark(struct tc *tc, uint32_t eip, uint32_t page)
{
	const struct tc_victims *v = victims_of(tc, eip);
	if (v->eip_page != (eip >> 12) + 1 || v->invalidations != tc->stats->blocks_invalidated)
		return; /* nothing kept, or its blocks may be gone */
	/* Not entries dropped at the last CR3 load or the one before: a
	 * pipe's two ends take turns, each dropping the code the other never
	 * mapped at every turn and missing on one or two of it before the
	 * next; putting the page's entries back each time cost dd | md5sum
	 * 14%. */
	if (tc->switches - v->put_at < 2)
		return;
	uint32_t held = v->n < TC_VICTIM_WAYS ? v->n : TC_VICTIM_WAYS;
	for (uint32_t i = 0; i < held; i++)
		if (v->e[i].page == page) {
			jtab_put(tc, v->e[i].eip, v->e[i].host, page, false);
			tc->stats->lookup_restored++;
		}
}

/* An entry listed here may since hold a global EIP; dropping that one too
 * costs a lookup miss, nothing more. */
void tc_jtab_switch(struct tc *tc, bool (*still)(void *ctx, uint32_t eip, uint32_t page), void *ctx)
{
	const uint32_t *e = (const uint32_t *)tc->base;
	uint32_t kept = 0;

	tc->switches++;
	if (tc->jtab_local_overflow) {
		tc_jtab_clear(tc);
		return;
	}
	for (uint32_t i = 0; i < tc->n_jtab_local; i++) {
		uint32_t at = tc->jtab_local[i], page = tc->jtab_page[at];
		bool live = e[2 * at + 1] != tc->miss_stub && page != TC_JTAB_NEVER_KEEP;
		if (live && still(ctx, -e[2 * at], page)) {
			tc->jtab_local[kept++] = at;
			continue;
		}
		if (live)
			victim_put(tc, -e[2 * at], e[2 * at + 1], page);
		jtab_reset(tc, at);
		tc->jtab_listed[at] = false;
	}
	tc->n_jtab_local = kept;
}

void tc_jtab_clear_range(struct tc *tc, uint32_t first, uint32_t n)
{
	const uint32_t *e = (const uint32_t *)tc->base;
	if (!eip_page_has_entries(tc, first) && !eip_page_has_entries(tc, first + n - 1))
		return; /* invlpg of a data page: the common case */
	if (n == PAGE_SIZE_4K && !(first & 0xFFF))
		tc->jtab_eip_pages[first >> 15] &= (uint8_t)~(1u << (first >> 12 & 7));
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t i = 2 * jtab_set(first + k); i < 2 * jtab_set(first + k) + 2; i++)
			if (-e[2 * i] - first < n)
				jtab_reset(tc, i);
}

static void unhash(struct tc *tc, struct tc_block *b)
{
	struct tc_block **pp = &tc->hash[hash_key(b->phys, b->eip, b->mode)];
	while (*pp != b)
		pp = &(*pp)->hash_next;
	*pp = b->hash_next;
}

static void unlist_page(struct tc *tc, struct tc_block *b, unsigned which)
{
	uint32_t page = b->pages[which];
	struct tc_block **pp = &tc->page_blocks[page];

	while (*pp) {
		struct tc_block *c = *pp;
		unsigned ci = c->pages[0] == page ? 0 : 1;
		if (c == b) {
			*pp = c->page_next[ci];
			return;
		}
		pp = &c->page_next[ci];
	}
}

static void invalidate_block(struct tc *tc, struct tc_block *b)
{
	uint32_t set = jtab_set(b->eip);
	b->valid = false;
	unhash(tc, b);
	/* Only the entries of the block's own EIP's set can lead to it. */
	for (uint32_t i = 2 * set; i < 2 * set + 2; i++)
		if (((const uint32_t *)tc->base)[2 * i + 1] == b->host)
			jtab_reset(tc, i);
	for (struct tc_exit *x = b->incoming; x; x = x->in_next)
		unchain(tc, x);
	b->incoming = NULL;
	/* Drop this block's own links from its targets' incoming lists. */
	for (unsigned i = 0; i < b->n_exits; i++) {
		struct tc_exit *x = &b->exits[i];
		if (!x->linked)
			continue;
		struct tc_exit **pp = &x->linked->incoming;
		while (*pp && *pp != x)
			pp = &(*pp)->in_next;
		if (*pp)
			*pp = x->in_next;
		x->linked = NULL;
	}
	tc->stats->blocks_invalidated++;
}

void tc_invalidate_page(struct tc *tc, uint32_t page, enum inval_cause cause)
{
	BT86_ASSERT(page < tc->n_pages);
	while (tc->page_blocks[page]) {
		struct tc_block *b = tc->page_blocks[page];
		for (unsigned i = 0; i < b->n_pages; i++)
			unlist_page(tc, b, i);
		invalidate_block(tc, b);
		for (unsigned i = 0; i < b->n_pages; i++)
			if (b->pages[i] != page && !tc->page_blocks[b->pages[i]])
				gmem_unprotect_code(tc->mem, b->pages[i]);
	}
	gmem_unprotect_code(tc->mem, page);
	tc->stats->invalidations[cause]++;
}

static void fold_counts(struct tc *tc, const struct tc_block *b)
{
	uint64_t n = tc_block_execs(tc, b);
	tc->stats->exec_verbatim += n * b->n_verbatim;
	tc->stats->exec_retargeted += n * b->n_retargeted;
	tc->stats->exec_rewritten += n * b->n_rewritten;
	tc->stats->exec_callout += n * b->n_callout;
}

uint32_t tc_counter_alloc(struct tc *tc)
{
	if (!tc->counting || tc->n_counted == TC_COUNTERS)
		return TC_NO_COUNTER;
	tc->counters[tc->n_counted] = 0;
	return tc->n_counted++;
}

void tc_exec_totals(const struct tc *tc, uint64_t out[4])
{
	out[0] = tc->stats->exec_verbatim;
	out[1] = tc->stats->exec_retargeted;
	out[2] = tc->stats->exec_rewritten;
	out[3] = tc->stats->exec_callout;
	for (size_t i = 0; i < tc->n_blocks; i++) {
		const struct tc_block *b = tc->by_host[i];
		uint64_t n = tc_block_execs(tc, b);
		out[0] += n * b->n_verbatim;
		out[1] += n * b->n_retargeted;
		out[2] += n * b->n_rewritten;
		out[3] += n * b->n_callout;
	}
}

void tc_flush(struct tc *tc)
{
	for (size_t i = 0; i < tc->n_blocks; i++) {
		fold_counts(tc, tc->by_host[i]);
		free_block(tc->by_host[i]);
	}
	tc->n_counted = 0;
	tc->n_blocks = 0;
	tc->n_indexed = 0;
	memset(tc->hash, 0, HASH_BUCKETS * sizeof *tc->hash);
	for (uint32_t p = 0; p < tc->n_pages; p++)
		if (tc->page_blocks[p]) {
			tc->page_blocks[p] = NULL;
			gmem_unprotect_code(tc->mem, p);
		}
	tc->used = tc->code_start;
	tc->generation++;
	tc->stats->flushes++;
	tc_jtab_clear(tc);
}
