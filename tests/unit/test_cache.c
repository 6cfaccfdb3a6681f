/* The translation cache: insert, lookup, chain, unchain, invalidate, flush. */
#include <string.h>

#include "unit.h"

/* Guest code: at A (page 0x100): jmp B (same page); at B: jmp C (next page). */
#define A 0x100000u
#define B 0x100100u
#define C 0x101000u

static void place_jmp(struct machine *m, uint32_t at, uint32_t to)
{
	int32_t rel = (int32_t)(to - (at + 5));
	m->mem.ram[at] = 0xE9;
	memcpy(m->mem.ram + at + 1, &rel, 4);
}

static int32_t rel_at(struct machine *m, uint32_t patch)
{
	int32_t rel;
	memcpy(&rel, tc_ptr(&m->tc, patch), 4);
	return rel;
}

static struct tc_exit *branch_exit(struct tc_block *b)
{
	for (unsigned i = 0; i < b->n_exits; i++)
		if (b->exits[i].kind == TCX_BRANCH)
			return &b->exits[i];
	return NULL;
}

/* The lookup-table entry of way 0 of EIP's set: -EIP, then the code offset. */
static uint32_t *way0(struct machine *m, uint32_t eip)
{
	return (uint32_t *)m->tc.base + 2 * (2 * jtab_set(eip));
}

/* Another EIP of the same lookup-table set as `eip`. */
static uint32_t same_set(uint32_t eip)
{
	uint32_t d = eip + 1;
	while (jtab_set(d) != jtab_set(eip))
		d++;
	return d;
}

/* A machine whose block at A (jmp B) is translated. */
static struct tc_block *with_block_a(struct machine *m)
{
	machine_init(m, 0);
	place_jmp(m, A, B);
	return xlate_block(&m->x, A, A, 0, TC_PHYS2_ANY);
}

START_TEST(test_insert_and_lookup)
{
	struct machine m;
	struct tc_block *a = with_block_a(&m);
	ck_assert_ptr_eq(tc_lookup(&m.tc, A, A, 0, TC_PHYS2_ANY), a);
	ck_assert_ptr_null(tc_lookup(&m.tc, A, A, 3, TC_PHYS2_ANY)); /* another CPL is another key */
	ck_assert_ptr_eq(tc_block_at(&m.tc, a->host), a);
	ck_assert_ptr_eq(tc_block_at(&m.tc, a->host + a->host_len - 1), a);
	ck_assert_ptr_null(tc_block_at(&m.tc, a->host + a->host_len));
	ck_assert(m.mem.code_page[A >> 12]);
	bool boundary;
	ck_assert_uint_eq(tc_guest_eip_at(a, a->host, &boundary), A);
	ck_assert(boundary);
	/* The same physical code at another EIP (one page mapped twice) is
	 * another translation: its exits name other guest addresses. */
	ck_assert_ptr_null(tc_lookup(&m.tc, A + 0x10000, A, 0, TC_PHYS2_ANY));
	struct tc_block *alias = xlate_block(&m.x, A + 0x10000, A, 0, TC_PHYS2_ANY);
	ck_assert_ptr_nonnull(alias);
	ck_assert_ptr_ne(alias, a);
	ck_assert_ptr_eq(tc_lookup(&m.tc, A + 0x10000, A, 0, TC_PHYS2_ANY), alias);
	ck_assert_ptr_eq(tc_lookup(&m.tc, A, A, 0, TC_PHYS2_ANY), a);
	ck_assert_uint_eq(branch_exit(alias)->guest_eip, B + 0x10000);
}
END_TEST

START_TEST(test_chain_and_unchain_on_invalidate)
{
	struct machine m;
	machine_init(&m, 0);
	place_jmp(&m, A, B);
	place_jmp(&m, B, C);
	struct tc_block *a = xlate_block(&m.x, A, A, 0, TC_PHYS2_ANY);
	struct tc_block *b = xlate_block(&m.x, B, B, 0, TC_PHYS2_ANY);
	struct tc_exit *x = branch_exit(a);
	ck_assert_ptr_nonnull(x);
	ck_assert_uint_ne(x->patch, 0);
	ck_assert_int_eq(rel_at(&m, x->patch), (int32_t)(x->stub - (x->patch + 4)));
	tc_chain(&m.tc, x, b);
	ck_assert_int_eq(rel_at(&m, x->patch), (int32_t)(b->host - (x->patch + 4)));
	ck_assert_ptr_eq(b->incoming, x);
	ck_assert_uint_eq(m.stats.chains_made, 1);
	/* B's branch to C crosses a page: never chained directly. */
	ck_assert_uint_eq(branch_exit(b)->patch, 0);

	tc_invalidate_page(&m.tc, B >> 12, INVAL_GUEST_WRITE);
	ck_assert(!a->valid && !b->valid); /* same page */
	ck_assert_int_eq(rel_at(&m, x->patch), (int32_t)(x->stub - (x->patch + 4)));
	ck_assert_uint_eq(m.stats.chains_broken, 1);
	ck_assert_ptr_null(tc_lookup(&m.tc, A, A, 0, TC_PHYS2_ANY));
	ck_assert(!m.mem.code_page[A >> 12]);
	ck_assert_uint_eq(m.stats.invalidations[INVAL_GUEST_WRITE], 1);
}
END_TEST

START_TEST(test_invalidate_other_page_keeps_block)
{
	struct machine m;
	machine_init(&m, 0);
	place_jmp(&m, A, B);
	place_jmp(&m, C, A);
	struct tc_block *a = xlate_block(&m.x, A, A, 0, TC_PHYS2_ANY);
	struct tc_block *c = xlate_block(&m.x, C, C, 0, TC_PHYS2_ANY);
	tc_invalidate_page(&m.tc, C >> 12, INVAL_MONITOR_WRITE);
	ck_assert(a->valid && !c->valid);
	ck_assert_ptr_eq(tc_lookup(&m.tc, A, A, 0, TC_PHYS2_ANY), a);
	ck_assert(m.mem.code_page[A >> 12] && !m.mem.code_page[C >> 12]);
}
END_TEST

START_TEST(test_monitor_write_invalidates)
{
	struct machine m;
	struct tc_block *a = with_block_a(&m);
	gmem_write(&m.mem, A + 0x800, 4, 0xDEADBEEF);
	ck_assert(!a->valid);
	ck_assert_uint_eq(m.stats.invalidations[INVAL_MONITOR_WRITE], 1);
}
END_TEST

START_TEST(test_lookup_table)
{
	struct machine m;
	struct tc_block *a = with_block_a(&m);
	uint32_t *e = way0(&m, A);
	ck_assert_uint_eq(e[1], m.tc.miss_stub);
	tc_jtab_set(&m.tc, A, a, false);
	ck_assert_uint_eq(e[0], -A);
	ck_assert_uint_eq(e[1], a->host);
	tc_jtab_clear(&m.tc);
	ck_assert_uint_eq(e[0], 0);
	ck_assert_uint_eq(e[1], m.tc.miss_stub);
}
END_TEST

/* Two EIPs of one set both stay (the newest in way 0), a third displaces
 * the older; translated code finds an entry in way 1 too. */
START_TEST(test_lookup_table_two_ways)
{
	struct machine m;
	machine_init(&m, 0);
	const uint32_t t = GUEST_CODE + 7;
	/* mov $t, %eax; jmp *%eax; t: (hlt) */
	const uint8_t code[] = {0xB8, (uint8_t)t, (uint8_t)(t >> 8), (uint8_t)(t >> 16), (uint8_t)(t >> 24), 0xFF, 0xE0};
	machine_run(&m, code, sizeof code);
	ck_assert_uint_eq(m.stats.lookup_inline_misses, 1);
	uint32_t *w0 = way0(&m, t), *w1 = w0 + 2;
	ck_assert_uint_eq(w0[0], -t);
	const uint32_t host_t = w0[1];
	struct tc_block *tb = tc_block_at(&m.tc, host_t);
	ck_assert_ptr_nonnull(tb);

	uint32_t d = same_set(t), d2 = same_set(d);
	tc_jtab_set(&m.tc, d, tb, true);
	ck_assert_uint_eq(w0[0], -d);
	ck_assert_uint_eq(w1[0], -t);
	ck_assert_uint_eq(w1[1], host_t);

	uint64_t hits = m.stats.lookup_inline_hits;
	m.v.hot->eip = GUEST_CODE; /* again, the code unchanged: t is in way 1 now */
	m.v.stopped = m.v.halted = false;
	vcpu_run(&m.v, &m.x);
	ck_assert(m.v.stopped && strstr(m.v.stop_reason, "halted"));
	ck_assert_uint_eq(m.stats.lookup_inline_misses, 1);
	ck_assert_uint_eq(m.stats.lookup_inline_hits, hits + 1);

	tc_jtab_set(&m.tc, d2, tb, true);
	ck_assert_uint_eq(w0[0], -d2);
	ck_assert_uint_eq(w1[0], -d);
	tc_jtab_clear_range(&m.tc, d & ~0xFFFu, 4096); /* way 1's EIP goes */
	ck_assert_uint_eq(w1[1], m.tc.miss_stub);
	ck_assert_uint_eq(w0[0], -d2);
}
END_TEST

static uint32_t still_eip;
static bool still_at(void *ctx, uint32_t eip, uint32_t page)
{
	(void)ctx;
	return eip == still_eip && page == A >> 12;
}

/* A CR3 load drops the entries of non-global pages only, unless the new
 * space still fetches them from the same page; invlpg drops those of one
 * EIP range only. */
START_TEST(test_lookup_table_local_and_page)
{
	struct machine m;
	struct tc_block *a = with_block_a(&m);
	uint32_t other = A + 0x10000; /* another page, in another slot */
	uint32_t *ea = way0(&m, A);
	uint32_t *eo = way0(&m, other + 4);
	uint32_t *ec = way0(&m, other + 8);
	tc_jtab_set(&m.tc, A, a, true);
	tc_jtab_set(&m.tc, other + 4, a, false);
	tc_jtab_set(&m.tc, other + 8, a, false);
	still_eip = other + 8;                      /* the new space maps this one alike */
	tc_jtab_switch(&m.tc, still_at, NULL);
	ck_assert_uint_eq(ea[1], a->host);          /* global: kept */
	ck_assert_uint_eq(eo[1], m.tc.miss_stub);   /* local: dropped */
	ck_assert_uint_eq(ec[1], a->host);          /* local, same page in the new space: kept */
	ck_assert_uint_eq(m.tc.n_jtab_local, 1);
	still_eip = 0;
	tc_jtab_switch(&m.tc, still_at, NULL);
	ck_assert_uint_eq(ec[1], m.tc.miss_stub);
	tc_jtab_set(&m.tc, other + 4, a, true);
	tc_jtab_clear_range(&m.tc, (other + 4) & ~0xFFFu, 4096);
	ck_assert_uint_eq(eo[1], m.tc.miss_stub);
	ck_assert_uint_eq(ea[1], a->host);          /* another page: kept */
	tc_jtab_clear_range(&m.tc, A - 14, 14);  /* the bytes before A's page: not A */
	ck_assert_uint_eq(ea[1], a->host);
	tc_jtab_clear_range(&m.tc, A & ~0xFFFu, 4096);
	ck_assert_uint_eq(ea[1], m.tc.miss_stub);
}
END_TEST

static bool never(void *ctx, uint32_t eip, uint32_t page)
{
	(void)ctx, (void)eip, (void)page;
	return false;
}

/* The entries a CR3 load drops go to the victim cache, by EIP page; a
 * lookup miss in that page puts back those from the same frame, once the
 * drop is more than one CR3 load old, and not when a block was
 * invalidated meanwhile. */
START_TEST(test_lookup_table_victims)
{
	struct machine m;
	struct tc_block *a = with_block_a(&m);
	uint32_t *e = way0(&m, A + 4);
	const uint32_t frame = A >> 12;
	tc_jtab_set(&m.tc, A + 4, a, false);

	tc_jtab_switch(&m.tc, never, NULL);
	ck_assert_uint_eq(e[1], m.tc.miss_stub);
	tc_jtab_unpark(&m.tc, A + 8, frame);              /* dropped at this load: not yet */
	tc_jtab_switch(&m.tc, never, NULL);
	tc_jtab_unpark(&m.tc, A + 8, frame);              /* nor one load later (a pipe's turn) */
	ck_assert_uint_eq(e[1], m.tc.miss_stub);
	tc_jtab_switch(&m.tc, never, NULL);
	tc_jtab_unpark(&m.tc, A + 8, frame + 1);          /* another frame now */
	ck_assert_uint_eq(e[1], m.tc.miss_stub);
	tc_jtab_unpark(&m.tc, A + 8, frame);
	ck_assert_uint_eq(e[0], -(A + 4));
	ck_assert_uint_eq(e[1], a->host);
	ck_assert_uint_eq(m.stats.lookup_restored, 1);

	tc_jtab_switch(&m.tc, never, NULL);
	tc_jtab_switch(&m.tc, never, NULL);
	tc_invalidate_page(&m.tc, A >> 12, INVAL_GUEST_WRITE);
	tc_jtab_unpark(&m.tc, A + 8, frame);              /* its block is gone */
	ck_assert_uint_eq(e[1], m.tc.miss_stub);
	ck_assert_uint_eq(m.stats.lookup_restored, 1);
}
END_TEST

START_TEST(test_flush)
{
	struct machine m;
	machine_init(&m, 0);
	place_jmp(&m, A, B);
	xlate_block(&m.x, A, A, 0, TC_PHYS2_ANY);
	uint64_t gen = m.tc.generation;
	uint32_t used = m.tc.used;
	tc_flush(&m.tc);
	ck_assert_ptr_null(tc_lookup(&m.tc, A, A, 0, TC_PHYS2_ANY));
	ck_assert_uint_eq(m.tc.n_blocks, 0);
	ck_assert_uint_lt(m.tc.used, used);
	ck_assert_uint_eq(m.tc.generation, gen + 1);
	ck_assert_uint_eq(m.stats.flushes, 1);
	ck_assert(!m.mem.code_page[A >> 12]);
}
END_TEST

START_TEST(test_flush_when_full)
{
	struct machine m;
	char err[128];
	memset(&m, 0, sizeof m);
	ck_assert(gmem_init(&m.mem, 16u << 20, err, sizeof err) == 0);
	ck_assert(shadow_init(&m.shadow, &m.mem, &m.stats, err, sizeof err) == 0);
	/* A cache with room for only a few blocks past its tables; less is refused. */
	ck_assert(tc_init(&m.tc, &m.mem, &m.stats, TC_MIN_SIZE - 1, 0, err, sizeof err) != 0);
	ck_assert(tc_init(&m.tc, &m.mem, &m.stats, TC_MIN_SIZE, 0, err, sizeof err) == 0);
	xlate_init(&m.x, &m.tc, &m.mem, &m.stats);
	for (uint32_t i = 0; i < 2000; i++) {
		uint32_t at = A + i * 16;
		place_jmp(&m, at, at + 16);
		ck_assert_ptr_nonnull(xlate_block(&m.x, at, at, 0, TC_PHYS2_ANY));
	}
	ck_assert_uint_gt(m.stats.flushes, 0);
}
END_TEST

/* Under paging an instruction running onto the next linear page takes its
 * tail from the frame that page maps to: the block is keyed by that frame,
 * protects it, and is emulated while the page is unmapped. */
START_TEST(test_straddling_instruction)
{
	struct machine m;
	machine_init(&m, 0);
	const uint32_t eip = 0x40000FFE, head = 0x105FFE, tail = 0x109000;
	const uint8_t mov[] = {0xB8, 0x78, 0x56, 0x34, 0x12}; /* mov $0x12345678, %eax */
	memcpy(m.mem.ram + head, mov, 2);
	memcpy(m.mem.ram + tail, mov + 2, 3);
	memset(m.mem.ram + head - 0x1000 + 2, 0, 3);       /* what a flat read would see */
	struct tc_block *b = xlate_block(&m.x, eip, head, XMODE_PAGING, tail);
	ck_assert_uint_eq(b->phys2, tail);
	ck_assert_uint_eq(b->guest_len, 5);
	ck_assert_uint_eq(b->n_callout, 0);                 /* translated, not emulated */
	ck_assert_uint_eq(b->n_pages, 2);
	ck_assert_uint_eq(b->pages[1], tail >> 12);
	ck_assert(m.mem.code_page[tail >> 12]);
	ck_assert_ptr_eq(tc_lookup(&m.tc, eip, head, XMODE_PAGING, tail), b);
	ck_assert_ptr_null(tc_lookup(&m.tc, eip, head, XMODE_PAGING, tail + 0x1000)); /* remapped */
	ck_assert_ptr_null(tc_lookup(&m.tc, eip, head, XMODE_PAGING, TC_PHYS2_UNMAPPED));
	struct tc_block *e = xlate_block(&m.x, eip, head, XMODE_PAGING, TC_PHYS2_UNMAPPED);
	ck_assert_uint_eq(e->phys2, TC_PHYS2_UNMAPPED);
	ck_assert_uint_eq(e->n_callout, 1);                 /* the emulator raises the #PF */
	gmem_write(&m.mem, tail + 0x800, 4, 0);             /* the tail's frame is code */
	ck_assert(!b->valid);
	ck_assert(e->valid);
}
END_TEST

START_TEST(test_execution_counts)
{
	struct machine m;
	machine_init(&m, 1);
	/* mov $100,%ecx; l: dec %ecx; jnz l */
	const uint8_t code[] = {0xB9, 100, 0, 0, 0, 0x49, 0x75, 0xFD};
	machine_run(&m, code, sizeof code);
	struct tc_block *loop = tc_lookup(&m.tc, GUEST_CODE + 5, GUEST_CODE + 5, XMODE_TSC_NATIVE, TC_PHYS2_ANY);
	ck_assert_ptr_nonnull(loop);
	/* The first pass runs in the entry block, the other 99 in the loop's. */
	ck_assert_uint_eq(tc_block_execs(&m.tc, loop), 99);
	uint64_t e[4];
	tc_exec_totals(&m.tc, e);
	ck_assert_uint_eq(e[1], 100); /* 100 executed jnz */
}
END_TEST

Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *t = tcase_create("blocks");
	tcase_add_test(t, test_insert_and_lookup);
	tcase_add_test(t, test_chain_and_unchain_on_invalidate);
	tcase_add_test(t, test_invalidate_other_page_keeps_block);
	tcase_add_test(t, test_monitor_write_invalidates);
	tcase_add_test(t, test_lookup_table);
	tcase_add_test(t, test_lookup_table_two_ways);
	tcase_add_test(t, test_straddling_instruction);
	tcase_add_test(t, test_lookup_table_local_and_page);
	tcase_add_test(t, test_lookup_table_victims);
	tcase_add_test(t, test_flush);
	tcase_add_test(t, test_flush_when_full);
	tcase_add_test(t, test_execution_counts);
	suite_add_tcase(s, t);
	return s;
}
