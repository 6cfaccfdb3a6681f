#include "shadow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../cache/stats.h"
#include "../util.h"
#include "gmem.h"
#include "layout.h"
#include "pagewalk.h"

#define LIN_PAGES (1u << 20)
#define SLOTS (2u * LIN_PAGES)

static uint32_t slot(unsigned window, uint32_t lin)
{
	return window << 20 | lin;
}

static void *host(uint32_t slot)
{
	return (void *)((uintptr_t)slot << PAGE_SHIFT_4K);
}

static void reserve(const struct shadow *s, uint32_t page, uint32_t n)
{
	/* Kernel-window pages below mmap_min_addr were never mapped and
	 * cannot be. */
	uint32_t first = s->mem->low_hole >> PAGE_SHIFT_4K;
	if (page < first) {
		if (page + n <= first)
			return;
		n -= first - page;
		page = first;
	}
	void *p = mmap(host(page), (size_t)n << PAGE_SHIFT_4K, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	BT86_ASSERT(p != MAP_FAILED);
}

static void identity(struct shadow *s)
{
	struct gmem *m = s->mem;
	uint32_t user = slot(SHADOW_USER, 0);
	void *p = mmap(host(user), m->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, m->fd, 0);
	BT86_ASSERT(p != MAP_FAILED);
	if (m->size > m->low_hole) {
		p = mmap(host(m->low_hole >> PAGE_SHIFT_4K), m->size - m->low_hole, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, m->fd, m->low_hole);
		BT86_ASSERT(p != MAP_FAILED);
	}
	for (uint32_t pg = 0; pg < m->size >> PAGE_SHIFT_4K; pg++)
		if (m->code_page[pg])
			shadow_protect(s, pg, true);
}

static void protect_hook(void *opaque, uint32_t page, bool code)
{
	shadow_protect(opaque, page, code);
}

int shadow_init(struct shadow *s, struct gmem *mem, struct stats *stats, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	s->mem = mem;
	s->stats = stats;
	s->lin_phys = malloc(SLOTS * sizeof *s->lin_phys);
	s->lin_flags = calloc(SLOTS, 1);
	s->alias_next = malloc(SLOTS * sizeof *s->alias_next);
	s->alias_head = malloc((mem->size >> PAGE_SHIFT_4K) * sizeof *s->alias_head);
	s->mapped_local = malloc(SHADOW_MAX_PAGES * sizeof *s->mapped_local);
	s->mapped_global = malloc(SHADOW_MAX_PAGES * sizeof *s->mapped_global);
	s->list_pos = malloc(SLOTS * sizeof *s->list_pos);
	if (!s->lin_phys || !s->lin_flags || !s->alias_next || !s->alias_head || !s->mapped_local ||
	    !s->mapped_global || !s->list_pos) {
		snprintf(err, errlen, "out of memory for the shadow page tables");
		shadow_destroy(s);
		return -1;
	}
	memset(s->lin_phys, 0xFF, SLOTS * sizeof *s->lin_phys);
	memset(s->alias_head, 0xFF, (mem->size >> PAGE_SHIFT_4K) * sizeof *s->alias_head);
	/* The user window, like the kernel window, is reserved whole. */
	void *w = mmap((void *)(uintptr_t)USER_WINDOW_BASE, GUEST_WINDOW_SIZE + PAGE_SIZE_4K, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (w == MAP_FAILED) {
		snprintf(err, errlen, "cannot reserve the user window at 4 GiB");
		shadow_destroy(s);
		return -1;
	}
	s->user_window = true;
	mem->protect = protect_hook;
	mem->protect_opaque = s;
	identity(s);
	return 0;
}

void shadow_destroy(struct shadow *s)
{
	if (s->mem && s->mem->protect == protect_hook)
		s->mem->protect = NULL;
	if (s->user_window)
		munmap((void *)(uintptr_t)USER_WINDOW_BASE, GUEST_WINDOW_SIZE + PAGE_SIZE_4K);
	free(s->lin_phys);
	free(s->lin_flags);
	free(s->alias_next);
	free(s->alias_head);
	free(s->mapped_local);
	free(s->mapped_global);
	free(s->list_pos);
	memset(s, 0, sizeof *s);
}

static int prot_for(const struct shadow *s, uint32_t lin)
{
	bool rw = (s->lin_flags[lin] & SHADOW_RW) && !s->mem->code_page[s->lin_phys[lin]];
	return rw ? PROT_READ | PROT_WRITE : PROT_READ;
}

static void unlink_alias(struct shadow *s, uint32_t lin)
{
	uint32_t *pp = &s->alias_head[s->lin_phys[lin]];
	while (*pp != lin) {
		BT86_ASSERT(*pp != SHADOW_NONE);
		pp = &s->alias_next[*pp];
	}
	*pp = s->alias_next[lin];
}

static uint32_t n_mapped(const struct shadow *s)
{
	return s->n_local + s->n_global;
}

static void count_mappings(struct shadow *s)
{
	s->stats->shadow_mappings = n_mapped(s);
	if (n_mapped(s) > s->stats->shadow_mappings_peak)
		s->stats->shadow_mappings_peak = n_mapped(s);
}

/* Enters a slot whose lin_flags are set in its list. */
static void list_add(struct shadow *s, uint32_t lin)
{
	if (s->lin_flags[lin] & SHADOW_GLOBAL) {
		s->list_pos[lin] = s->n_global;
		s->mapped_global[s->n_global++] = lin;
	} else {
		s->list_pos[lin] = s->n_local;
		s->mapped_local[s->n_local++] = lin;
	}
}

static void list_remove(struct shadow *s, uint32_t lin)
{
	bool global = s->lin_flags[lin] & SHADOW_GLOBAL;
	uint32_t *list = global ? s->mapped_global : s->mapped_local;
	uint32_t *n = global ? &s->n_global : &s->n_local;
	uint32_t at = s->list_pos[lin], last = list[--*n];
	list[at] = last;
	s->list_pos[last] = at;
}

/* Drops a mapping from the slot arrays and the reverse map; the caller
 * takes it out of its list and reserves the host page. */
static void drop(struct shadow *s, uint32_t lin)
{
	unlink_alias(s, lin);
	s->lin_phys[lin] = SHADOW_NONE;
	s->lin_flags[lin] = 0;
}

/* Forgets a mapping without touching the host (the caller reserves or
 * maps over it). */
static void forget(struct shadow *s, uint32_t lin)
{
	list_remove(s, lin);
	drop(s, lin);
}

static void unmap_slot(struct shadow *s, uint32_t sl)
{
	if (s->lin_phys[sl] == SHADOW_NONE)
		return;
	forget(s, sl);
	reserve(s, sl, 1);
	s->stats->shadow_mappings = n_mapped(s);
}

void shadow_unmap(struct shadow *s, uint32_t lin)
{
	if (!s->paging)
		return;
	unmap_slot(s, slot(SHADOW_KERNEL, lin));
	unmap_slot(s, slot(SHADOW_USER, lin));
}

static int by_page(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Drops every slot of a list, re-reserving each run of consecutive pages
 * with one call. */
static void flush_runs(struct shadow *s, uint32_t *list, uint32_t *n)
{
	qsort(list, *n, sizeof *list, by_page);
	for (uint32_t i = 0; i < *n;) {
		uint32_t lin = list[i], run = 1;
		drop(s, lin);
		while (i + run < *n && list[i + run] == lin + run)
			drop(s, lin + run++);
		reserve(s, lin, run);
		i += run;
	}
	*n = 0;
}

/* Drops every slot of the local list with one reservation a window, over
 * the span its slots cover, when no global slot lies inside that span (a
 * process's pages are scattered over 3 GiB: one call instead of one a
 * run, and the host zaps only what is mapped).  False: use the runs. */
static bool flush_span(struct shadow *s)
{
	uint32_t lo[2] = {UINT32_MAX, UINT32_MAX}, hi[2] = {0, 0};
	for (uint32_t i = 0; i < s->n_local; i++) {
		uint32_t sl = s->mapped_local[i], w = sl >> 20;
		lo[w] = sl < lo[w] ? sl : lo[w];
		hi[w] = sl > hi[w] ? sl : hi[w];
	}
	for (uint32_t i = 0; i < s->n_global; i++) {
		uint32_t sl = s->mapped_global[i], w = sl >> 20;
		if (sl >= lo[w] && sl <= hi[w])
			return false;
	}
	for (uint32_t i = 0; i < s->n_local; i++)
		drop(s, s->mapped_local[i]);
	for (unsigned w = 0; w < 2; w++)
		if (lo[w] <= hi[w])
			reserve(s, lo[w], hi[w] - lo[w] + 1);
	s->n_local = 0;
	return true;
}

void shadow_flush(struct shadow *s, bool keep_global, enum shadow_flush_cause cause)
{
	s->stats->shadow_flushes[cause]++;
	if (!keep_global)
		flush_runs(s, s->mapped_global, &s->n_global);
	if (!flush_span(s))
		flush_runs(s, s->mapped_local, &s->n_local);
	s->stats->shadow_mappings = n_mapped(s);
}

/* Beyond this many non-global pages a CR3 load drops them all: checking
 * each against the new tables would cost more than faulting them back. */
#define SHADOW_KEEP_MAX 1024u

/* Whether the tables at cr3 map slot `sl` to frame `phys` as a TLB entry
 * could hold it: present for the window's kind of access, not global, A
 * already set, and for a writable mapping writable with D set. */
static bool tables_agree(const struct shadow *s, uint32_t cr0, uint32_t cr3, uint32_t cr4, uint32_t sl,
			 uint32_t phys, bool rw)
{
	struct pw_result r;
	unsigned access = PW_PROBE | ((sl >> 20) == SHADOW_USER ? PF_U : 0);
	return pw_walk(s->mem, cr0, cr3, cr4, (sl & (LIN_PAGES - 1)) << PAGE_SHIFT_4K, access, &r) &&
	       r.accessed && !r.global && r.phys >> PAGE_SHIFT_4K == phys && (!rw || (r.writable && r.dirty));
}

void shadow_note_fault(struct shadow *s, unsigned window, uint32_t lin, uint32_t phys, bool rw)
{
	struct shadow_space *sp = s->space;
	if (!sp)
		return;
	sp->slot[sp->next] = slot(window, lin);
	sp->phys[sp->next] = phys;
	sp->rw[sp->next] = rw;
	sp->next = (sp->next + 1) % SHADOW_SPACE_FAULTS;
	if (sp->n < SHADOW_SPACE_FAULTS)
		sp->n++;
}

/* The incoming CR3's record (a fresh one, replacing the least recently
 * used, for a CR3 not seen lately), with its last faults mapped again. */
static void space_enter(struct shadow *s, uint32_t cr0, uint32_t cr3, uint32_t cr4)
{
	struct shadow_space *sp = NULL, *lru = &s->spaces[0];
	for (unsigned i = 0; i < SHADOW_SPACES && !sp; i++) {
		if (s->spaces[i].used && s->spaces[i].cr3 == cr3)
			sp = &s->spaces[i];
		else if (s->spaces[i].used < lru->used)
			lru = &s->spaces[i];
	}
	if (!sp) {
		sp = lru;
		memset(sp, 0, sizeof *sp);
		sp->cr3 = cr3;
	}
	sp->used = ++s->space_clock;
	s->space = sp;
	for (uint32_t i = 0; i < sp->n; i++) {
		uint32_t sl = sp->slot[i];
		if (s->lin_phys[sl] != SHADOW_NONE || n_mapped(s) >= SHADOW_MAX_PAGES ||
		    !tables_agree(s, cr0, cr3, cr4, sl, sp->phys[i], sp->rw[i]))
			continue;
		shadow_map(s, sl >> 20, sl & (LIN_PAGES - 1), sp->phys[i], sp->rw[i], false);
		s->stats->shadow_replayed++;
	}
}

void shadow_switch_cr3(struct shadow *s, uint32_t cr0, uint32_t cr3, uint32_t cr4)
{
	uint32_t kept = 0, dropped = 0;
	uint32_t *gone = s->mapped_global + s->n_global; /* spare room past the global list */

	if (s->n_local > SHADOW_KEEP_MAX || s->n_local + s->n_global > SHADOW_MAX_PAGES) {
		shadow_flush(s, true, SHFLUSH_CR3);
		space_enter(s, cr0, cr3, cr4);
		return;
	}
	s->stats->shadow_flushes[SHFLUSH_CR3]++;
	for (uint32_t i = 0; i < s->n_local; i++) {
		uint32_t sl = s->mapped_local[i];
		if (tables_agree(s, cr0, cr3, cr4, sl, s->lin_phys[sl], s->lin_flags[sl] & SHADOW_RW)) {
			s->list_pos[sl] = kept;
			s->mapped_local[kept++] = sl;
		} else {
			gone[dropped++] = sl;
		}
	}
	s->n_local = kept;
	flush_runs(s, gone, &dropped);
	s->stats->shadow_mappings = n_mapped(s);
	space_enter(s, cr0, cr3, cr4);
}

void shadow_set_paging(struct shadow *s, bool on)
{
	if (s->paging) {
		shadow_flush(s, false, SHFLUSH_MODE);
	}
	s->paging = on;
	if (on) {
		reserve(s, slot(SHADOW_KERNEL, 0), s->mem->size >> PAGE_SHIFT_4K);
		reserve(s, slot(SHADOW_USER, 0), s->mem->size >> PAGE_SHIFT_4K);
	} else {
		identity(s);
	}
}

bool shadow_mappable(const struct shadow *s, unsigned window, uint32_t lin)
{
	if (window == SHADOW_KERNEL)
		return lin >= s->mem->low_hole >> PAGE_SHIFT_4K && lin != KERNEL_WINDOW_TOP_PAGE;
	return true;
}

void shadow_map(struct shadow *s, unsigned window, uint32_t lin_page, uint32_t phys, bool rw, bool global)
{
	uint32_t lin = slot(window, lin_page);
	BT86_ASSERT(s->paging && phys < s->mem->size >> PAGE_SHIFT_4K);
	if (!shadow_mappable(s, window, lin_page))
		return; /* host page 0, or the guard page: accesses there are emulated */
	if (s->lin_phys[lin] != SHADOW_NONE)
		forget(s, lin); /* remapped (another frame, or now writable) */
	else if (n_mapped(s) == SHADOW_MAX_PAGES)
		shadow_flush(s, false, SHFLUSH_CAPACITY);
	s->lin_phys[lin] = phys;
	s->lin_flags[lin] = (uint8_t)((rw ? SHADOW_RW : 0) | (global ? SHADOW_GLOBAL : 0));
	s->alias_next[lin] = s->alias_head[phys];
	s->alias_head[phys] = lin;
	list_add(s, lin);
	void *p = mmap(host(lin), PAGE_SIZE_4K, prot_for(s, lin), MAP_SHARED | MAP_FIXED, s->mem->fd,
		       (off_t)phys << PAGE_SHIFT_4K);
	BT86_ASSERT(p != MAP_FAILED);
	count_mappings(s);
}

void shadow_map_run(struct shadow *s, unsigned window, uint32_t lin_page, uint32_t phys, uint32_t n, bool rw,
		    bool global)
{
	uint32_t first = slot(window, lin_page);
	BT86_ASSERT(s->paging && phys + n <= s->mem->size >> PAGE_SHIFT_4K);
	if (window == SHADOW_KERNEL && lin_page + n > KERNEL_WINDOW_TOP_PAGE)
		n = KERNEL_WINDOW_TOP_PAGE - lin_page; /* the guard stays out */
	if (n == 0)
		return;
	if (first < s->mem->low_hole >> PAGE_SHIFT_4K || n > SHADOW_MAX_PAGES / 4) {
		shadow_map(s, window, lin_page, phys, rw, global); /* host page 0 in the way */
		return;
	}
	if (n_mapped(s) + n > SHADOW_MAX_PAGES)
		shadow_flush(s, false, SHFLUSH_CAPACITY);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t sl = first + i;
		if (s->lin_phys[sl] != SHADOW_NONE)
			forget(s, sl);
		s->lin_phys[sl] = phys + i;
		s->lin_flags[sl] = (uint8_t)((rw ? SHADOW_RW : 0) | (global ? SHADOW_GLOBAL : 0));
		s->alias_next[sl] = s->alias_head[phys + i];
		s->alias_head[phys + i] = sl;
		list_add(s, sl);
	}
	void *p = mmap(host(first), (size_t)n << PAGE_SHIFT_4K, rw ? PROT_READ | PROT_WRITE : PROT_READ,
		       MAP_SHARED | MAP_FIXED, s->mem->fd, (off_t)phys << PAGE_SHIFT_4K);
	BT86_ASSERT(p != MAP_FAILED);
	if (rw) /* code pages inside the run stay read-only */
		for (uint32_t i = 0; i < n; i++)
			if (s->mem->code_page[phys + i])
				BT86_ASSERT(mprotect(host(first + i), PAGE_SIZE_4K, PROT_READ) == 0);
	s->stats->shadow_runs++;
	count_mappings(s);
}

void shadow_protect(struct shadow *s, uint32_t phys, bool code)
{
	(void)code; /* gmem's code_page already says which; prot_for reads it */
	if (!s->paging) {
		int prot = s->mem->code_page[phys] ? PROT_READ : PROT_READ | PROT_WRITE;
		if ((phys << PAGE_SHIFT_4K) >= s->mem->low_hole)
			BT86_ASSERT(mprotect(host(slot(SHADOW_KERNEL, phys)), PAGE_SIZE_4K, prot) == 0);
		BT86_ASSERT(mprotect(host(slot(SHADOW_USER, phys)), PAGE_SIZE_4K, prot) == 0);
		return;
	}
	for (uint32_t lin = s->alias_head[phys]; lin != SHADOW_NONE; lin = s->alias_next[lin])
		BT86_ASSERT(mprotect(host(lin), PAGE_SIZE_4K, prot_for(s, lin)) == 0);
}
