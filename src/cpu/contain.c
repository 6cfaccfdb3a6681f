#include "contain.h"

#include <asm/hwcap2.h>
#include <asm/prctl.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../cache/tc.h"
#include "../devices/console.h"
#include "../mem/layout.h"
#include "../snapshot/snapshot.h"

bool contain_wrgsbase(void)
{
	static int has = -1;
	if (has < 0)
		has = (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) != 0;
	return has;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char msg[160];
	(void)sig;
	(void)uc;
	int n = snprintf(msg, sizeof msg, "bt86: blocked system call %d from %p: the VM is stopped\n",
			 si->si_syscall, si->si_call_addr);
	console_restore();
	if (write(2, msg, (size_t)n) < 0)
		_exit(CONTAIN_EXIT_STATUS);
	_exit(CONTAIN_EXIT_STATUS);
}

/* What the monitor does at run time: memory, signals, time, the terminal,
 * disk images, threads, exit.  No exec, socket, ptrace or process creation,
 * and no open but savevm's (below). */
static const int allowed[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(close), SCMP_SYS(fstat),
	SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(ioctl), SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(munmap), SCMP_SYS(brk), SCMP_SYS(mremap), SCMP_SYS(madvise),
	SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
	SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(tgkill), SCMP_SYS(timer_settime),
	SCMP_SYS(timer_gettime), SCMP_SYS(timer_delete), SCMP_SYS(futex), SCMP_SYS(sched_yield),
	SCMP_SYS(restart_syscall), SCMP_SYS(getrandom), SCMP_SYS(exit), SCMP_SYS(exit_group),
	/* A thread created just before the filter (the terminal reader) runs
	 * glibc's start-up under it, with every signal blocked. */
	SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
	/* The GDB stub's listening socket, made before containment: a
	 * debugger's connection and its traffic (gdbstub.h). */
	SCMP_SYS(accept4), SCMP_SYS(shutdown), SCMP_SYS(setsockopt),
	/* Disk images, opened before containment. */
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(fdatasync),
	/* glibc's qsort sizes its buffer from the physical memory size. */
	SCMP_SYS(sysinfo),
	/* How the ring-3 host process ended, through its pidfd (direct.c). */
	SCMP_SYS(waitid),
};

static int install_allow_list(char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int rc = ctx ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < sizeof allowed / sizeof allowed[0]; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	/* mmap and mprotect, but never anything new that is executable. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* The monitor's savevm: openat with exactly SNAPSHOT_OPEN_FLAGS, a
	 * file for writing; no other open. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
				      SCMP_A2(SCMP_CMP_EQ, SNAPSHOT_OPEN_FLAGS));
	/* The debugger's and the monitor's replies: send on a connected
	 * socket, MSG_NOSIGNAL. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sendto), 3, SCMP_A3(SCMP_CMP_EQ, MSG_NOSIGNAL),
				      SCMP_A4(SCMP_CMP_EQ, 0), SCMP_A5(SCMP_CMP_EQ, 0));
	/* The GS base, which follows the guest's address space (run.c),
	 * when wrgsbase cannot move it. */
	if (rc == 0 && !contain_wrgsbase())
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(arch_prctl), 1,
				      SCMP_A0(SCMP_CMP_EQ, ARCH_SET_GS));
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = seccomp_load(ctx);
	if (ctx)
		seccomp_release(ctx);
	if (rc != 0)
		snprintf(err, errlen, "cannot install the seccomp allow-list: %s", strerror(-rc));
	return rc ? -1 : 0;
}

#define LD_W(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))

static int install_origin_filter(const struct tc *tc, char *err, size_t errlen)
{
	uint64_t lo = (uint64_t)(uintptr_t)tc->base, hi = lo + tc->size - 1;
	uint32_t tc_hi = (uint32_t)(lo >> 32);

	if ((hi >> 32) != tc_hi) {
		snprintf(err, errlen, "the translation cache straddles a 4 GiB boundary");
		return -1;
	}
	const uint32_t ip_lo = offsetof(struct seccomp_data, instruction_pointer);
	const uint32_t ip_hi = ip_lo + 4;
	const uint32_t windows_hi = (uint32_t)(GUEST_WINDOW_SIZE >> 32);
	struct sock_filter f[] = {
		LD_W(offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		RET(SECCOMP_RET_TRAP),                                    /* a 32-bit system call */
		LD_W(ip_hi),
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, windows_hi, 1, 0),
		RET(SECCOMP_RET_TRAP),                                    /* from a guest window */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, tc_hi, 0, 4),
		LD_W(ip_lo),
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)lo, 0, 2),
		BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)hi, 1, 0),
		RET(SECCOMP_RET_TRAP),                                    /* from translated code */
		RET(SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
		snprintf(err, errlen, "cannot install the seccomp origin filter: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int contain_install(const struct tc *tc, char *err, size_t errlen)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "cannot prepare seccomp: %s", strerror(errno));
		return -1;
	}
	if (install_origin_filter(tc, err, errlen))
		return -1;
	return install_allow_list(err, errlen);
}
