#include "stlb.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../cache/stats.h"
#include "../util.h"
#include "gmem.h"
#include "watch.h"

static uint64_t frame_host(uint32_t frame)
{
	return STLB_FRAMES_BASE + ((uint64_t)frame << PAGE_SHIFT_4K);
}

int stlb_init(struct stlb *st, struct gmem *mem, struct stats *stats)
{
	memset(st, 0, sizeof *st);
	st->mem = mem;
	st->stats = stats;
	st->pos = calloc(STLB_PAGES, sizeof *st->pos);
	st->frame_written = calloc(mem->size >> PAGE_SHIFT_4K, 1);
	st->chunk_ready = calloc((mem->size >> STLB_CHUNK_SHIFT) + 1, 1);
	st->k.pos = calloc(STLB_PAGES, sizeof *st->k.pos);
	for (unsigned k = 0; k < SPACE_SLOTS; k++)
		st->space[k].budget = STLB_YOUNG_BLOCKS;
	void *p = mmap((void *)(uintptr_t)STLB_FRAMES_BASE, mem->size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_FIXED_NOREPLACE, mem->fd, 0);
	if (p != (void *)(uintptr_t)STLB_FRAMES_BASE) {
		if (p != MAP_FAILED)
			munmap(p, mem->size);
		st->mem = NULL;
	}
	if (!st->pos || !st->frame_written || !st->chunk_ready || !st->k.pos || !st->mem) {
		stlb_destroy(st);
		return -1;
	}
	return 0;
}

void stlb_destroy(struct stlb *st)
{
	if (st->mem)
		munmap((void *)(uintptr_t)STLB_FRAMES_BASE, st->mem->size);
	free(st->pos);
	free(st->frame_written);
	free(st->chunk_ready);
	free(st->k.pos);
	for (unsigned k = 0; k < SPACE_SLOTS; k++) {
		free(st->space[k].page);
		free(st->space[k].frame);
		free(st->space[k].rw);
	}
	memset(st, 0, sizeof *st);
}

void stlb_attach(struct stlb *st, uint64_t *read, uint64_t *write, uint64_t *kread, uint64_t *kwrite,
		 uint64_t *budget)
{
	st->read = read;
	st->write = write;
	st->k.read = kread;
	st->k.write = kwrite;
	st->k.n = 0;
	st->budget = budget;
	if (budget)
		*budget = st->space[st->cur].budget;
}

/* The frame region's pages come into being 2 MiB at a time, with one
 * madvise, rather than at a host fault a page (each ~4,000 cycles on this
 * host and most of a guest's first touch: QEMU's anonymous RAM gets
 * transparent huge pages, a memfd does not).  A host refusing
 * MADV_POPULATE_WRITE (before Linux 5.14) leaves the faults. */
static void chunk_populate(struct stlb *st, uint32_t frame)
{
	uint32_t c = frame >> (STLB_CHUNK_SHIFT - PAGE_SHIFT_4K);
	if (st->chunk_ready[c])
		return;
	st->chunk_ready[c] = 1;
	uint64_t at = (uint64_t)c << STLB_CHUNK_SHIFT, len = 1ull << STLB_CHUNK_SHIFT;
	if (at + len > st->mem->size)
		len = st->mem->size - at;
	madvise((void *)(uintptr_t)(STLB_FRAMES_BASE + at), len, MADV_POPULATE_WRITE);
}

/* Sets a pair of tables' entries for `page` -> `frame`: the write entry
 * leads to the frame region only when the guest allows the write, the
 * frame holds no code and the debugger watches nothing on the page; a
 * store to code or to a watched page goes through `view` (the user view
 * for ring 3's tables, the kernel view for ring 0's), which faults on it,
 * and so does a read of a page with reads watched. */
static void put_entry(struct stlb *st, uint64_t *read, uint64_t *write, uint64_t view, uint32_t page,
		      uint32_t frame, bool rw)
{
	unsigned watched = st->watch && st->watch->n ? watch_page(st->watch, page) : 0;
	chunk_populate(st, frame);
	read[page] = watched & WATCH_READ ? view : frame_host(frame) - ((uint64_t)page << PAGE_SHIFT_4K);
	if (!rw) {
		write[page] = 0;
	} else if (watched || st->mem->code_page[frame]) {
		write[page] = view;
	} else {
		write[page] = read[page];
		st->frame_written[frame] = 1;
	}
}

static void set_entry(struct stlb *st, uint32_t page, uint32_t frame, bool rw)
{
	put_entry(st, st->read, st->write, st->view, page, frame, rw);
}

/* Drops ring 0's entries, or with keep_global its non-global ones. */
static void kernel_clear(struct stlb *st, bool keep_global)
{
	struct stlb_kernel *k = &st->k;
	uint32_t kept = 0;
	if (!k->read)
		return;
	for (uint32_t i = 0; i < k->n; i++) {
		uint32_t page = k->page[i];
		if (!keep_global || !k->global[i]) {
			k->read[page] = k->write[page] = 0;
			continue;
		}
		k->page[kept] = page;
		k->frame[kept] = k->frame[i];
		k->rw[kept] = k->rw[i];
		k->global[kept] = 1;
		k->pos[page] = kept++;
	}
	k->n = kept;
}

void stlb_kernel_fill(struct stlb *st, uint32_t page, uint32_t frame, bool rw, bool global)
{
	struct stlb_kernel *k = &st->k;

	BT86_ASSERT(k->read && page < STLB_PAGES && frame < st->mem->size >> PAGE_SHIFT_4K);
	uint32_t i;
	if (k->read[page]) {
		i = k->pos[page];
	} else {
		if (k->n == STLB_KERNEL_ENTRIES)
			kernel_clear(st, false); /* as a full TLB starts over */
		i = k->n++;
		k->page[i] = page;
		k->pos[page] = i;
	}
	k->frame[i] = frame;
	k->rw[i] = rw;
	k->global[i] = global;
	put_entry(st, k->read, k->write, k->view, page, frame, rw);
	st->stats->stlb_kernel_fills++;
}

/* Takes the current space's entries out of the tables (its list stays). */
static void clear_tables(struct stlb *st)
{
	struct stlb_space *sp = &st->space[st->cur];
	for (uint32_t i = 0; i < sp->n; i++)
		st->read[sp->page[i]] = st->write[sp->page[i]] = 0;
}

void stlb_flush(struct stlb *st)
{
	if (st->read)
		clear_tables(st);
	for (unsigned k = 0; k < SPACE_SLOTS; k++)
		st->space[k].n = 0;
	kernel_clear(st, false);
}

/* Room for one more entry in the current space's list. */
static void grow(struct stlb_space *sp)
{
	uint32_t cap = sp->cap ? 2 * sp->cap : 1024;
	uint32_t *page = realloc(sp->page, cap * sizeof *page);
	if (page)
		sp->page = page;
	uint32_t *frame = realloc(sp->frame, cap * sizeof *frame);
	if (frame)
		sp->frame = frame;
	uint8_t *rw = realloc(sp->rw, cap);
	if (rw)
		sp->rw = rw;
	BT86_ASSERT(page && frame && rw); /* at most STLB_PAGES entries: 9 MiB */
	sp->cap = cap;
}

void stlb_fill(struct stlb *st, uint32_t page, uint32_t frame, bool rw)
{
	struct stlb_space *sp = &st->space[st->cur];

	BT86_ASSERT(st->read && page < STLB_PAGES && frame < st->mem->size >> PAGE_SHIFT_4K);
	uint32_t i;
	if (st->read[page]) {
		i = st->pos[page];
	} else {
		if (sp->n == sp->cap)
			grow(sp);
		i = sp->n++;
		sp->page[i] = page;
		st->pos[page] = i;
	}
	sp->frame[i] = frame;
	sp->rw[i] = rw;
	set_entry(st, page, frame, rw);
	sp->fills++;
	st->stats->stlb_fills++;
}

bool stlb_has(const struct stlb *st, uint32_t page)
{
	return st->read[page] != 0;
}

void stlb_drop(struct stlb *st, uint32_t page)
{
	struct stlb_space *sp = &st->space[st->cur];
	struct stlb_kernel *k = &st->k;

	if (k->read && k->read[page]) {
		k->read[page] = k->write[page] = 0;
		uint32_t i = k->pos[page], last = --k->n;
		k->page[i] = k->page[last];
		k->frame[i] = k->frame[last];
		k->rw[i] = k->rw[last];
		k->global[i] = k->global[last];
		k->pos[k->page[i]] = i;
	}
	if (!st->read || !st->read[page])
		return;
	st->read[page] = st->write[page] = 0;
	uint32_t i = st->pos[page], last = --sp->n;
	sp->page[i] = sp->page[last];
	sp->frame[i] = sp->frame[last];
	sp->rw[i] = sp->rw[last];
	st->pos[sp->page[i]] = i;
}

void stlb_switch(struct stlb *st, unsigned k, uint64_t view, uint64_t kview, bool fresh, stlb_check check,
		 void *ctx)
{
	struct stlb_space *sp = &st->space[k];

	kernel_clear(st, true);
	st->k.view = kview;
	/* A kept (global) entry may lead to the view: a code frame's write, a
	 * watched page. */
	for (uint32_t i = 0; i < st->k.n; i++)
		put_entry(st, st->k.read, st->k.write, kview, st->k.page[i], st->k.frame[i], st->k.rw[i]);

	if (st->read) {
		clear_tables(st);
		st->space[st->cur].budget = *st->budget;
	}
	st->cur = k;
	st->view = view;
	st->outgrown = false;
	if (fresh) {
		sp->n = 0;
		sp->direct = sp->big = false;
		sp->budget = STLB_YOUNG_BLOCKS;
		sp->entered = 0;
		sp->dropping = false;
		sp->turns = sp->dropped = 0;
	}
	if (st->budget)
		*st->budget = sp->budget;
	if (!st->read)
		return; /* not attached yet: every list is empty */
	if (sp->dropped) /* the last switch into it dropped some: were they missed? */
		sp->dropping = (uint64_t)sp->fills * STLB_REFILL_WORTH < sp->dropped;
	sp->fills = 0;
	sp->dropped = 0;
	uint32_t kept = 0, before = sp->n, look = sp->n;
	bool drop = sp->n && (sp->dropping || ++sp->turns >= STLB_PROBE_TURNS);
	if (drop) {
		/* Those checked and kept stay in the list. */
		sp->turns = 0;
		look = before = sp->n < STLB_DROP_CHECKED ? sp->n : STLB_DROP_CHECKED;
	}
	for (uint32_t i = 0; i < look; i++) {
		uint32_t page = sp->page[i], frame = sp->frame[i];
		enum stlb_keep a = check(ctx, page, frame, sp->rw[i]);
		if (a == STLB_DROP)
			continue;
		sp->page[kept] = page;
		sp->frame[kept] = frame;
		sp->rw[kept] = a == STLB_KEEP && sp->rw[i];
		st->pos[page] = kept;
		set_entry(st, page, frame, sp->rw[kept]);
		kept++;
	}
	if (drop) {
		sp->dropped = sp->n - kept;
		st->stats->stlb_dropped += sp->dropped;
	}
	sp->n = kept;
	if (before >= (drop ? STLB_DROP_CHECKED : 8u) && kept * 4 < before) {
		sp->direct = sp->big = false;
		*st->budget = sp->budget = STLB_YOUNG_BLOCKS;
		sp->entered = 0;
	}
}

bool stlb_spent(struct stlb *st)
{
	struct stlb_space *sp = &st->space[st->cur];
	*st->budget = STLB_YOUNG_BLOCKS;
	if (sp->direct || sp->big)
		return false;
	sp->entered += STLB_YOUNG_BLOCKS;
	if (sp->entered < (uint64_t)STLB_ENTRY_WORTH * sp->n)
		return false; /* its live pages would cost more in host mappings */
	sp->direct = true;
	st->stats->stlb_promotions++;
	return true;
}

bool stlb_outgrow(struct stlb *st)
{
	struct stlb_space *sp = &st->space[st->cur];
	if (sp->big)
		return false;
	sp->big = true;
	sp->direct = false;
	st->outgrown = true;
	st->stats->stlb_outgrown++;
	return true;
}

void stlb_protect(struct stlb *st, uint32_t frame)
{
	if (!st->read || !st->frame_written || !st->frame_written[frame] || !st->mem->code_page[frame])
		return;
	/* A frame turned into code: its write entries go through the user
	 * view from now on. */
	struct stlb_space *sp = &st->space[st->cur];
	for (uint32_t i = 0; i < sp->n; i++)
		if (sp->frame[i] == frame && sp->rw[i])
			st->write[sp->page[i]] = st->view;
	for (uint32_t i = 0; i < st->k.n; i++)
		if (st->k.frame[i] == frame && st->k.rw[i])
			st->k.write[st->k.page[i]] = st->k.view;
	st->frame_written[frame] = 0;
}
