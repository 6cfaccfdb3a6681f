/*
 * The ring-3 host process (direct.h): bt86's executable started again with
 * DIRECT_STUB_ARG.  After its set-up it runs nothing but guest code and
 * stub_on_signal, the handler every exit of that code arrives in.
 *
 * The handler runs with the guest's segment registers loaded (the kernel
 * changes only CS and SS for a 64-bit handler), so FS does not point at
 * this thread's TLS: it touches no thread-local state, calls nothing in
 * libc that might (only memcpy and memset), and makes its system calls
 * through stub_sys, the one `syscall` instruction the seccomp filter lets
 * through.
 */
#include "direct.h"

#include <asm/ldt.h>
#include <asm/prctl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include "vcpu.h"

#ifndef UC_STRICT_RESTORE_SS
#define UC_STRICT_RESTORE_SS 0x4
#endif
#ifndef FP_XSTATE_MAGIC1
#define FP_XSTATE_MAGIC1 0x46505853u
#endif
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif
#define HOST_USER64_CS 0x33 /* Linux's 64-bit user code selector */
#define HOST_USER32_CS 0x23 /* and its 32-bit one */
#define LOW_END 0x100000000ull

/* stub_sys(nr, a1..a6): a system call through the filter's one site.
 * stub_restorer: the signal frame's return, rt_sigreturn through it too.
 * stub_ready_ud2: the fault that delivers the first event. */
__asm__(".text\n"
	".globl stub_sys\n.hidden stub_sys\n.type stub_sys,@function\n"
	"stub_sys:\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rdi\n"
	"	mov %rdx, %rsi\n"
	"	mov %rcx, %rdx\n"
	"	mov %r8, %r10\n"
	"	mov %r9, %r8\n"
	"	mov 8(%rsp), %r9\n"
	"stub_sys_insn:\n"
	"	syscall\n"
	".globl stub_sys_after\n.hidden stub_sys_after\n"
	"stub_sys_after:\n"
	"	ret\n"
	".globl stub_restorer\n.hidden stub_restorer\n.type stub_restorer,@function\n"
	"stub_restorer:\n"
	"	mov $" "15" ", %eax\n" /* SYS_rt_sigreturn */
	"	jmp stub_sys_insn\n"
	".globl stub_ready_ud2\n.hidden stub_ready_ud2\n"
	"stub_ready_ud2:\n"
	"	ud2\n");

long stub_sys(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
extern void stub_restorer(void);
extern const char stub_sys_after[], stub_ready_ud2[];

static struct {
	struct direct_ctl *ctl;
	int ram_fd;
	uint32_t low; /* the reservation's first address (the host's mmap_min_addr) */
	uint32_t seg_gen;
	uint16_t sel[DIRECT_SEGS]; /* what each data register is loaded with (direct_sel) */
	sigset_t guest_mask; /* blocked while guest code runs: every signal the stub does not handle */
} stub;

static void stub_futex(uint32_t *word, int op, uint32_t val)
{
	stub_sys(SYS_futex, (long)word, op, val, 0, 0, 0);
}

/* Hands the turn to the monitor and sleeps until it is the stub's again. */
static void stub_hand_over(struct direct_ctl *c)
{
	__atomic_store_n(&c->turn, DIRECT_TURN_MONITOR, __ATOMIC_RELEASE);
	stub_futex(&c->turn, FUTEX_WAKE, 1);
	for (unsigned spin = 0; spin < DIRECT_SPIN; spin++)
		if (__atomic_load_n(&c->turn, __ATOMIC_ACQUIRE) == DIRECT_TURN_STUB)
			return;
		else
			__builtin_ia32_pause();
	while (__atomic_load_n(&c->turn, __ATOMIC_ACQUIRE) != DIRECT_TURN_STUB)
		stub_futex(&c->turn, FUTEX_WAIT, DIRECT_TURN_MONITOR);
}

static void stub_apply_maps(struct direct_ctl *c)
{
	uint32_t n = c->nmaps < DIRECT_MAPS ? c->nmaps : DIRECT_MAPS;
	for (uint32_t i = 0; i < n; i++) {
		const struct direct_map *m = &c->map[i];
		uint64_t end = (uint64_t)m->lin + m->len;
		long r;
		if (m->lin < stub.low || end > LOW_END || m->len == 0 || (m->lin | m->len) & 0xFFF) {
			c->map_errors++;
			continue;
		}
		if (m->prot == 0)
			r = stub_sys(SYS_mmap, m->lin, m->len, PROT_NONE,
				     MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		else
			r = stub_sys(SYS_mmap, m->lin, m->len,
				     (m->prot & DIRECT_PROT_READ ? PROT_READ : 0) |
					     (m->prot & DIRECT_PROT_WRITE ? PROT_WRITE : 0) |
					     (m->prot & DIRECT_PROT_EXEC ? PROT_EXEC : 0),
				     MAP_FIXED | MAP_SHARED, stub.ram_fd, m->phys);
		if (r < 0 && r > -4096)
			c->map_errors++;
	}
	c->nmaps = 0;
}

/* The segments as the monitor gave them (it sends only descriptors a
 * guest's could be: a limit above 1 MiB has its low 12 bits set). */
static void stub_write_ldt(const struct direct_ctl *c)
{
	for (unsigned i = 0; i < DIRECT_SEGS; i++) {
		struct direct_seg s = c->seg[i];
		bool pages = s.limit > 0xFFFFF;
		struct user_desc d = {.entry_number = DIRECT_LDT_FIRST + i, .base_addr = s.base,
				      .limit = pages ? s.limit >> 12 : s.limit, .seg_32bit = 1,
				      .contents = i == S_CS ? MODIFY_LDT_CONTENTS_CODE
						  : s.flags & DIRECT_SEG_DOWN ? MODIFY_LDT_CONTENTS_STACK
									     : MODIFY_LDT_CONTENTS_DATA,
				      .read_exec_only = !!(s.flags & DIRECT_SEG_RO), .limit_in_pages = pages,
				      .useable = 1};
		stub_sys(SYS_modify_ldt, 1, (long)&d, sizeof d, 0, 0, 0);
		stub.sel[i] = i == S_CS || i == S_SS ? DIRECT_SEL(i) : direct_sel(&s, i);
	}
}

/* The x87/SSE image of the frame: fxsave's 512 bytes, followed under
 * XSAVE by a header whose first word says which components are not in
 * their initial state (the rest of the legacy area may then be stale). */
static uint64_t *stub_xstate_bv(ucontext_t *uc)
{
	uint8_t *fp = (uint8_t *)uc->uc_mcontext.fpregs;
	uint32_t magic;
	memcpy(&magic, fp + 464, sizeof magic);
	return (uc->uc_flags & 1) && magic == FP_XSTATE_MAGIC1 ? (uint64_t *)(fp + 512) : NULL;
}

static void stub_fx_out(ucontext_t *uc, uint8_t fx[512])
{
	const uint8_t *fp = (const uint8_t *)uc->uc_mcontext.fpregs;
	const uint64_t *bv = stub_xstate_bv(uc);
	memcpy(fx, fp, 512);
	if (bv && !(*bv & 1)) {
		memset(fx, 0, 24);                /* x87 in its initial state */
		fx[0] = 0x7F, fx[1] = 0x03;       /* FCW 0x037F */
		memset(fx + 32, 0, 128);
	}
	if (bv && !(*bv & 2))
		memset(fx + 160, 0, 256);         /* XMM registers initial */
}

static void stub_fx_in(ucontext_t *uc, const uint8_t fx[512])
{
	uint8_t *fp = (uint8_t *)uc->uc_mcontext.fpregs;
	uint64_t *bv = stub_xstate_bv(uc);
	memcpy(fp, fx, 464); /* not the software-reserved bytes */
	if (bv)
		*bv |= 3;
}

static enum direct_event stub_classify(int sig, const siginfo_t *si, const greg_t *g, uint16_t cs)
{
	if (sig == SIGILL && cs == HOST_USER64_CS && (uint64_t)g[REG_RIP] == (uint64_t)(uintptr_t)stub_ready_ud2)
		return DIRECT_EV_READY;
	if (sig == SIGSYS && si->si_arch == AUDIT_ARCH_I386)
		return DIRECT_EV_SYSCALL32;
	/* The host's 32-bit fast entry (sysenter on Intel, syscall on AMD)
	 * returns to the host vDSO's landing pad with its own 32-bit code
	 * selector when it cannot read the word at ESP, before any filter:
	 * compatibility-mode code never has an EIP above 4 GiB otherwise. */
	if (cs == HOST_USER32_CS && (uint64_t)g[REG_RIP] >= LOW_END)
		return DIRECT_EV_SYSCALL32;
	if (cs != DIRECT_SEL(S_CS))
		return DIRECT_EV_ESCAPE;
	if (sig == SIGUSR1)
		return DIRECT_EV_KICK;
	return DIRECT_EV_FAULT;
}

__attribute__((no_stack_protector)) static void stub_on_signal(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	struct direct_ctl *c = stub.ctl;
	uint16_t cs = (uint16_t)g[REG_CSGSFS], ds, es, fs, gs;

	/* The host clears DF for a handler but not AC, which guest code may
	 * have set: a misaligned access of the handler's would raise #AC. */
	__asm__ volatile("pushfq; andq $~0x40000, (%%rsp); popfq" : : : "memory", "cc");
	__asm__ volatile("mov %%ds, %0; mov %%es, %1; mov %%fs, %2; mov %%gs, %3"
			 : "=r"(ds), "=r"(es), "=r"(fs), "=r"(gs));
	static const int order[8] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI};
	for (unsigned i = 0; i < 8; i++)
		c->r.gpr[i] = (uint32_t)g[order[i]];
	c->r.eip = (uint32_t)g[REG_RIP];
	c->r.eflags = (uint32_t)g[REG_EFL];
	c->r.sel[S_ES] = es, c->r.sel[S_CS] = cs, c->r.sel[S_SS] = (uint16_t)((uint64_t)g[REG_CSGSFS] >> 48);
	c->r.sel[S_DS] = ds, c->r.sel[S_FS] = fs, c->r.sel[S_GS] = gs;
	c->ev_kind = stub_classify(sig, si, g, cs);
	c->ev_sig = (uint32_t)sig;
	c->ev_cs = cs;
	c->ev_ip = (uint64_t)g[REG_RIP];
	c->ev_trapno = (uint32_t)g[REG_TRAPNO];
	c->ev_err = (uint32_t)g[REG_ERR];
	c->ev_cr2 = (uint32_t)g[REG_CR2];
	c->ev_nr = 0;
	if (c->ev_kind == DIRECT_EV_SYSCALL32 && sig == SIGSYS) {
		c->ev_nr = (uint32_t)si->si_syscall;
		c->ev_ip = (uint64_t)(uintptr_t)si->si_call_addr;
	} else if (c->ev_kind == DIRECT_EV_SYSCALL32)
		c->ev_nr = DIRECT_NR_UNKNOWN;
	stub_fx_out(uc, c->fx);

	for (;;) {
		stub_hand_over(c);
		stub_apply_maps(c);
		if (c->cmd == DIRECT_RUN)
			break;
		if (c->cmd != DIRECT_MAP)
			stub_sys(SYS_exit_group, 0, 0, 0, 0, 0, 0);
		c->ev_kind = DIRECT_EV_DONE;
	}

	if (c->seg_gen != stub.seg_gen) {
		stub_write_ldt(c);
		stub.seg_gen = c->seg_gen;
	}
	for (unsigned i = 0; i < 8; i++)
		g[order[i]] = c->r.gpr[i];
	g[REG_RIP] = c->r.eip;
	g[REG_EFL] = c->r.eflags;
	g[REG_CSGSFS] = (greg_t)(stub.sel[S_CS] | (uint64_t)stub.sel[S_SS] << 48);
	uc->uc_flags |= UC_STRICT_RESTORE_SS;
	uc->uc_sigmask = stub.guest_mask;
	stub_fx_in(uc, c->fx);
	__asm__ volatile("mov %0, %%ds; mov %1, %%es; mov %2, %%fs; mov %3, %%gs"
			 :
			 : "r"(stub.sel[S_DS]), "r"(stub.sel[S_ES]), "r"(stub.sel[S_FS]), "r"(stub.sel[S_GS]));
}

/* The kernel's struct sigaction, for a restorer of the stub's own. */
struct stub_sigaction {
	void (*handler)(int, siginfo_t *, void *);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};

#define LD_W(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
#define IS(k, yes, no) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (yes), (no))

static int stub_filter(void)
{
	uint64_t site = (uint64_t)(uintptr_t)stub_sys_after;
	const uint32_t nr = offsetof(struct seccomp_data, nr), arch = offsetof(struct seccomp_data, arch),
		       ip = offsetof(struct seccomp_data, instruction_pointer),
		       a0_hi = offsetof(struct seccomp_data, args[0]) + 4,
		       a1_hi = offsetof(struct seccomp_data, args[1]) + 4;
	struct sock_filter f[] = {
		LD_W(arch),
		IS(AUDIT_ARCH_X86_64, 1, 0),
		RET(SECCOMP_RET_TRAP), /* a 32-bit entry: the guest's event */
		LD_W(ip + 4),
		IS((uint32_t)(site >> 32), 0, 12),
		LD_W(ip),
		IS((uint32_t)site, 0, 10),
		LD_W(nr),
		IS(SYS_futex, 9, 0),
		IS(SYS_rt_sigreturn, 8, 0),
		IS(SYS_modify_ldt, 7, 0),
		IS(SYS_exit_group, 6, 0),
		IS(SYS_mmap, 0, 4),
		LD_W(a0_hi), /* mmap below 8 GiB only (the handler checks 4) */
		IS(0, 0, 2),
		LD_W(a1_hi),
		IS(0, 1, 0),
		RET(SECCOMP_RET_KILL_PROCESS),
		RET(SECCOMP_RET_ALLOW),
	};
	/* the jumps above count to these two returns */
	_Static_assert(sizeof f / sizeof f[0] == 19, "jump offsets assume 19 instructions");
	struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

void direct_stub_main(int argc, char **argv)
{
	if (argc != 6 || strcmp(argv[1], DIRECT_STUB_ARG) != 0)
		return;
	int ctl_fd = atoi(argv[2]);
	stub.ram_fd = atoi(argv[3]);
	pid_t monitor = (pid_t)atol(argv[4]);

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != monitor)
		_exit(2);
	stub.low = (uint32_t)strtoul(argv[5], NULL, 10); /* gmem's low_hole */
	if (stub.low < 4096 || stub.low & 0xFFF)
		_exit(2);
	stub.ctl = mmap(NULL, sizeof *stub.ctl, PROT_READ | PROT_WRITE, MAP_SHARED, ctl_fd, 0);
	if (stub.ctl == MAP_FAILED)
		_exit(3);
	close(ctl_fd);
	/* Nothing of the host but the RAM memfd stays open. */
	if (stub.ram_fd > 0 && syscall(SYS_close_range, 0, stub.ram_fd - 1, 0) != 0)
		_exit(4);
	syscall(SYS_close_range, stub.ram_fd + 1, ~0u, 0);
	if (mmap((void *)(uintptr_t)stub.low, LOW_END - stub.low, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0) != (void *)(uintptr_t)stub.low)
		_exit(5);
	size_t alt = 64 * 1024;
	stack_t ss = {.ss_sp = mmap(NULL, alt, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
		      .ss_size = alt};
	if (ss.ss_sp == MAP_FAILED || sigaltstack(&ss, NULL) != 0)
		_exit(6);
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGUSR1};
	for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		struct stub_sigaction sa = {.handler = stub_on_signal,
					    .flags = SA_SIGINFO | SA_ONSTACK | SA_RESTORER,
					    .restorer = stub_restorer, .mask = ~0ull};
		if (syscall(SYS_rt_sigaction, sigs[i], &sa, NULL, 8) != 0)
			_exit(7);
	}
	sigfillset(&stub.guest_mask);
	for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigdelset(&stub.guest_mask, sigs[i]);
	sigprocmask(SIG_SETMASK, &stub.guest_mask, NULL);
	stub.ctl->cpuid_faults = syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) == 0;
	if (stub_filter() != 0)
		_exit(8);
	/* The first event (READY); the monitor's first RUN replaces this
	 * context with the guest's. */
	__asm__ volatile("jmp stub_ready_ud2");
	__builtin_unreachable();
}
