#include <stdlib.h>
#include <string.h>

#include "cpu/direct.h"
#include "unit.h"

void machine_init(struct machine *m, int counting)
{
	char err[256];

	memset(m, 0, sizeof *m);
	ck_assert_msg(gmem_init(&m->mem, 16u << 20, err, sizeof err) == 0, "%s", err);
	ck_assert_msg(shadow_init(&m->shadow, &m->mem, &m->stats, err, sizeof err) == 0, "%s", err);
	ck_assert_msg(tc_init(&m->tc, &m->mem, &m->stats, 8u << 20, counting, err, sizeof err) == 0, "%s", err);
	ck_assert_msg(vcpu_init(&m->v, &m->mem, &m->shadow, &m->tc, &m->stats, &m->board, err, sizeof err) == 0, "%s", err);
	m->serial = open_memstream(&m->serial_buf, &m->serial_len);
	ck_assert_msg(board_init(&m->board, &m->v, m->serial, err, sizeof err) == 0, "%s", err);
	xlate_init(&m->x, &m->tc, &m->mem, &m->stats);
	ck_assert_msg(vcpu_signals_install(&m->v, err, sizeof err) == 0, "%s", err);
	m->v.hot->gpr[R_ESP] = 0x90000;
}

void machine_run(struct machine *m, const void *code, size_t len)
{
	const uint8_t hlt = 0xF4;
	gmem_write_block(&m->mem, GUEST_CODE, code, (uint32_t)len);
	gmem_write_block(&m->mem, GUEST_CODE + (uint32_t)len, &hlt, 1);
	m->v.hot->eip = GUEST_CODE;
	m->v.stopped = false;
	m->v.halted = false;
	vcpu_run(&m->v, &m->x);
	ck_assert_msg(m->v.stopped, "the run ended");
	ck_assert_msg(strstr(m->v.stop_reason, "halted"), "stopped at the hlt, not: %s", m->v.stop_reason);
}

int main(int argc, char **argv)
{
	direct_stub_main(argc, argv); /* the ring-3 host process of test_direct.c */
	SRunner *sr = srunner_create(classify_suite());
	srunner_add_suite(sr, rewrite_suite());
	srunner_add_suite(sr, insn_suite());
	srunner_add_suite(sr, cache_suite());
	srunner_add_suite(sr, loader_suite());
	srunner_add_suite(sr, devices_suite());
	srunner_add_suite(sr, robust_suite());
	srunner_add_suite(sr, paging_suite());
	srunner_add_suite(sr, contain_suite());
	srunner_add_suite(sr, direct_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
