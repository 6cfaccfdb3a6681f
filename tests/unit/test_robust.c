/* The host never crashes because of anything a guest does: random byte
 * strings run as ring-0 guest code must each end in an orderly stop (exit
 * port, halt, triple fault, an unsupported instruction or the time limit),
 * and a triple fault names itself. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "unit.h"

static struct machine m;

static void on_alarm(int sig)
{
	(void)sig;
	vcpu_request_stop(&m.v);
}

START_TEST(test_random_code_stops_in_order)
{
	char err[256];
	struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_ONSTACK};
	struct itimerval limit = {{0, 0}, {0, 20000}}, off = {{0, 0}, {0, 0}};
	uint32_t seed = 0xB7E15163u;
	unsigned reasons[4] = {0, 0, 0, 0};

	machine_init(&m, 0);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	for (int i = 0; i < 400; i++) {
		uint8_t code[96];
		for (unsigned k = 0; k < sizeof code; k++) {
			seed = seed * 1664525u + 1013904223u;
			code[k] = (uint8_t)(seed >> 24);
		}
		if (m.shadow.paging)
			shadow_set_paging(&m.shadow, false);
		vcpu_destroy(&m.v);
		ck_assert(vcpu_init(&m.v, &m.mem, &m.shadow, &m.tc, &m.stats, &m.board, err, sizeof err) == 0);
		tc_flush(&m.tc);
		m.v.hot->gpr[R_ESP] = 0x90000;
		gmem_write_block(&m.mem, GUEST_CODE, code, sizeof code);
		m.v.hot->eip = GUEST_CODE;
		setitimer(ITIMER_REAL, &limit, NULL);
		vcpu_run(&m.v, &m.x);
		setitimer(ITIMER_REAL, &off, NULL);
		ck_assert_msg(m.v.stopped, "program %d ended", i);
		/* bt86's own stops are even; only the exit port gives odd ones */
		ck_assert_msg(!m.v.stop_reason[0] || m.v.exit_status % 2 == 0, "program %d: status %d for \"%s\"", i,
			      m.v.exit_status, m.v.stop_reason);
		if (strstr(m.v.stop_reason, "halted"))
			reasons[0]++;
		else if (strstr(m.v.stop_reason, "triple fault"))
			reasons[1]++;
		else if (strstr(m.v.stop_reason, "unsupported") || strstr(m.v.stop_reason, "outside RAM")) {
			reasons[2]++;
			if (getenv("BT86_SHOW_UNSUPPORTED"))
				printf("%s\n", m.v.stop_reason);
		}
		else
			reasons[3]++;
	}
	printf("random code: %u halted, %u triple faults, %u unsupported, %u other (exit port, time limit)\n",
	       reasons[0], reasons[1], reasons[2], reasons[3]);
}
END_TEST

START_TEST(test_triple_fault)
{
	machine_init(&m, 0);
	m.v.idtr.limit = 0; /* every vector is past the IDT limit */
	const uint8_t code[] = {0x0F, 0x0B, 0xF4}; /* ud2 */
	memcpy(m.mem.ram + GUEST_CODE, code, sizeof code);
	m.v.hot->eip = GUEST_CODE;
	vcpu_run(&m.v, &m.x);
	ck_assert(m.v.stopped);
	ck_assert_msg(strstr(m.v.stop_reason, "triple fault") && strstr(m.v.stop_reason, "0x100000"),
		      "diagnostic names the triple fault and the EIP: %s", m.v.stop_reason);
	ck_assert_int_eq(m.v.exit_status, BT86_EXIT_TRIPLE_FAULT);
}
END_TEST

Suite *robust_suite(void)
{
	Suite *s = suite_create("robustness");
	TCase *t = tcase_create("hostile guests");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_random_code_stops_in_order);
	tcase_add_test(t, test_triple_fault);
	suite_add_tcase(s, t);
	return s;
}
