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
#include "watch.h"

#define LIN_PAGES (1u << 20)
#define SLOTS (SHADOW_WINDOWS * LIN_PAGES)

static uint32_t slot(unsigned window, uint32_t lin)
{
	return window << 20 | lin;
}

uint64_t shadow_window_base(unsigned window)
{
	return window == SHADOW_KERNEL ? 0 : SPACE_WINDOWS_BASE + (window - 1) * GUEST_WINDOW_SIZE;
}

static void *host(uint32_t slot)
{
	return (void *)(uintptr_t)(shadow_window_base(slot >> 20) + ((uint64_t)(slot & (LIN_PAGES - 1)) << PAGE_SHIFT_4K));
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

/* The kinds of access the debugger watches on linear page `page`. */
static unsigned watched(const struct shadow *s, uint32_t page)
{
	return s->watch.n ? watch_page(&s->watch, page) : 0;
}

/* Paging off: what the identity views allow at page pg (linear and
 * physical alike). */
static int identity_prot(const struct shadow *s, uint32_t pg)
{
	unsigned w = watched(s, pg);
	if (w & WATCH_READ)
		return PROT_NONE;
	return s->mem->code_page[pg] || (w & WATCH_WRITE) ? PROT_READ : PROT_READ | PROT_WRITE;
}

/* Paging off: the kernel window and the current user view show RAM. */
static void identity(struct shadow *s)
{
	struct gmem *m = s->mem;
	uint32_t user = slot(shadow_uview(s->cur), 0);
	void *p = mmap(host(user), m->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, m->fd, 0);
	BT86_ASSERT(p != MAP_FAILED);
	if (m->size > m->low_hole) {
		p = mmap(host(m->low_hole >> PAGE_SHIFT_4K), m->size - m->low_hole, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, m->fd, m->low_hole);
		BT86_ASSERT(p != MAP_FAILED);
	}
	for (uint32_t pg = 0; pg < m->size >> PAGE_SHIFT_4K; pg++)
		if (identity_prot(s, pg) != (PROT_READ | PROT_WRITE))
			shadow_protect(s, pg, true);
}

static void protect_hook(void *opaque, uint32_t page, bool code)
{
	shadow_protect(opaque, page, code);
}

/* Makes slot k's pair current, bound to `cr3`. */
static void bind(struct shadow *s, unsigned k, uint32_t cr3)
{
	s->slot_cr3[k] = cr3;
	s->slot_used[k] = ++s->clock;
	s->cur = k;
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
	/* Runs let the pages outnumber the host mappings: the lists have room
	 * for every slot (address space the host only backs where used). */
	s->global = malloc(SLOTS * sizeof *s->global);
	s->list_pos = malloc(SLOTS * sizeof *s->list_pos);
	s->scratch = malloc(LIN_PAGES * sizeof *s->scratch);
	bool lists = s->scratch != NULL;
	for (unsigned w = 0; w < SHADOW_WINDOWS; w++)
		lists &= (s->local[w] = malloc(LIN_PAGES * sizeof *s->local[w])) != NULL;
	if (!s->lin_phys || !s->lin_flags || !s->alias_next || !s->alias_head || !s->global || !s->list_pos ||
	    !lists) {
		snprintf(err, errlen, "out of memory for the shadow page tables");
		shadow_destroy(s);
		return -1;
	}
	if (stlb_init(&s->soft, mem, stats)) {
		snprintf(err, errlen, "out of memory, or no room at %#llx, for the soft TLB's frame region", (unsigned long long)STLB_FRAMES_BASE);
		shadow_destroy(s);
		return -1;
	}
	s->soft.watch = &s->watch;
	memset(s->alias_head, 0xFF, (mem->size >> PAGE_SHIFT_4K) * sizeof *s->alias_head);
	/* The space windows, like the kernel window, are reserved whole. */
	void *w = mmap((void *)(uintptr_t)(SPACE_WINDOWS_BASE - PAGE_SIZE_4K),
		       SPACE_WINDOWS_END - SPACE_WINDOWS_BASE + 2 * PAGE_SIZE_4K, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (w == MAP_FAILED) {
		snprintf(err, errlen, "cannot reserve the address-space windows at %#llx", SPACE_WINDOWS_BASE);
		shadow_destroy(s);
		return -1;
	}
	s->reserved = true;
	bind(s, 0, SHADOW_NONE);
	mem->protect = protect_hook;
	mem->protect_opaque = s;
	identity(s);
	return 0;
}

void shadow_destroy(struct shadow *s)
{
	if (s->mem && s->mem->protect == protect_hook)
		s->mem->protect = NULL;
	if (s->soft.mem)
		stlb_destroy(&s->soft);
	if (s->reserved)
		munmap((void *)(uintptr_t)(SPACE_WINDOWS_BASE - PAGE_SIZE_4K),
		       SPACE_WINDOWS_END - SPACE_WINDOWS_BASE + 2 * PAGE_SIZE_4K);
	for (unsigned w = 0; w < SHADOW_WINDOWS; w++)
		free(s->local[w]);
	free(s->lin_phys);
	free(s->lin_flags);
	free(s->alias_next);
	free(s->alias_head);
	free(s->global);
	free(s->scratch);
	free(s->list_pos);
	memset(s, 0, sizeof *s);
}

static int prot_for(const struct shadow *s, uint32_t lin)
{
	unsigned w = watched(s, lin & (LIN_PAGES - 1));
	if (w & WATCH_READ)
		return PROT_NONE;
	bool rw = (s->lin_flags[lin] & SHADOW_RW) && !s->mem->code_page[s->lin_phys[lin]] && !(w & WATCH_WRITE);
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
	uint32_t n = s->n_global;
	for (unsigned w = 0; w < SHADOW_WINDOWS; w++)
		n += s->n_local[w];
	return n;
}

static void count_mappings(struct shadow *s)
{
	s->stats->shadow_mappings = n_mapped(s);
	if (n_mapped(s) > s->stats->shadow_mappings_peak)
		s->stats->shadow_mappings_peak = n_mapped(s);
}

/* The list a slot's flags and window put it on, and that list's length. */
static uint32_t *list_of(struct shadow *s, uint32_t lin, uint32_t **n)
{
	if (s->lin_flags[lin] & SHADOW_GLOBAL) {
		*n = &s->n_global;
		return s->global;
	}
	*n = &s->n_local[lin >> 20];
	return s->local[lin >> 20];
}

/* Enters a slot whose lin_flags are set in its list. */
static void list_add(struct shadow *s, uint32_t lin)
{
	uint32_t *n, *list = list_of(s, lin, &n);
	s->list_pos[lin] = *n;
	list[(*n)++] = lin;
}

static void list_remove(struct shadow *s, uint32_t lin)
{
	uint32_t *n, *list = list_of(s, lin, &n);
	uint32_t at = s->list_pos[lin], last = list[--*n];
	list[at] = last;
	s->list_pos[last] = at;
}

/* Drops a mapping from the slot arrays and the reverse map; the caller
 * takes it out of its list and reserves the host page.  A page leaving a
 * run may split it: one more piece, until no run is left. */
static void drop(struct shadow *s, uint32_t lin)
{
	unlink_alias(s, lin);
	if (s->lin_flags[lin] & SHADOW_RUN) {
		s->n_run_pages--;
		s->n_pieces = s->n_run_pages ? s->n_pieces + 1 : 0;
	} else {
		s->n_single--;
	}
	s->lin_flags[lin] = 0;
}

/* At most two host mappings a single page or a piece of a run (itself and
 * the split of the reservation after it). */
static uint32_t host_mappings(const struct shadow *s)
{
	return 2 * (s->n_single + s->n_pieces);
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
	if (!(s->lin_flags[sl] & SHADOW_MAPPED))
		return;
	forget(s, sl);
	reserve(s, sl, 1);
	s->stats->shadow_mappings = n_mapped(s);
}

static unsigned churn_slot(uint32_t lin)
{
	_Static_assert(SHADOW_CHURN_SLOTS == 1u << 8, "an 8-bit hash");
	return (lin * 0x9E3779B1u) >> 24;
}

bool shadow_churning(const struct shadow *s, uint32_t lin)
{
	unsigned i = churn_slot(lin);
	return s->churn[i].page == lin && s->churn[i].count >= SHADOW_CHURN;
}

/* An invlpg of `lin`, which the kernel window held: counts it. */
static void churn_count(struct shadow *s, uint32_t lin)
{
	unsigned i = churn_slot(lin);
	if (s->churn[i].page != lin) {
		s->churn[i].page = lin;
		s->churn[i].count = 0;
	}
	if (s->churn[i].count < SHADOW_CHURN)
		s->churn[i].count++;
}

void shadow_invlpg(struct shadow *s, uint32_t cr0, uint32_t cr3, uint32_t cr4, uint32_t lin)
{
	if (!s->paging)
		return;
	if (s->lin_flags[slot(SHADOW_KERNEL, lin)] & SHADOW_MAPPED)
		churn_count(s, lin);
	bool churns = shadow_churning(s, lin);
	/* Another pair's non-global pages are rechecked when its CR3 comes
	 * back: invlpg, which acts on the current address space, need not
	 * reach them (a TLB without PCIDs holds none of them either). */
	for (unsigned w = 0; w < SHADOW_WINDOWS; w++) {
		uint32_t sl = slot(w, lin);
		bool here = w == SHADOW_KERNEL || (w - 1) / 2 == s->cur;
		if (!(s->lin_flags[sl] & SHADOW_MAPPED) || (!here && !(s->lin_flags[sl] & SHADOW_GLOBAL)))
			continue;
		struct pw_result r;
		unsigned access = PW_PROBE | s->nxe | (shadow_is_user(w) ? PF_U : 0);
		if (here && !(w == SHADOW_KERNEL && churns) &&
		    pw_walk(s->mem, cr0, cr3, cr4, lin << PAGE_SHIFT_4K, access, &r) && r.accessed &&
		    gmem_is_ram(s->mem, r.phys, PAGE_SIZE_4K) && !(w == SHADOW_KERNEL && r.user && (cr4 & CR4_SMAP)))
			shadow_map(s, w, lin, r.phys >> PAGE_SHIFT_4K, r.writable && r.dirty, r.global);
		else
			unmap_slot(s, sl);
	}
	stlb_drop(&s->soft, lin);
	if (s->follow.ctx)
		s->follow.invlpg(s->follow.ctx, lin);
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

/* Drops the kernel window's non-global slots with one reservation over
 * the span they cover, when no global slot lies inside that span (a
 * process's pages are scattered over 3 GiB: one call instead of one a
 * run, and the host zaps only what is mapped), else a run at a time. */
static void flush_kernel_local(struct shadow *s)
{
	uint32_t *list = s->local[SHADOW_KERNEL], *n = &s->n_local[SHADOW_KERNEL];
	uint32_t lo = UINT32_MAX, hi = 0;
	for (uint32_t i = 0; i < *n; i++) {
		lo = list[i] < lo ? list[i] : lo;
		hi = list[i] > hi ? list[i] : hi;
	}
	for (uint32_t i = 0; i < s->n_global; i++)
		if (s->global[i] >= lo && s->global[i] <= hi) {
			flush_runs(s, list, n);
			return;
		}
	for (uint32_t i = 0; i < *n; i++)
		drop(s, list[i]);
	if (lo <= hi)
		reserve(s, lo, hi - lo + 1);
	*n = 0;
}

void shadow_flush(struct shadow *s, bool keep_global, enum shadow_flush_cause cause)
{
	s->stats->shadow_flushes[cause]++;
	if (!keep_global)
		flush_runs(s, s->global, &s->n_global);
	flush_kernel_local(s);
	for (unsigned w = 1; w < SHADOW_WINDOWS; w++)
		flush_runs(s, s->local[w], &s->n_local[w]);
	/* A capacity flush is the windows' own: the soft TLB holds no host
	 * mappings, and the follower's are in another process. */
	if (cause != SHFLUSH_CAPACITY) {
		stlb_flush(&s->soft);
		if (s->follow.ctx)
			s->follow.flush(s->follow.ctx, keep_global);
	}
	s->stats->shadow_mappings = n_mapped(s);
}

/* Beyond this many non-global pages in a window a CR3 load drops them all:
 * checking each against the new tables would cost more than faulting them
 * back. */
#define SHADOW_KEEP_MAX 1024u

enum agreement { AGREE_NOT, AGREE_READ, AGREE };

/* Whether the tables at cr3 map slot `sl` to frame `phys` as a TLB entry
 * could hold it: present for the window's kind of access, not global, A
 * already set, and for a writable mapping writable with D set (AGREE);
 * AGREE_READ when only the write no longer holds (fork's copy-on-write
 * turned the page read-only, or D was cleared): a read-only mapping
 * would still be right. */
static enum agreement tables_agree(const struct shadow *s, uint32_t cr0, uint32_t cr3, uint32_t cr4, uint32_t sl,
				   uint32_t phys, bool rw)
{
	struct pw_result r;
	unsigned access = PW_PROBE | s->nxe | (shadow_is_user(sl >> 20) ? PF_U : 0);
	if (!pw_walk(s->mem, cr0, cr3, cr4, (sl & (LIN_PAGES - 1)) << PAGE_SHIFT_4K, access, &r) || !r.accessed ||
	    r.global || r.phys >> PAGE_SHIFT_4K != phys)
		return AGREE_NOT;
	return !rw || (r.writable && r.dirty) ? AGREE : AGREE_READ;
}

/* Keeps the non-global slots of window `w` that the tables at cr3 map
 * alike, read-only those whose write no longer holds, and drops the others
 * (all of them beyond SHADOW_KEEP_MAX). */
static void recheck(struct shadow *s, unsigned w, uint32_t cr0, uint32_t cr3, uint32_t cr4)
{
	uint32_t *list = s->local[w], *n = &s->n_local[w];
	uint32_t kept = 0, dropped = 0, n_ro = 0;
	uint32_t *gone = s->global + s->n_global; /* spare room past the global list */
	uint32_t *ro = s->scratch;

	if (*n > SHADOW_KEEP_MAX) {
		if (w == SHADOW_KERNEL)
			flush_kernel_local(s);
		else
			flush_runs(s, list, n);
		return;
	}
	for (uint32_t i = 0; i < *n; i++) {
		uint32_t sl = list[i];
		enum agreement a = tables_agree(s, cr0, cr3, cr4, sl, s->lin_phys[sl], s->lin_flags[sl] & SHADOW_RW);
		if (a == AGREE_NOT) {
			gone[dropped++] = sl;
			continue;
		}
		if (a == AGREE_READ) {
			s->lin_flags[sl] &= (uint8_t)~SHADOW_RW;
			if (!(watched(s, sl & (LIN_PAGES - 1)) & WATCH_READ)) /* which stays unmapped */
				ro[n_ro++] = sl;
		}
		s->list_pos[sl] = kept;
		list[kept++] = sl;
	}
	*n = kept;
	s->stats->shadow_kept += kept;
	flush_runs(s, gone, &dropped);
	qsort(ro, n_ro, sizeof *ro, by_page);
	for (uint32_t i = 0; i < n_ro;) {
		uint32_t run = 1;
		while (i + run < n_ro && ro[i + run] == ro[i] + run)
			run++;
		BT86_ASSERT(mprotect(host(ro[i]), (size_t)run << PAGE_SHIFT_4K, PROT_READ) == 0);
		i += run;
	}
}

struct soft_check {
	const struct shadow *s;
	uint32_t cr0, cr3, cr4;
	unsigned window;
};

/* The user view's rule for the soft TLB's entries of that view. */
static enum stlb_keep soft_keep(void *ctx, uint32_t page, uint32_t frame, bool rw)
{
	const struct soft_check *c = ctx;
	switch (tables_agree(c->s, c->cr0, c->cr3, c->cr4, slot(c->window, page), frame, rw)) {
	case AGREE:
		return STLB_KEEP;
	case AGREE_READ:
		return STLB_KEEP_READ;
	default:
		return STLB_DROP;
	}
}

void shadow_switch_cr3(struct shadow *s, uint32_t cr0, uint32_t cr3, uint32_t cr4)
{
	bool fresh = false;
	unsigned k = SPACE_SLOTS, lru = 0;

	s->stats->shadow_flushes[SHFLUSH_CR3]++;
	recheck(s, SHADOW_KERNEL, cr0, cr3, cr4);
	for (unsigned i = 0; i < SPACE_SLOTS && k == SPACE_SLOTS; i++) {
		if (s->slot_used[i] && s->slot_cr3[i] == cr3)
			k = i;
		else if (s->slot_used[i] < s->slot_used[lru])
			lru = i;
	}
	if (k == SPACE_SLOTS) {
		k = lru;
		fresh = true;
		flush_runs(s, s->local[shadow_kview(k)], &s->n_local[shadow_kview(k)]);
		flush_runs(s, s->local[shadow_uview(k)], &s->n_local[shadow_uview(k)]);
	} else {
		recheck(s, shadow_kview(k), cr0, cr3, cr4);
		recheck(s, shadow_uview(k), cr0, cr3, cr4);
	}
	bind(s, k, cr3);
	struct soft_check c = {s, cr0, cr3, cr4, shadow_uview(k)};
	stlb_switch(&s->soft, k, shadow_window_base(shadow_uview(k)), shadow_window_base(shadow_kview(k)), fresh,
		    soft_keep, &c);
	if (s->follow.ctx)
		s->follow.flush(s->follow.ctx, true);
	s->stats->shadow_mappings = n_mapped(s);
}

void shadow_set_paging(struct shadow *s, bool on)
{
	if (s->paging) {
		shadow_flush(s, false, SHFLUSH_MODE);
	}
	s->paging = on;
	bind(s, s->cur, SHADOW_NONE);
	if (s->follow.ctx)
		s->follow.flush(s->follow.ctx, false);
	stlb_switch(&s->soft, s->cur, shadow_window_base(shadow_uview(s->cur)),
		    shadow_window_base(shadow_kview(s->cur)), true, NULL, NULL);
	if (on) {
		reserve(s, slot(SHADOW_KERNEL, 0), s->mem->size >> PAGE_SHIFT_4K);
		reserve(s, slot(shadow_uview(s->cur), 0), s->mem->size >> PAGE_SHIFT_4K);
	} else {
		identity(s);
	}
}

bool shadow_window_at(uint64_t addr, unsigned *window)
{
	if (addr < GUEST_WINDOW_SIZE) {
		*window = SHADOW_KERNEL;
		return true;
	}
	if (addr >= SPACE_WINDOWS_BASE && addr < SPACE_WINDOWS_END) {
		*window = 1 + (unsigned)((addr - SPACE_WINDOWS_BASE) / GUEST_WINDOW_SIZE);
		return true;
	}
	return false;
}

bool shadow_mappable(const struct shadow *s, unsigned window, uint32_t lin)
{
	if (window == SHADOW_KERNEL)
		return lin >= s->mem->low_hole >> PAGE_SHIFT_4K;
	if (!shadow_is_user(window))
		return lin != 0 && lin != LIN_PAGES - 1;
	return true;
}

/* The host mappings reached their bound: all go.  When the current user
 * view held half of them, its process's working set is beyond what host
 * mappings can hold, and its ring-3 code moves to the soft TLB (stlb.h)
 * instead of filling the view again. */
static void capacity_flush(struct shadow *s)
{
	if (4 * s->n_local[shadow_uview(s->cur)] >= SHADOW_MAX_MAPPINGS)
		stlb_outgrow(&s->soft);
	shadow_flush(s, false, SHFLUSH_CAPACITY);
}

void shadow_map(struct shadow *s, unsigned window, uint32_t lin_page, uint32_t phys, bool rw, bool global)
{
	uint32_t lin = slot(window, lin_page);
	BT86_ASSERT(s->paging && phys < s->mem->size >> PAGE_SHIFT_4K);
	if (!shadow_mappable(s, window, lin_page))
		return; /* host page 0, or the guard page: accesses there are emulated */
	if (s->lin_flags[lin] & SHADOW_MAPPED)
		forget(s, lin); /* remapped (another frame, or now writable) */
	else if (host_mappings(s) + 2 > SHADOW_MAX_MAPPINGS)
		capacity_flush(s);
	s->lin_phys[lin] = phys;
	s->lin_flags[lin] = (uint8_t)(SHADOW_MAPPED | (rw ? SHADOW_RW : 0) | (global ? SHADOW_GLOBAL : 0));
	s->n_single++;
	s->alias_next[lin] = s->alias_head[phys];
	s->alias_head[phys] = lin;
	list_add(s, lin);
	void *p = mmap(host(lin), PAGE_SIZE_4K, prot_for(s, lin), MAP_SHARED | MAP_FIXED | MAP_POPULATE, s->mem->fd,
		       (off_t)phys << PAGE_SHIFT_4K);
	BT86_ASSERT(p != MAP_FAILED);
	count_mappings(s);
}

void shadow_map_run(struct shadow *s, unsigned window, uint32_t lin_page, uint32_t phys, uint32_t n, bool rw,
		    bool global)
{
	BT86_ASSERT(s->paging && phys + n <= s->mem->size >> PAGE_SHIFT_4K);
	for (; n > 0 && !shadow_mappable(s, window, lin_page); n--)
		lin_page++, phys++; /* host page 0 or a kernel view's first page stays out */
	if (n > 0 && !shadow_mappable(s, window, lin_page + n - 1))
		n--; /* and so does a kernel view's last page */
	if (n == 0)
		return;
	uint32_t first = slot(window, lin_page);
	if (host_mappings(s) + 2 > SHADOW_MAX_MAPPINGS)
		capacity_flush(s);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t sl = first + i;
		if (s->lin_flags[sl] & SHADOW_MAPPED)
			forget(s, sl);
		s->lin_phys[sl] = phys + i;
		s->lin_flags[sl] = (uint8_t)(SHADOW_MAPPED | SHADOW_RUN | (rw ? SHADOW_RW : 0) | (global ? SHADOW_GLOBAL : 0));
		s->n_run_pages++;
		s->alias_next[sl] = s->alias_head[phys + i];
		s->alias_head[phys + i] = sl;
		list_add(s, sl);
	}
	void *p = mmap(host(first), (size_t)n << PAGE_SHIFT_4K, rw ? PROT_READ | PROT_WRITE : PROT_READ,
		       MAP_SHARED | MAP_FIXED, s->mem->fd, (off_t)phys << PAGE_SHIFT_4K);
	BT86_ASSERT(p != MAP_FAILED);
	/* Code pages inside a writable run stay read-only, watched pages
	 * as the debugger needs them. */
	for (uint32_t i = 0; i < n; i++)
		if ((rw && s->mem->code_page[phys + i]) || watched(s, lin_page + i))
			BT86_ASSERT(mprotect(host(first + i), PAGE_SIZE_4K, prot_for(s, first + i)) == 0);
	s->n_pieces++;
	s->stats->shadow_runs++;
	count_mappings(s);
}

static int by_key64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void shadow_adopt_runs(struct shadow *s)
{
	const struct stlb_space *sp = &s->soft.space[s->soft.cur];
	uint64_t *e = malloc((size_t)sp->n * sizeof *e);
	if (!e)
		return; /* an optimisation only */
	/* page << 32 | rw << 31 | frame: sorted, a run is consecutive pages
	 * onto consecutive frames with the same permission. */
	for (uint32_t i = 0; i < sp->n; i++)
		e[i] = (uint64_t)sp->page[i] << 32 | (uint64_t)(sp->rw[i] ? 1u : 0u) << 31 | sp->frame[i];
	qsort(e, sp->n, sizeof *e, by_key64);
	unsigned w = shadow_uview(s->cur);
	for (uint32_t i = 0, j; i < sp->n; i = j) {
		for (j = i + 1; j < sp->n && e[j] == e[j - 1] + (1ull << 32) + 1; j++)
			;
		if (j - i < SHADOW_ADOPT_RUN)
			continue;
		uint32_t page = (uint32_t)(e[i] >> 32), frame = (uint32_t)e[i] & 0x7FFFFFFFu;
		bool mapped = false;
		for (uint32_t k = 0; k < j - i && !mapped; k++)
			mapped = s->lin_flags[slot(w, page + k)] & SHADOW_MAPPED;
		if (!mapped && gmem_is_ram(s->mem, frame << PAGE_SHIFT_4K, (j - i) << PAGE_SHIFT_4K)) {
			shadow_map_run(s, w, page, frame, j - i, (e[i] >> 31) & 1, false);
			s->stats->adopted_runs++;
			s->stats->adopted_pages += j - i;
		}
	}
	free(e);
}

bool shadow_holds(const struct shadow *s, unsigned window, uint32_t lin_page, uint32_t phys, bool rw)
{
	uint32_t sl = slot(window, lin_page);
	return (s->lin_flags[sl] & SHADOW_MAPPED) && s->lin_phys[sl] == phys && !(s->lin_flags[sl] & SHADOW_RW) == !rw;
}

uint32_t shadow_frame(const struct shadow *s, uint32_t sl)
{
	return s->lin_flags[sl] & SHADOW_MAPPED ? s->lin_phys[sl] : SHADOW_NONE;
}

void shadow_protect(struct shadow *s, uint32_t phys, bool code)
{
	(void)code; /* gmem's code_page already says which; prot_for reads it */
	stlb_protect(&s->soft, phys);
	if (s->follow.ctx)
		s->follow.frame(s->follow.ctx, phys);
	if (!s->paging) {
		int prot = identity_prot(s, phys);
		if ((phys << PAGE_SHIFT_4K) >= s->mem->low_hole)
			BT86_ASSERT(mprotect(host(slot(SHADOW_KERNEL, phys)), PAGE_SIZE_4K, prot) == 0);
		BT86_ASSERT(mprotect(host(slot(shadow_uview(s->cur), phys)), PAGE_SIZE_4K, prot) == 0);
		return;
	}
	for (uint32_t lin = s->alias_head[phys]; lin != SHADOW_NONE; lin = s->alias_next[lin])
		BT86_ASSERT(mprotect(host(lin), PAGE_SIZE_4K, prot_for(s, lin)) == 0);
}

void shadow_set_watches(struct shadow *s, const struct watch_set *ws)
{
	s->watch = *ws;
	if (s->paging) {
		shadow_flush(s, false, SHFLUSH_DEBUG);
	} else {
		identity(s);
		stlb_flush(&s->soft);
	}
}

unsigned shadow_watched(const struct shadow *s, uint32_t lin_page)
{
	return watched(s, lin_page);
}
