/* A small multitasking kernel: three ring-3 processes with their own page
 * directories, system calls through int $0x80 and int $0x81, round-robin
 * preemption by the timer, demand paging, copy-on-write, a stack guard
 * page, and processes killed for touching kernel memory or running cli.
 * Processes log into per-process buffers printed in pid order at the end,
 * so the output does not depend on where the timer happened to preempt. */
#include "rt/rt.h"

#define P 0x1u
#define W 0x2u
#define U 0x4u
#define COW 0x200u              /* a software bit: copy on write */
#define UBASE 0x40000000u
#define GUARD (UBASE + 0xF000)
#define STACK_TOP (UBASE + 0x12000)
#define HEAP (UBASE + 0x100000)
#define SHARED (UBASE + 0x200000)
#define NPROC 3

struct proc {
	struct trap_frame frame;
	u32 *pd, *pt;
	int state;               /* 0 runnable, 1 exited, 2 killed */
	u32 exit_code, demand_faults, cow_faults;
	char log[512];           /* comment lines, printed before the reports */
	u32 log_len;
	struct {
		u32 cond;
		const char *desc;
	} reports[8];
	u32 n_reports;
};

static struct proc procs[NPROC];
static int current;
static u32 pds[NPROC][1024] __attribute__((aligned(4096)));
static u32 pts_user[NPROC][1024] __attribute__((aligned(4096)));
static u32 pts_kernel[4][1024] __attribute__((aligned(4096)));
static u8 frame_pool[48][4096] __attribute__((aligned(4096)));
static u32 frames_used;
static volatile u32 kernel_private[1024] __attribute__((aligned(4096)));
static u32 tss[26];
static u8 kstack[16384] __attribute__((aligned(16)));
volatile u32 ticks;
static u32 switches;

static u32 alloc_frame(void)
{
	u8 *f = frame_pool[frames_used++];
	for (int i = 0; i < 4096; i++)
		f[i] = 0;
	return (u32)f;
}

static void log_str(struct proc *p, const char *s)
{
	while (*s && p->log_len < sizeof p->log - 1)
		p->log[p->log_len++] = *s++;
}

static void switch_to(struct trap_frame *f, int next)
{
	procs[current].frame = *f;
	current = next;
	*f = procs[next].frame;
	__asm__ volatile("movl %0, %%cr3" : : "r"(procs[next].pd) : "memory");
	switches++;
}

static void finish(void);

/* Picks the next runnable process after the current one, or ends the run. */
static void schedule(struct trap_frame *f)
{
	for (int i = 1; i <= NPROC; i++) {
		int n = (current + i) % NPROC;
		if (procs[n].state == 0) {
			if (n != current || procs[current].state != 0)
				switch_to(f, n);
			return;
		}
	}
	finish();
}

static void kill(struct trap_frame *f, const char *why)
{
	struct proc *p = &procs[current];
	log_str(p, "# killed: ");
	log_str(p, why);
	log_str(p, "\n");
	p->state = 2;
	schedule(f);
}

static void on_tick(struct trap_frame *f)
{
	ticks++;
	outb(0x20, 0x20);
	if ((f->cs & 3) == 3)
		schedule(f); /* preempt the user process */
}

/* int $0x80: eax 1 log(ebx = string), 2 yield, 3 exit(ebx), 4 getpid.
 * int $0x81: report(ebx = condition, ecx = description). */
static void on_syscall(struct trap_frame *f)
{
	struct proc *p = &procs[current];
	if (f->vector == 129) {
		if (p->n_reports < 8) {
			p->reports[p->n_reports].cond = f->ebx;
			p->reports[p->n_reports++].desc = (const char *)f->ecx;
		}
		return;
	}
	switch (f->eax) {
	case 1:
		log_str(p, (const char *)f->ebx);
		break;
	case 2:
		schedule(f);
		break;
	case 3:
		p->exit_code = f->ebx;
		p->state = 1;
		schedule(f);
		break;
	case 4:
		f->eax = (u32)current;
		break;
	}
}

static int on_fault(struct trap_frame *f)
{
	if ((f->cs & 3) != 3)
		return 0; /* a kernel fault: the runtime reports it */
	struct proc *p = &procs[current];
	if (f->vector == 14) {
		u32 cr2;
		__asm__ volatile("movl %%cr2, %0" : "=r"(cr2));
		u32 *e = &p->pt[(cr2 >> 12) & 0x3FF];
		int user_region = (cr2 >> 22) == (UBASE >> 22);
		if (user_region && cr2 >= HEAP && cr2 < HEAP + 0x10000 && !(*e & P)) {
			*e = alloc_frame() | P | W | U; /* demand paging */
			p->demand_faults++;
			return 1;
		}
		if (user_region && (f->error & (P | W)) == (P | W) && (*e & COW)) {
			u8 *old = (u8 *)(*e & ~0xFFFu), *copy = (u8 *)alloc_frame();
			for (int i = 0; i < 4096; i++)
				copy[i] = old[i];
			*e = (u32)copy | P | W | U;
			__asm__ volatile("invlpg (%0)" : : "r"(cr2) : "memory");
			p->cow_faults++;
			return 1;
		}
		kill(f, cr2 >= GUARD && cr2 < GUARD + 0x1000 ? "stack guard page" : "page fault");
		return 1;
	}
	kill(f, f->vector == 13 ? "general protection" : "exception");
	return 1;
}

#define SYS(n, a) __asm__ volatile("int $0x80" : : "a"(n), "b"(a) : "memory")
#define REPORT(cond, desc) __asm__ volatile("int $0x81" : : "b"((u32)(cond)), "c"(desc) : "memory")

/* Process 0: demand paging, copy-on-write, preemption without system calls. */
static void prog0(void)
{
	volatile u32 *heap = (volatile u32 *)HEAP;
	heap[0] = 7;
	heap[1024] = 8;
	REPORT(heap[0] + heap[1024] == 15, "demand-paged heap pages hold what was written");
	volatile u32 *shared = (volatile u32 *)SHARED;
	REPORT(shared[0] == 0x1111, "the shared page starts with the parent's contents");
	shared[0] = 0xAAAA;
	REPORT(shared[0] == 0xAAAA, "a write to a copy-on-write page gets a private copy");
	u32 t = ticks;
	u32 spins = 0;
	while (ticks - t < 5)
		spins++;
	REPORT(ticks - t >= 5, "a loop with no system calls is preempted and resumed");
	SYS(3, 0);
}

/* Process 1: sees its own copy of the shared page, then touches kernel memory. */
static void prog1(void)
{
	SYS(2, 0); /* let process 0 write first */
	volatile u32 *shared = (volatile u32 *)SHARED;
	REPORT(shared[0] == 0x1111, "another process still sees the original page");
	u32 pid;
	__asm__ volatile("int $0x80" : "=a"(pid) : "a"(4));
	REPORT(pid == 1, "getpid");
	SYS(1, (u32)"# reading kernel memory\n");
	(void)kernel_private[0];
	SYS(1, (u32)"# not reached\n");
	SYS(3, 1);
}

/* Process 2: grows its stack into the guard page. */
static u32 __attribute__((noinline)) recurse(u32 depth)
{
	volatile u8 pad[512];
	pad[0] = (u8)depth;
	if (depth > 100000)
		return 0; /* never: the guard page is 16 frames down */
	return recurse(depth + 1) + pad[0]; /* not a tail call: the stack grows */
}

static void prog2(void)
{
	SYS(1, (u32)"# recursing into the guard page\n");
	SYS(3, recurse(0));
}

static void setup_proc(int i, void (*entry)(void))
{
	struct proc *p = &procs[i];
	p->pd = pds[i];
	p->pt = pts_user[i];
	for (int k = 0; k < 4; k++)
		p->pd[k] = (u32)pts_kernel[k] | P | W | U;
	p->pd[UBASE >> 22] = (u32)p->pt | P | W | U;
	p->pt[(STACK_TOP - 0x2000 - UBASE) >> 12] = alloc_frame() | P | W | U;
	p->pt[(STACK_TOP - 0x1000 - UBASE) >> 12] = alloc_frame() | P | W | U;
	p->frame.eip = (u32)entry;
	p->frame.cs = USER_CS;
	p->frame.eflags = 0x202;
	p->frame.user_esp = STACK_TOP;
	p->frame.user_ss = USER_DS;
}

static void finish(void)
{
	for (int i = 0; i < NPROC; i++) {
		struct proc *p = &procs[i];
		printf_serial("# process %d: %s", i, p->state == 1 ? "exited with " : "killed");
		if (p->state == 1)
			printf_serial("%u", p->exit_code);
		printf_serial(", %u demand faults, %u copy-on-write faults\n", p->demand_faults, p->cow_faults);
		p->log[p->log_len] = 0;
		puts_serial(p->log);
		for (u32 k = 0; k < p->n_reports; k++)
			ok(p->reports[k].cond, p->reports[k].desc);
	}
	ok(procs[0].state == 1 && procs[0].exit_code == 0, "process 0 exits normally");
	ok(procs[1].state == 2, "process 1 is killed for reading kernel memory");
	ok(procs[2].state == 2, "process 2 is killed at its stack guard page");
	ok(switches > NPROC, "the scheduler switched address spaces");
	done();
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(11);
	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	idt_hooks();
	syscall_hook = on_syscall;
	irq_hook = on_tick;
	fault_hook = on_fault;

	for (u32 i = 0; i < 4 * 1024; i++)
		pts_kernel[i / 1024][i % 1024] = (i << 12) | P | W | U;
	pts_kernel[0][(u32)kernel_private >> 12] &= ~U;
	setup_proc(0, prog0);
	setup_proc(1, prog1);
	setup_proc(2, prog2);
	/* The shared page: one frame, read-only and copy-on-write in 0 and 1. */
	u32 shared = alloc_frame();
	*(u32 *)shared = 0x1111;
	procs[0].pt[(SHARED - UBASE) >> 12] = shared | P | U | COW;
	procs[1].pt[(SHARED - UBASE) >> 12] = shared | P | U | COW;

	outb(0x20, 0x11); outb(0xA0, 0x11);
	outb(0x21, 0x20); outb(0xA1, 0x28);
	outb(0x21, 0x04); outb(0xA1, 0x02);
	outb(0x21, 0x01); outb(0xA1, 0x01);
	outb(0x21, 0xFE); outb(0xA1, 0xFF);
	outb(0x43, 0x34);
	outb(0x40, 11932 & 0xFF);
	outb(0x40, 11932 >> 8);

	__asm__ volatile("movl %0, %%cr3\n"
			 "movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n"
			 "jmp 1f\n1:" : : "r"(procs[0].pd) : "eax", "memory");
	ok(*(u32 *)shared == 0x1111, "paging on; the shared frame is set up");
	current = 0;
	struct trap_frame *f = &procs[0].frame;
	__asm__ volatile("pushl %0\n pushl %1\n pushl %2\n pushl %3\n pushl %4\n"
			 "movw %w0, %%ax\n movw %%ax, %%ds\n movw %%ax, %%es\n"
			 "iret" : : "r"(f->user_ss), "r"(f->user_esp), "r"(f->eflags), "r"(f->cs), "r"(f->eip)
			 : "eax", "memory");
}
