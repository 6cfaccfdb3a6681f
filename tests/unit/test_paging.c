/* The page walker and the shadow's bookkeeping. */
#include <setjmp.h>
#include <signal.h>
#include <string.h>

#include "mem/layout.h"
#include "mem/pagewalk.h"
#include "mem/vmem.h"
#include "unit.h"

#define PD 0x10000u
#define PT 0x11000u

static struct machine m;

static uint32_t rd(uint32_t phys)
{
	return gmem_read(&m.mem, phys, 4);
}

static void wr(uint32_t phys, uint32_t v)
{
	gmem_write(&m.mem, phys, 4, v);
}

/* invlpg of a page the tables at cr3 do not map (an empty directory). */
static void invlpg_unmapped(uint32_t lin)
{
	shadow_invlpg(&m.shadow, CR0_PG | CR0_PE, 0x7F000, 0, lin);
}

static sigjmp_buf probe_env;

static void probe_fault(int sig)
{
	(void)sig;
	siglongjmp(probe_env, 1);
}

/* Whether the host can read (or with `write`, also write back) the byte
 * at `addr` (a shadow window page). */
static bool accessible(uint64_t addr, bool write)
{
	struct sigaction sa = {.sa_handler = probe_fault}, old;
	volatile bool ok = false;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGSEGV, &sa, &old), 0);
	if (!sigsetjmp(probe_env, 1)) {
		volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)addr;
		uint8_t v = *p;
		if (write)
			*p = v;
		ok = true;
	}
	ck_assert_int_eq(sigaction(SIGSEGV, &old, NULL), 0);
	return ok;
}

static bool readable(uint64_t addr)
{
	return accessible(addr, false);
}

static void tables(void)
{
	machine_init(&m, 0);
	wr(PD + 0, PT | PTE_P | PTE_W | PTE_U);
	wr(PT + 1 * 4, 0x200000 | PTE_P | PTE_W | PTE_U);   /* 0x1000: user RW */
	wr(PT + 2 * 4, 0x201000 | PTE_P);                   /* 0x2000: supervisor RO */
	wr(PT + 3 * 4, 0x202000 | PTE_P | PTE_W | PTE_G);   /* 0x3000: supervisor RW global */
	wr(PD + 4, 0x00400000 | PTE_PS | PTE_P | PTE_W);    /* 4 MiB at 0x400000 */
}

START_TEST(test_walk_translates_and_sets_accessed_dirty)
{
	struct pw_result r;
	tables();
	ck_assert(pw_walk(&m.mem, CR0_PG | CR0_PE, PD, 0, 0x1234, 0, &r));
	ck_assert_uint_eq(r.phys, 0x200234);
	ck_assert(r.user && r.writable && !r.dirty);
	ck_assert_uint_eq(rd(PT + 4) & (PTE_A | PTE_D), PTE_A);
	ck_assert_uint_eq(rd(PD) & PTE_A, PTE_A);
	ck_assert(pw_walk(&m.mem, CR0_PG | CR0_PE, PD, 0, 0x1234, PF_W, &r));
	ck_assert(r.dirty);
	ck_assert_uint_eq(rd(PT + 4) & (PTE_A | PTE_D), PTE_A | PTE_D);
}
END_TEST

START_TEST(test_walk_error_codes)
{
	struct pw_result r;
	tables();
	ck_assert(!pw_walk(&m.mem, CR0_PG, PD, 0, 0x5000, 0, &r));
	ck_assert_uint_eq(r.err, 0);                          /* not present, read */
	ck_assert(!pw_walk(&m.mem, CR0_PG, PD, 0, 0x800000, PF_W | PF_U, &r));
	ck_assert_uint_eq(r.err, PF_W | PF_U);                /* PDE not present */
	ck_assert(!pw_walk(&m.mem, CR0_PG, PD, 0, 0x2000, PF_U, &r));
	ck_assert_uint_eq(r.err, PF_P | PF_U);                /* user read of a supervisor page */
	ck_assert(!pw_walk(&m.mem, CR0_PG | CR0_WP, PD, 0, 0x2000, PF_W, &r));
	ck_assert_uint_eq(r.err, PF_P | PF_W);                /* WP: supervisor write to RO */
	ck_assert(pw_walk(&m.mem, CR0_PG, PD, 0, 0x2000, PF_W, &r)); /* WP = 0 allows it */
	ck_assert_uint_eq(rd(PT + 8) & PTE_A, PTE_A);
	wr(PT + 8, 0x201000 | PTE_P);
	ck_assert(!pw_walk(&m.mem, CR0_PG | CR0_WP, PD, 0, 0x2000, PF_W, &r));
	ck_assert_uint_eq(rd(PT + 8) & (PTE_A | PTE_D), 0);   /* a faulting walk sets nothing */
}
END_TEST

START_TEST(test_walk_large_and_global)
{
	struct pw_result r;
	tables();
	ck_assert(pw_walk(&m.mem, CR0_PG, PD, CR4_PSE, 0x456789, PF_W, &r));
	ck_assert_uint_eq(r.phys, 0x456789);
	ck_assert_uint_eq(rd(PD + 4) & (PTE_A | PTE_D), PTE_A | PTE_D);
	/* Without CR4.PSE the PS bit is ignored: the entry names a page table. */
	ck_assert(pw_walk(&m.mem, CR0_PG, PD, 0, 0x400000, 0, &r) || r.err == 0);
	ck_assert(pw_walk(&m.mem, CR0_PG, PD, CR4_PGE, 0x3000, 0, &r));
	ck_assert(r.global);
	ck_assert(pw_walk(&m.mem, CR0_PG, PD, 0, 0x3000, 0, &r));
	ck_assert(!r.global);
}
END_TEST

/* The monitor's own TLB keeps a translation it walked (as a processor's may)
 * until invlpg or a CR3 load, which the emulator turns into flushes; the
 * walk that filled it set A. */
START_TEST(test_monitor_tlb_keeps_until_flush)
{
	tables();
	m.v.cr0 = CR0_PG | CR0_PE;
	m.v.cr3 = PD;
	m.v.cpl = 0;
	wr(0x200010, 0x1111);
	wr(0x205010, 0x2222);
	ck_assert_uint_eq(vmem_read(&m.v, 0x1010, 4), 0x1111);
	ck_assert_uint_eq(rd(PT + 4) & PTE_A, PTE_A);
	wr(PT + 4, 0x205000 | PTE_P | PTE_W | PTE_U | PTE_A); /* remapped, no invlpg yet */
	ck_assert_uint_eq(vmem_read(&m.v, 0x1010, 4), 0x1111);
	vmem_tlb_flush(&m.v);
	ck_assert_uint_eq(vmem_read(&m.v, 0x1010, 4), 0x2222);
	vmem_write(&m.v, 0x1010, 4, 0x3333);               /* a write walks for itself: D */
	ck_assert_uint_eq(rd(PT + 4) & PTE_D, PTE_D);
	ck_assert_uint_eq(rd(0x205010), 0x3333);
}
END_TEST

START_TEST(test_shadow_aliases_and_flushes)
{
	machine_init(&m, 0);
	shadow_set_paging(&m.shadow, true);
	uint32_t frame = 0x300; /* physical page 0x300000 */
	shadow_map(&m.shadow, SHADOW_KERNEL, 0x40000, frame, true, false);
	shadow_map(&m.shadow, SHADOW_KERNEL, 0x50000, frame, true, true);
	shadow_map(&m.shadow, SHADOW_KERNEL, 0x60000, 0x301, false, false);
	shadow_map(&m.shadow, shadow_uview(m.shadow.cur), 0x70000, frame, false, false);
	ck_assert_uint_eq(m.shadow.alias_head[frame], (shadow_uview(m.shadow.cur) << 20) | 0x70000);
	ck_assert_uint_eq(*(volatile uint32_t *)(uintptr_t)(shadow_window_base(shadow_uview(m.shadow.cur)) + 0x70000000u), 0);
	invlpg_unmapped(0x70000);
	ck_assert_uint_eq(m.stats.shadow_mappings, 3);
	ck_assert_uint_eq(m.shadow.alias_head[frame], 0x50000);
	ck_assert_uint_eq(m.shadow.alias_next[0x50000], 0x40000);
	gmem_write(&m.mem, 0x300010, 4, 0xCAFE);
	ck_assert_uint_eq(*(volatile uint32_t *)(uintptr_t)0x40000010, 0xCAFE); /* both aliases see it */
	ck_assert_uint_eq(*(volatile uint32_t *)(uintptr_t)0x50000010, 0xCAFE);
	invlpg_unmapped(0x40000);
	ck_assert_uint_eq(m.shadow.alias_head[frame], 0x50000);
	ck_assert_uint_eq(m.shadow.alias_next[0x50000], SHADOW_NONE);
	ck_assert_uint_eq(m.stats.shadow_mappings, 2);
	shadow_flush(&m.shadow, true, SHFLUSH_CR3);
	ck_assert_uint_eq(m.stats.shadow_mappings, 1); /* the global one stays */
	ck_assert_uint_eq(shadow_frame(&m.shadow, 0x50000), frame);
	ck_assert_uint_eq(shadow_frame(&m.shadow, 0x60000), SHADOW_NONE);
	shadow_flush(&m.shadow, false, SHFLUSH_MODE);
	ck_assert_uint_eq(m.stats.shadow_mappings, 0);
	ck_assert_uint_eq(m.stats.shadow_flushes[SHFLUSH_CR3], 1);
}
END_TEST

/* A CR3 load keeps the kernel window's pages the new tables map alike and
 * drops the others; each CR3 gets a pair of space windows of its own,
 * which it finds again, rechecked, at its return, and the least recently
 * used pair goes to a CR3 not seen lately.  A is never set by the shadow. */
START_TEST(test_shadow_switch_keeps_and_rechecks)
{
	const uint32_t pd_a = 0x20000, pt_a = 0x21000, pd_b = 0x22000, pt_b = 0x23000;
	const uint32_t flags = PTE_P | PTE_W | PTE_U | PTE_A | PTE_D;
	machine_init(&m, 0);
	wr(pd_a, pt_a | PTE_P | PTE_W | PTE_U | PTE_A);
	wr(pt_a + 4, 0x200000 | flags);                 /* 0x1000 -> frame 0x200 */
	wr(pt_a + 8, 0x201000 | flags);                 /* 0x2000 -> frame 0x201 */
	wr(pd_b, pt_b | PTE_P | PTE_W | PTE_U | PTE_A);
	wr(pt_b + 4, 0x200000 | flags);                 /* the same frame */
	wr(pt_b + 8, 0x205000 | flags);                 /* another frame */
	wr(0x201000, 0x5A5A);
	shadow_set_paging(&m.shadow, true);
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	const unsigned a = m.shadow.cur;
	const uint64_t a_user = shadow_window_base(shadow_uview(a)), a_kernel = shadow_window_base(shadow_kview(a));
	const uint32_t u2 = shadow_uview(a) << 20 | 2, k2 = shadow_kview(a) << 20 | 2;
	shadow_map(&m.shadow, SHADOW_KERNEL, 1, 0x200, true, false);
	shadow_map(&m.shadow, SHADOW_KERNEL, 2, 0x201, true, false);
	shadow_map(&m.shadow, shadow_uview(a), 2, 0x201, true, false);
	shadow_map(&m.shadow, shadow_kview(a), 2, 0x201, true, false);

	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
	ck_assert_uint_ne(m.shadow.cur, a);
	ck_assert_uint_ne(shadow_window_base(shadow_uview(m.shadow.cur)), a_user);
	ck_assert_uint_eq(shadow_frame(&m.shadow, 1), 0x200);           /* mapped alike: kept */
	ck_assert_uint_eq(shadow_frame(&m.shadow, 2), SHADOW_NONE);     /* another frame: dropped */
	ck_assert_uint_eq(shadow_frame(&m.shadow, u2), 0x201);          /* A's pair: untouched */
	ck_assert(!readable(shadow_window_base(shadow_uview(m.shadow.cur)) + 0x2000));        /* B's own pair is empty */

	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	ck_assert_uint_eq(m.shadow.cur, a);                       /* A's pair again */
	ck_assert_uint_eq(shadow_window_base(shadow_kview(m.shadow.cur)), a_kernel);
	ck_assert_uint_eq(*(volatile uint32_t *)(uintptr_t)(a_user + 0x2000), 0x5A5A);
	*(volatile uint32_t *)(uintptr_t)(a_kernel + 0x2000) = 0xA5A5; /* writable, as mapped */
	ck_assert_uint_eq(rd(0x201000), 0xA5A5);
	ck_assert_uint_eq(m.stats.shadow_kept, 1 + 1 + 2);        /* page 1 at each load, A's pair */

	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
	wr(pt_a + 8, 0x201000 | (flags & ~PTE_A));               /* the guest clears A while B runs */
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	ck_assert_uint_eq(shadow_frame(&m.shadow, u2), SHADOW_NONE);   /* not without A */
	ck_assert_uint_eq(shadow_frame(&m.shadow, k2), SHADOW_NONE);
	ck_assert(!readable(a_user + 0x2000));
	ck_assert_uint_eq(rd(pt_a + 8) & PTE_A, 0);              /* and A stays clear */

	shadow_map(&m.shadow, shadow_uview(a), 1, 0x200, true, false);
	ck_assert(accessible(a_user + 0x1000, true));
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
	wr(pt_a + 4, 0x200000 | (flags & ~PTE_W));              /* copy-on-write while B runs */
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	ck_assert_uint_eq(shadow_frame(&m.shadow, shadow_uview(a) << 20 | 1), 0x200); /* kept, read-only */
	ck_assert(readable(a_user + 0x1000) && !accessible(a_user + 0x1000, true));

	shadow_map(&m.shadow, shadow_uview(a), 2, 0x201, true, false);
	for (uint32_t cr3 = 0x30000; cr3 < 0x30000 + SPACE_SLOTS * 0x1000; cr3 += 0x1000)
		shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, cr3, 0); /* empty tables */
	ck_assert_uint_eq(shadow_frame(&m.shadow, u2), SHADOW_NONE);   /* A's pair went to another CR3 */
	ck_assert(!readable(a_user + 0x2000));
	ck_assert_uint_eq(m.stats.shadow_flushes[SHFLUSH_CR3], 7 + SPACE_SLOTS);
}
END_TEST

/* invlpg acts on the current address space: the kernel window and the
 * current pair lose the page, another pair keeps its non-global mapping
 * (rechecked when its CR3 returns) but not a global one. */
START_TEST(test_shadow_invlpg_reaches_the_current_pair)
{
	machine_init(&m, 0);
	shadow_set_paging(&m.shadow, true);
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, 0x20000, 0);
	const unsigned a = m.shadow.cur;
	shadow_map(&m.shadow, shadow_uview(a), 5, 0x300, false, false);
	shadow_map(&m.shadow, shadow_uview(a), 6, 0x301, false, true);
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, 0x22000, 0);
	const unsigned b = m.shadow.cur;
	shadow_map(&m.shadow, SHADOW_KERNEL, 5, 0x300, false, false);
	shadow_map(&m.shadow, shadow_uview(b), 5, 0x300, false, false);
	shadow_map(&m.shadow, shadow_kview(b), 5, 0x300, false, false);
	invlpg_unmapped(5);
	invlpg_unmapped(6);
	ck_assert_uint_eq(shadow_frame(&m.shadow, 5), SHADOW_NONE);
	ck_assert_uint_eq(shadow_frame(&m.shadow, shadow_uview(b) << 20 | 5), SHADOW_NONE);
	ck_assert_uint_eq(shadow_frame(&m.shadow, shadow_kview(b) << 20 | 5), SHADOW_NONE);
	ck_assert(!readable(shadow_window_base(shadow_uview(b)) + 0x5000));
	ck_assert_uint_eq(shadow_frame(&m.shadow, shadow_uview(a) << 20 | 5), 0x300);
	ck_assert(readable(shadow_window_base(shadow_uview(a)) + 0x5000));
	ck_assert_uint_eq(shadow_frame(&m.shadow, shadow_uview(a) << 20 | 6), SHADOW_NONE);
	ck_assert_uint_eq(m.stats.shadow_mappings, 1);
}
END_TEST

/* invlpg of a page the tables now map to RAM with A set takes the new
 * frame at once (writable only with D), leaves A alone where it is clear,
 * and drops what they no longer map. */
START_TEST(test_shadow_invlpg_maps_ahead)
{
	const uint32_t pd = 0x20000, pt = 0x21000;
	machine_init(&m, 0);
	wr(pd, pt | PTE_P | PTE_W | PTE_A);
	wr(pt + 4 * 1, 0x200000 | PTE_P | PTE_W | PTE_A | PTE_D);
	wr(pt + 4 * 2, 0x201000 | PTE_P | PTE_W | PTE_A);
	wr(pt + 4 * 3, 0x202000 | PTE_P | PTE_W);
	wr(0x205000, 0x5A5A);
	shadow_set_paging(&m.shadow, true);
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd, 0);
	for (uint32_t lin = 1; lin <= 4; lin++)
		shadow_map(&m.shadow, SHADOW_KERNEL, lin, 0x300 + lin, true, false);
	wr(pt + 4 * 1, 0x205000 | PTE_P | PTE_W | PTE_A | PTE_D); /* kmap_atomic's new frame */
	shadow_invlpg(&m.shadow, CR0_PG | CR0_PE, pd, 0, 1);
	ck_assert_uint_eq(shadow_frame(&m.shadow, 1), 0x205);
	ck_assert_uint_eq(*(volatile uint32_t *)(uintptr_t)0x1000u, 0x5A5A);
	ck_assert(accessible(0x1000, true));
	shadow_invlpg(&m.shadow, CR0_PG | CR0_PE, pd, 0, 2);      /* clean: read-only until D */
	ck_assert_uint_eq(shadow_frame(&m.shadow, 2), 0x201);
	ck_assert(accessible(0x2000, false) && !accessible(0x2000, true));
	shadow_invlpg(&m.shadow, CR0_PG | CR0_PE, pd, 0, 3);      /* A clear: dropped, A still clear */
	ck_assert_uint_eq(shadow_frame(&m.shadow, 3), SHADOW_NONE);
	ck_assert_uint_eq(rd(pt + 4 * 3) & PTE_A, 0);
	shadow_invlpg(&m.shadow, CR0_PG | CR0_PE, pd, 0, 4);      /* not present: dropped */
	ck_assert_uint_eq(shadow_frame(&m.shadow, 4), SHADOW_NONE);
	ck_assert(!readable(0x4000));
	ck_assert_uint_eq(m.stats.shadow_mappings, 2);
}
END_TEST

START_TEST(test_shadow_run_keeps_code_read_only)
{
	machine_init(&m, 0);
	shadow_set_paging(&m.shadow, true);
	gmem_protect_code(&m.mem, 0x405);
	shadow_map_run(&m.shadow, SHADOW_KERNEL, 0x80000, 0x400, 1024, true, false);
	ck_assert_uint_eq(m.stats.shadow_mappings, 1024);
	ck_assert_uint_eq(m.stats.shadow_runs, 1);
	ck_assert_uint_eq(shadow_frame(&m.shadow, 0x80005), 0x405);
	*(volatile uint32_t *)(uintptr_t)0x80004000u = 7;      /* a data page: writable */
	ck_assert_uint_eq(gmem_read(&m.mem, 0x404000, 4), 7);
	ck_assert_uint_eq(m.shadow.alias_head[0x405], 0x80005); /* the code page is in the reverse map */
	shadow_flush(&m.shadow, false, SHFLUSH_MODE);
	ck_assert_uint_eq(m.stats.shadow_mappings, 0);
	ck_assert_uint_eq(m.shadow.alias_head[0x405], SHADOW_NONE);
}
END_TEST

START_TEST(test_shadow_capacity_bound)
{
	machine_init(&m, 0);
	shadow_set_paging(&m.shadow, true);
	for (uint32_t i = 0; i <= SHADOW_MAX_MAPPINGS / 2; i++)
		shadow_map(&m.shadow, SHADOW_KERNEL, 0x40000 + i, 0x100 + (i % 256), false, false);
	ck_assert_uint_eq(m.stats.shadow_flushes[SHFLUSH_CAPACITY], 1);
	ck_assert_uint_le(m.stats.shadow_mappings_peak, SHADOW_MAX_MAPPINGS / 2);
	ck_assert_uint_eq(m.stats.shadow_mappings, 1);
	ck_assert_uint_eq(m.stats.stlb_outgrown, 0);     /* kernel pages: no process outgrew them */
}
END_TEST

/* A 4 MiB page is one host mapping however many pages it holds: a
 * kernel's direct map of all of RAM (here 30 of them, 30,720 pages, more
 * than single pages may number) fits without a flush, and pages dropped
 * out of a run count as the pieces they split it into. */
START_TEST(test_shadow_runs_count_as_mappings)
{
	machine_init(&m, 0);
	shadow_set_paging(&m.shadow, true);
	for (uint32_t r = 0; r < 30; r++)
		shadow_map_run(&m.shadow, SHADOW_KERNEL, 0x40000 + r * 1024, (r % 4) * 1024, 1024, true, true);
	ck_assert_uint_eq(m.stats.shadow_flushes[SHFLUSH_CAPACITY], 0);
	ck_assert_uint_eq(m.stats.shadow_mappings, 30 * 1024);
	ck_assert_uint_eq(m.shadow.n_pieces, 30);
	ck_assert(accessible(0x40000000ull + 29 * 0x400000ull + 0x1234, true));
	for (uint32_t i = 0; i < 100; i++)
		invlpg_unmapped(0x40000 + 2 * i);    /* invlpg splits the first run */
	ck_assert_uint_eq(m.shadow.n_pieces, 130);
	ck_assert(!readable(0x40000000ull) && readable(0x40001000ull));
	/* Single pages fill what the pieces leave. */
	uint32_t singles = SHADOW_MAX_MAPPINGS / 2 - 130;
	for (uint32_t i = 0; i < singles; i++)
		shadow_map(&m.shadow, SHADOW_KERNEL, 0x90000 + i, 0x100 + (i % 256), false, false);
	ck_assert_uint_eq(m.stats.shadow_flushes[SHFLUSH_CAPACITY], 0);
	shadow_map(&m.shadow, SHADOW_KERNEL, 0x90000 + singles, 0x100, false, false);
	ck_assert_uint_eq(m.stats.shadow_flushes[SHFLUSH_CAPACITY], 1);
	ck_assert_uint_eq(m.shadow.n_pieces, 0);         /* no run left, no pieces */
	ck_assert_uint_eq(m.shadow.n_single, 1);
}
END_TEST

/* The soft TLB (stlb.h): an entry leads to the frame in the frame region,
 * one mapping of all of RAM; invlpg drops it; a CR3 load takes the space's
 * entries out of the tables and brings them back under the user view's
 * rule; a pair bound afresh starts empty and young, with a budget of its
 * own; spending it makes a space go direct, and losing most of its entries
 * at a CR3 load young again; a code frame's write entry leads to the user
 * view, whose mappings fault on the store. */
/* The soft TLB's tests: space A's directory at SOFT_PD_A with one table,
 * SOFT_PT_A (`pages` entries from linear page `first` to frames from
 * `frame`), space B's empty; paging on in space A. */
#define SOFT_PD_A 0x20000u
#define SOFT_PT_A 0x21000u
#define SOFT_PD_B 0x22000u
#define SOFT_FLAGS (PTE_P | PTE_W | PTE_U | PTE_A | PTE_D)
static void soft_spaces(uint32_t first, uint32_t pages, uint32_t frame)
{
	machine_init(&m, 0);
	wr(SOFT_PD_A, SOFT_PT_A | PTE_P | PTE_W | PTE_U | PTE_A);
	for (uint32_t i = 0; i < pages; i++)
		wr(SOFT_PT_A + 4 * (first + i), ((frame + i) << 12) | SOFT_FLAGS);
	wr(SOFT_PD_B, 0);
	shadow_set_paging(&m.shadow, true);
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, SOFT_PD_A, 0);
}

START_TEST(test_soft_tlb_follows_the_user_view)
{
	const uint32_t pd_a = SOFT_PD_A, pt_a = SOFT_PT_A, pd_b = SOFT_PD_B;
	const uint32_t flags = SOFT_FLAGS;
	struct stlb *st = &m.shadow.soft;
	soft_spaces(2, 1, 0x201);                       /* 0x2000 -> frame 0x201 */
	wr(0x201000, 0x5A5A);
	const unsigned a = m.shadow.cur;
	const uint64_t view = shadow_window_base(shadow_uview(a));
	const uint64_t at = STLB_FRAMES_BASE + 0x201 * 0x1000ull;
	ck_assert(stlb_soft(st));

	stlb_fill(st, 2, 0x201, true);
	ck_assert_uint_eq(st->read[2] + 0x2000, at);
	ck_assert_uint_eq(st->write[2], st->read[2]);
	ck_assert_uint_eq(*(volatile uint32_t *)(uintptr_t)at, 0x5A5A);
	*(volatile uint32_t *)(uintptr_t)(at + 4) = 0xA5A5;
	ck_assert_uint_eq(rd(0x201004), 0xA5A5);
	wr(0x202000, 0x77);                               /* the region is all of RAM, in order */
	ck_assert_uint_eq(*(volatile uint32_t *)(uintptr_t)(at + 0x1000), 0x77);
	stlb_drop(st, 2);                                 /* invlpg */
	ck_assert_uint_eq(st->read[2] | st->write[2], 0);

	stlb_fill(st, 2, 0x201, true);
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
	ck_assert_uint_eq(st->read[2], 0);               /* B's tables are its own */
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	ck_assert_uint_eq(st->read[2] + 0x2000, at);     /* A's entry is back */
	ck_assert_uint_eq(st->write[2], st->read[2]);

	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
	wr(pt_a + 8, 0x201000 | (flags & ~PTE_D));       /* D cleared while B runs */
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	ck_assert(st->read[2] != 0 && st->write[2] == 0); /* read-only now */
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
	wr(pt_a + 8, 0x205000 | flags);                  /* another frame */
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	ck_assert_uint_eq(st->read[2], 0);

	ck_assert_uint_eq(*st->budget, STLB_YOUNG_BLOCKS);
	*st->budget = 5;                                  /* A's blocks spent some */
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
	ck_assert_uint_eq(*st->budget, STLB_YOUNG_BLOCKS); /* B's own */
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	ck_assert_uint_eq(*st->budget, 5);
	*st->budget = 0;
	ck_assert(stlb_spent(st) && !stlb_soft(st));      /* all spent: direct */
	ck_assert_uint_eq(*st->budget, STLB_YOUNG_BLOCKS);
	ck_assert(!stlb_spent(st) && !stlb_soft(st));
	for (uint32_t page = 0x10; page < 0x18; page++)
		stlb_fill(st, page, 0x210, false);            /* pages A's tables do not map */
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	ck_assert(stlb_soft(st));                         /* most gone: a new process, young again */
	ck_assert_uint_eq(*st->budget, STLB_YOUNG_BLOCKS);
	stlb_fill(st, 5, 0x205, false);
	ck_assert(st->read[5] != 0 && st->write[5] == 0);
	for (uint32_t cr3 = 0x30000; cr3 < 0x30000 + SPACE_SLOTS * 0x1000; cr3 += 0x1000)
		shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, cr3, 0);
	ck_assert_uint_eq(m.shadow.cur, a);               /* A's pair bound afresh */
	ck_assert(stlb_soft(st) && st->space[a].n == 0 && st->read[5] == 0);

	/* A space holding many entries stays young until it has entered
	 * STLB_ENTRY_WORTH soft-form blocks for each: 200 entries are worth
	 * 25,600 block entries, more than three budgets, fewer than four. */
	for (uint32_t i = 0; i < 200; i++)
		stlb_fill(st, 0x400 + i, 0x300 + i, false);
	ck_assert_uint_eq(st->space[a].n, 200);
	_Static_assert(3u * STLB_YOUNG_BLOCKS < 200u * STLB_ENTRY_WORTH &&
			       4u * STLB_YOUNG_BLOCKS >= 200u * STLB_ENTRY_WORTH,
		       "the counts below");
	for (int k = 0; k < 3; k++) {
		*st->budget = 0;
		ck_assert(!stlb_spent(st) && stlb_soft(st));
		ck_assert_uint_eq(*st->budget, STLB_YOUNG_BLOCKS);
	}
	*st->budget = 0;
	ck_assert(stlb_spent(st) && !stlb_soft(st));
	for (uint32_t cr3 = 0x30000; cr3 < 0x30000 + SPACE_SLOTS * 0x1000; cr3 += 0x1000)
		shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, cr3, 0);
	ck_assert(m.shadow.cur == a && stlb_soft(st) && st->space[a].n == 0); /* young again, afresh */

	stlb_fill(st, 2, 0x201, true);
	gmem_protect_code(&m.mem, 0x201);
	ck_assert_uint_eq(st->read[2] + 0x2000, at);
	ck_assert_uint_eq(st->write[2], view);           /* stores to code: through the user view */
	stlb_fill(st, 3, 0x201, true);                   /* a second alias, made while it is code */
	ck_assert_uint_eq(st->write[3], view);
	gmem_unprotect_code(&m.mem, 0x201);
	stlb_fill(st, 2, 0x201, true);
	ck_assert_uint_eq(st->write[2], st->read[2]);

	/* A direct space whose user view fills the host mappings goes back to
	 * the soft form for good; the capacity flush leaves its entries. */
	*st->budget = 0;
	ck_assert(stlb_spent(st) && !stlb_soft(st));
	for (uint32_t i = 0; i < SHADOW_MAX_MAPPINGS / 2 + 1; i++)
		shadow_map(&m.shadow, shadow_uview(a), 0x100 + i, 0x300 + i % 0x100, false, false);
	ck_assert_uint_eq(m.stats.shadow_flushes[SHFLUSH_CAPACITY], 1);
	ck_assert(stlb_soft(st) && st->outgrown && m.stats.stlb_outgrown == 1);
	ck_assert_uint_eq(st->read[2] + 0x2000, at);
	*st->budget = 0;
	ck_assert(!stlb_spent(st) && stlb_soft(st));     /* big: its budget never promotes it */
	ck_assert_uint_eq(*st->budget, STLB_YOUNG_BLOCKS);
	shadow_flush(&m.shadow, false, SHFLUSH_MODE);
	ck_assert_uint_eq(st->read[2], 0);
}
END_TEST

/* A CR3 load keeps the entries a space's tables still give until a probe
 * finds them unused: the STLB_PROBE_TURNS-th switch into a space drops them
 * (the few it checks for a recycled page directory stay); a space that
 * then made fewer than one fill for STLB_REFILL_WORTH entries dropped
 * drops them at every switch, one that filled them again keeps them. */
START_TEST(test_soft_tlb_drops_unused_entries_at_cr3_loads)
{
	const uint32_t pd_a = SOFT_PD_A, pd_b = SOFT_PD_B;
	struct stlb *st = &m.shadow.soft;
	soft_spaces(0x10, 40, 0x300);
	const unsigned a = m.shadow.cur;
	for (uint32_t i = 0; i < 40; i++)
		stlb_fill(st, 0x10 + i, 0x300 + i, true);
	for (unsigned turn = 1; turn < STLB_PROBE_TURNS; turn++) {
		shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
		shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
		ck_assert_uint_eq(st->space[a].n, 40);   /* checked and kept */
	}
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	ck_assert_uint_eq(st->space[a].n, 4);        /* the probe: 36 dropped */
	ck_assert_uint_eq(m.stats.stlb_dropped, 36);
	ck_assert(st->read[0x10] != 0 && st->read[0x20] == 0);
	for (uint32_t i = 4; i < 40; i++)
		stlb_fill(st, 0x10 + i, 0x300 + i, true); /* all used again */
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	ck_assert_uint_eq(st->space[a].n, 40);       /* worth keeping */
	for (unsigned turn = 1; turn <= STLB_PROBE_TURNS; turn++) {
		shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
		shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	}
	ck_assert_uint_eq(st->space[a].n, 4);        /* probed again, none used since */
	for (uint32_t i = 4; i < 8; i++)
		stlb_fill(st, 0x10 + i, 0x300 + i, true); /* 4 of 36: under one in STLB_REFILL_WORTH */
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_b, 0);
	shadow_switch_cr3(&m.shadow, CR0_PG | CR0_PE, pd_a, 0);
	ck_assert_uint_eq(st->space[a].n, 4);        /* dropping at every switch now */
	ck_assert(st->space[a].dropping);
}
END_TEST

Suite *paging_suite(void)
{
	Suite *s = suite_create("paging");
	TCase *t = tcase_create("walker and shadow");
	tcase_add_test(t, test_walk_translates_and_sets_accessed_dirty);
	tcase_add_test(t, test_walk_error_codes);
	tcase_add_test(t, test_walk_large_and_global);
	tcase_add_test(t, test_monitor_tlb_keeps_until_flush);
	tcase_add_test(t, test_shadow_aliases_and_flushes);
	tcase_add_test(t, test_shadow_switch_keeps_and_rechecks);
	tcase_add_test(t, test_shadow_invlpg_reaches_the_current_pair);
	tcase_add_test(t, test_shadow_invlpg_maps_ahead);
	tcase_add_test(t, test_shadow_run_keeps_code_read_only);
	tcase_add_test(t, test_shadow_capacity_bound);
	tcase_add_test(t, test_shadow_runs_count_as_mappings);
	tcase_add_test(t, test_soft_tlb_follows_the_user_view);
	tcase_add_test(t, test_soft_tlb_drops_unused_entries_at_cr3_loads);
	suite_add_tcase(s, t);
	return s;
}
