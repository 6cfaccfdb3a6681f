#include "compat32.h"

#include <asm/ldt.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child's code page, below 4 GiB (a 32-bit EIP must reach it): at 0,
 * 32-bit code that computes 42 in a way only 32-bit code does and jumps far
 * to the host's 64-bit user code segment (0x33) at offset 16, where 64-bit
 * code exits with it. */
static const uint8_t probe_code[] = {
	0xB8, 0x2B, 0x00, 0x00, 0x00,             /* mov $43, %eax */
	0x48,                                     /* dec %eax: 42 only as 32-bit code (a REX prefix in 64-bit mode) */
	0xEA, 0x10, 0x00, 0x00, 0x00, 0x33, 0x00, /* ljmp $0x33, $PAGE+16 (offset patched) */
	0x90, 0x90, 0x90,
	0x89, 0xC7,                               /* 16: mov %eax, %edi */
	0xB8, 0x3C, 0x00, 0x00, 0x00,             /* mov $SYS_exit, %eax */
	0x0F, 0x05,                               /* syscall: exit(42) */
};
#define PROBE_RAN 42

/* The child: an LDT code segment (selector 7: entry 0, LDT, RPL 3), a far
 * return into it; exit status PROBE_RAN only if the 32-bit code ran.
 * Anything else ends it by a signal or another status. */
static _Noreturn void probe_child(void)
{
	struct user_desc d = {.entry_number = 0, .base_addr = 0, .limit = 0xFFFFF, .seg_32bit = 1,
			      .contents = MODIFY_LDT_CONTENTS_CODE, .limit_in_pages = 1, .useable = 1};
	alarm(5);
	if (syscall(SYS_modify_ldt, 1, &d, sizeof d) != 0)
		_exit(10 + (errno == ENOSYS));
	uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (page == MAP_FAILED)
		_exit(12);
	memcpy(page, probe_code, sizeof probe_code);
	uint32_t target = (uint32_t)(uintptr_t)page + 16;
	memcpy(page + 7, &target, 4);
	__asm__ volatile("pushq $7\n pushq %0\n lretq" : : "r"((uint64_t)(uintptr_t)page) : "memory");
	_exit(13);
}

bool compat32_probe(char *why, size_t n)
{
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, n, "the probe could not fork: %s", strerror(errno));
		return false;
	}
	if (pid == 0)
		probe_child();
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			snprintf(why, n, "the probe's child was lost: %s", strerror(errno));
			return false;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == PROBE_RAN) {
		snprintf(why, n, "a 32-bit LDT code segment ran");
		return true;
	}
	if (WIFSIGNALED(status))
		snprintf(why, n, "a far return to a 32-bit LDT code segment died of %s: the host kernel runs no "
			 "32-bit code (IA-32 emulation off)", strsignal(WTERMSIG(status)));
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 11)
		snprintf(why, n, "the host kernel has no modify_ldt");
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 10)
		snprintf(why, n, "modify_ldt refused a 32-bit code segment");
	else
		snprintf(why, n, "the probe failed (status %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return false;
}
