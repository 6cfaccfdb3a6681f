/* Containment: after contain_install, a system call the monitor does not
 * need, one made from translated code, and a new executable mapping each
 * end the process with CONTAIN_EXIT_STATUS; ordinary work goes on.  Each
 * test runs in its own process (CK_FORK), the filter dies with it. */
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cpu/contain.h"
#include "unit.h"

static struct machine m;

static void contain(void)
{
	char err[256];
	machine_init(&m, 0);
	ck_assert_msg(contain_install(&m.tc, err, sizeof err) == 0, "%s", err);
}

START_TEST(test_allowed_calls_work)
{
	contain();
	ck_assert_int_gt(getpid(), 0);
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	/* and a guest still runs: the whole suite of guests does too */
	const uint8_t code[] = {0xB8, 5, 0, 0, 0, 0x01, 0xC0}; /* mov $5,%eax; add %eax,%eax */
	machine_run(&m, code, sizeof code);
	ck_assert_uint_eq(m.v.hot->gpr[R_EAX], 10);
	/* Leave before Check's own bookkeeping, which makes system calls
	 * (timer_create) that bt86 itself makes before containment. */
	_exit(0);
}
END_TEST

START_TEST(test_forbidden_call_stops)
{
	contain();
	syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	ck_abort_msg("socket() was not stopped");
}
END_TEST

START_TEST(test_call_from_translated_code_stops)
{
	contain();
	/* A getpid system call planted in the translation cache: allowed by
	 * number, refused by origin. */
	const uint8_t code[] = {0xB8, 39, 0, 0, 0, 0x0F, 0x05, 0xC3}; /* mov $39,%eax; syscall; ret */
	uint8_t *at = tc_ptr(&m.tc, m.tc.used);
	memcpy(at, code, sizeof code);
	((void (*)(void))at)();
	ck_abort_msg("a system call from the translation cache was not stopped");
}
END_TEST

START_TEST(test_executable_mapping_stops)
{
	contain();
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_abort_msg("an executable mapping was not stopped");
}
END_TEST

Suite *contain_suite(void)
{
	Suite *s = suite_create("containment");
	TCase *t = tcase_create("seccomp");
	tcase_add_exit_test(t, test_allowed_calls_work, 0);
	tcase_add_exit_test(t, test_forbidden_call_stops, CONTAIN_EXIT_STATUS);
	tcase_add_exit_test(t, test_call_from_translated_code_stops, CONTAIN_EXIT_STATUS);
	tcase_add_exit_test(t, test_executable_mapping_stops, CONTAIN_EXIT_STATUS);
	suite_add_tcase(s, t);
	return s;
}
