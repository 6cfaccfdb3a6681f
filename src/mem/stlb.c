#include "stlb.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../cache/stats.h"
#include "../util.h"
#include "gmem.h"

static uint64_t frame_host(uint32_t frame)
{
	return STLB_FRAMES_BASE + ((uint64_t)frame << (PAGE_SHIFT_4K + 1));
}

int stlb_init(struct stlb *st, struct gmem *mem, struct stats *stats)
{
	memset(st, 0, sizeof *st);
	st->mem = mem;
	st->stats = stats;
	st->pos = calloc(STLB_PAGES, sizeof *st->pos);
	st->frame_on = calloc(mem->size >> PAGE_SHIFT_4K, 1);
	bool ok = st->pos && st->frame_on;
	for (unsigned k = 0; k < SPACE_SLOTS; k++) {
		struct stlb_space *sp = &st->space[k];
		sp->page = malloc(STLB_MAX_ENTRIES * sizeof *sp->page);
		sp->frame = malloc(STLB_MAX_ENTRIES * sizeof *sp->frame);
		sp->rw = malloc(STLB_MAX_ENTRIES);
		sp->budget = STLB_YOUNG_BLOCKS;
		ok &= sp->page && sp->frame && sp->rw;
	}
	if (!ok) {
		stlb_destroy(st);
		return -1;
	}
	return 0;
}

static void unmap_frames(struct stlb *st)
{
	if (st->n_frames)
		munmap((void *)(uintptr_t)STLB_FRAMES_BASE, STLB_FRAMES_SPAN);
	if (st->frame_on)
		memset(st->frame_on, 0, st->mem->size >> PAGE_SHIFT_4K);
	st->n_frames = 0;
}

void stlb_destroy(struct stlb *st)
{
	if (st->mem)
		unmap_frames(st);
	free(st->pos);
	free(st->frame_on);
	for (unsigned k = 0; k < SPACE_SLOTS; k++) {
		free(st->space[k].page);
		free(st->space[k].frame);
		free(st->space[k].rw);
	}
	memset(st, 0, sizeof *st);
}

void stlb_attach(struct stlb *st, uint64_t *read, uint64_t *write, uint64_t *budget)
{
	st->read = read;
	st->write = write;
	st->budget = budget;
	if (budget)
		*budget = st->space[st->cur].budget;
}

static uint64_t entry(const struct stlb *st, uint32_t page, uint32_t frame)
{
	return frame_host(frame) - st->view - ((uint64_t)page << PAGE_SHIFT_4K);
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
}

/* Maps `frame` into the frame region, read-only if it holds code. */
static void map_frame(struct stlb *st, uint32_t frame)
{
	if (st->n_frames == STLB_MAX_FRAMES) {
		stlb_flush(st);
		unmap_frames(st);
		st->stats->stlb_frame_flushes++;
	}
	int prot = st->mem->code_page[frame] ? PROT_READ : PROT_READ | PROT_WRITE;
	void *p = mmap((void *)(uintptr_t)frame_host(frame), PAGE_SIZE_4K, prot,
		       MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_POPULATE, st->mem->fd, (off_t)frame << PAGE_SHIFT_4K);
	BT86_ASSERT(p == (void *)(uintptr_t)frame_host(frame));
	st->frame_on[frame] = 1;
	st->n_frames++;
	st->stats->stlb_frames_mapped++;
}

void stlb_fill(struct stlb *st, uint32_t page, uint32_t frame, bool rw)
{
	struct stlb_space *sp = &st->space[st->cur];

	BT86_ASSERT(st->read && page < STLB_PAGES && frame < st->mem->size >> PAGE_SHIFT_4K);
	if (!st->frame_on[frame])
		map_frame(st, frame);
	uint32_t i;
	if (st->read[page]) {
		i = st->pos[page];
	} else {
		if (sp->n == STLB_MAX_ENTRIES)
			stlb_flush(st);
		i = sp->n++;
		sp->page[i] = page;
		st->pos[page] = (uint16_t)i;
	}
	sp->frame[i] = frame;
	sp->rw[i] = rw;
	st->read[page] = entry(st, page, frame);
	st->write[page] = rw ? st->read[page] : 0;
	st->stats->stlb_fills++;
}

bool stlb_has(const struct stlb *st, uint32_t page)
{
	return st->read[page] != 0;
}

void stlb_drop(struct stlb *st, uint32_t page)
{
	struct stlb_space *sp = &st->space[st->cur];

	if (!st->read || !st->read[page])
		return;
	st->read[page] = st->write[page] = 0;
	uint32_t i = st->pos[page], last = --sp->n;
	sp->page[i] = sp->page[last];
	sp->frame[i] = sp->frame[last];
	sp->rw[i] = sp->rw[last];
	st->pos[sp->page[i]] = (uint16_t)i;
}

void stlb_switch(struct stlb *st, unsigned k, uint64_t view, bool fresh, stlb_check check, void *ctx)
{
	struct stlb_space *sp = &st->space[k];

	if (st->read) {
		clear_tables(st);
		st->space[st->cur].budget = *st->budget;
	}
	st->cur = k;
	st->view = view;
	if (fresh) {
		sp->n = 0;
		sp->direct = false;
		sp->budget = STLB_YOUNG_BLOCKS;
	}
	if (st->budget)
		*st->budget = sp->budget;
	if (!st->read)
		return; /* not attached yet: every list is empty */
	uint32_t kept = 0, before = sp->n;
	for (uint32_t i = 0; i < sp->n; i++) {
		uint32_t page = sp->page[i], frame = sp->frame[i];
		enum stlb_keep a = check(ctx, page, frame, sp->rw[i]);
		if (a == STLB_DROP)
			continue;
		sp->page[kept] = page;
		sp->frame[kept] = frame;
		sp->rw[kept] = a == STLB_KEEP && sp->rw[i];
		st->pos[page] = (uint16_t)kept;
		st->read[page] = entry(st, page, frame);
		st->write[page] = sp->rw[kept] ? st->read[page] : 0;
		kept++;
	}
	sp->n = kept;
	if (before >= 8 && kept * 4 < before) {
		sp->direct = false;
		*st->budget = sp->budget = STLB_YOUNG_BLOCKS;
	}
}

bool stlb_spent(struct stlb *st)
{
	struct stlb_space *sp = &st->space[st->cur];
	*st->budget = STLB_YOUNG_BLOCKS;
	if (sp->direct)
		return false;
	sp->direct = true;
	st->stats->stlb_promotions++;
	return true;
}

void stlb_protect(struct stlb *st, uint32_t frame)
{
	if (!st->frame_on || !st->frame_on[frame])
		return;
	int prot = st->mem->code_page[frame] ? PROT_READ : PROT_READ | PROT_WRITE;
	BT86_ASSERT(mprotect((void *)(uintptr_t)frame_host(frame), PAGE_SIZE_4K, prot) == 0);
}

bool stlb_frame_at(uint64_t addr, uint32_t *frame, bool *after)
{
	if (addr < STLB_FRAMES_BASE || addr >= STLB_FRAMES_BASE + STLB_FRAMES_SPAN)
		return false;
	uint64_t off = addr - STLB_FRAMES_BASE;
	*frame = (uint32_t)(off >> (PAGE_SHIFT_4K + 1));
	*after = (off >> PAGE_SHIFT_4K) & 1;
	return true;
}
