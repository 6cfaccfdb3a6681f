/* bt86 nanobenchmarks (after Adams & Agesen, ASPLOS 2006): each operation
 * timed with rdtsc inside the guest, printed as "bench NAME CYCLES_x100"
 * (cycles per operation times 100).  The same image runs under QEMU.
 *
 * Each figure is a steady state: its loop runs once untimed first (a tenth
 * of the count), so that neither system's translation of the loop or of
 * the handler is in it.  The page-fault figure warms up on the same 256
 * pages and unmaps them again before it is timed.
 *
 * The command line "quick" runs a tenth of the default count (the smoke
 * test, bench/run --quick), "long" ten times it (for profiling one
 * system with perf). */
#include "rt/rt.h"
#include "../../bench/compute_kernel.h" /* relative to tests/guests */

#define P 0x1u
#define W 0x2u
#define U 0x4u
#define USER_CS 0x3B
#define USER_DS 0x43
#define FAULT_BASE 0x40000000u
#define FAULT_PAGES 256

static u32 pd[1024] __attribute__((aligned(4096))), pd_alt[1024] __attribute__((aligned(4096)));
static u32 pts[4][1024] __attribute__((aligned(4096)));
static u32 pt_fault[1024] __attribute__((aligned(4096)));
static u32 tss[26];
static u8 kstack[16384] __attribute__((aligned(16)));
static u8 ustack[16384] __attribute__((aligned(16)));
static u8 buffer[KERNEL_BYTES];
static volatile u32 sink;
u32 iterations = 20000;
u32 alt_cr3, main_cr3;
/* Two ring-3 processes for the context switch: their saved interrupt
 * frames (EIP, CS, EFLAGS, ESP, SS) and page directories. */
u32 proc_frames[2][5], proc_cr3[2], current_proc;
static u8 ustack_b[16384] __attribute__((aligned(16)));
u64 switch_start;

static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static void report(const char *name, u64 cycles, u32 ops)
{
	printf_serial("bench %s %u\n", name, (u32)(cycles * 100 / ops));
}

/* Handlers kept minimal: the cost measured is the CPU's (or the VMM's). */
extern void sys_stub(void), switch_stub(void), de_stub(void), pf_stub(void), end_stub(void), unmap_stub(void);
extern void switch_loop(void), switch_resume(void);
__asm__(".text\n"
	"sys_stub: iret\n"
	/* int $0x82: save this process's frame, resume the other's in its
	 * address space.  Both run switch_loop with the same registers, so
	 * each int is one switch. */
	"switch_stub: pushl %eax\n pushl %ecx\n pushl %esi\n pushl %edi\n"
	"  movl current_proc, %eax\n imull $20, %eax, %edi\n addl $proc_frames, %edi\n"
	"  leal 16(%esp), %esi\n movl $5, %ecx\n cld\n rep movsl\n"
	"  xorl $1, current_proc\n movl current_proc, %eax\n"
	"  imull $20, %eax, %esi\n addl $proc_frames, %esi\n leal 16(%esp), %edi\n movl $5, %ecx\n rep movsl\n"
	"  movl proc_cr3(,%eax,4), %eax\n movl %eax, %cr3\n"
	"  popl %edi\n popl %esi\n popl %ecx\n popl %eax\n iret\n"
	"switch_loop: int $0x82\n"
	"switch_resume: decl %ecx\n jnz switch_loop\n ret\n"
	/* int $0x83: the fault pages unmapped again (and the TLB flushed) */
	"unmap_stub: pushl %eax\n pushl %ecx\n pushl %edi\n"
	"  movl $pt_fault, %edi\n movl $256, %ecx\n xorl %eax, %eax\n cld\n rep stosl\n"
	"  movl %cr3, %eax\n movl %eax, %cr3\n popl %edi\n popl %ecx\n popl %eax\n iret\n"
	"de_stub: addl $2, (%esp)\n iret\n"                      /* skip the 2-byte div */
	"pf_stub: pushl %eax\n pushl %ecx\n movl %cr2, %eax\n"
	"  movl %eax, %ecx\n shrl $12, %ecx\n andl $0x3FF, %ecx\n"
	"  movl %eax, %eax\n andl $0xFFFFF000, %eax\n subl $0x40000000, %eax\n addl $buffer, %eax\n"
	"  andl $0xFFFFF000, %eax\n orl $7, %eax\n movl %eax, pt_fault(,%ecx,4)\n"
	"  popl %ecx\n popl %eax\n addl $4, %esp\n iret\n");

/* Each bench: n iterations of its loop, returning the cycles they took. */
static __attribute__((noinline)) u64 bench_cli_sti(u32 n)
{
	u64 t = rdtsc();
	for (u32 i = 0; i < n; i++)
		__asm__ volatile("cli; sti");
	return rdtsc() - t;
}

static __attribute__((noinline)) u64 bench_pushf_popf(u32 n)
{
	u64 t = rdtsc();
	for (u32 i = 0; i < n; i++)
		__asm__ volatile("pushfl; popfl" : : : "memory");
	return rdtsc() - t;
}

static __attribute__((noinline)) u64 bench_call_ret(u32 n)
{
	u64 t = rdtsc();
	for (u32 i = 0; i < n; i++)
		__asm__ volatile("call 1f; jmp 2f; 1: ret; 2:" : : : "memory");
	return rdtsc() - t;
}

static __attribute__((noinline)) u64 bench_indirect_jump(u32 n)
{
	static void *const table[4] = {&&t0, &&t1, &&t2, &&t3};
	u32 k = 0;
	u64 t = rdtsc();
	for (u32 i = 0; i < n; i++) {
		goto *table[i & 3];
	t0: k += 1; continue;
	t1: k += 2; continue;
	t2: k += 3; continue;
	t3: k += 4; continue;
	}
	sink = k;
	return rdtsc() - t;
}

static __attribute__((noinline)) u64 bench_port_out(u32 n)
{
	u64 t = rdtsc();
	for (u32 i = 0; i < n; i++)
		outb(0x80, (u8)i);
	return rdtsc() - t;
}

static __attribute__((noinline)) u64 bench_port_in(u32 n)
{
	u64 t = rdtsc();
	for (u32 i = 0; i < n; i++)
		sink = inb(0x80);
	return rdtsc() - t;
}

static __attribute__((noinline)) u64 bench_divide_error(u32 n)
{
	u64 t = rdtsc();
	for (u32 i = 0; i < n; i++)
		__asm__ volatile("divl %%ecx" : : "a"(1), "d"(0), "c"(0));
	return rdtsc() - t;
}

static __attribute__((noinline)) u64 bench_pte_invlpg(u32 n)
{
	volatile u32 *page = (volatile u32 *)FAULT_BASE;
	u64 t = rdtsc();
	for (u32 i = 0; i < n; i++) {
		pt_fault[0] = ((u32)buffer + (i & 1) * 4096) | P | W | U;
		__asm__ volatile("invlpg (%0)" : : "r"(page) : "memory");
		sink = page[0];
	}
	return rdtsc() - t;
}

static __attribute__((noinline)) u64 bench_compute(u32 rounds)
{
	u64 t = rdtsc();
	for (u32 r = 0; r < rounds; r++)
		sink = crc_kernel(buffer, KERNEL_BYTES);
	return rdtsc() - t;
}

/* Warms the loop up on a tenth of n, then reports n iterations of it
 * as ops_per_iteration operations each. */
static void measure(const char *name, u64 (*bench)(u32), u32 n, u32 ops_per_iteration)
{
	bench(n / 10 ? n / 10 : 1);
	report(name, bench(n), n * ops_per_iteration);
}

static void ring0_benches(void)
{
	u32 n = iterations;

	measure("cli_sti", bench_cli_sti, n, 2);
	__asm__ volatile("cli");
	measure("pushf_popf", bench_pushf_popf, n, 2);
	measure("call_ret", bench_call_ret, n, 1);
	measure("indirect_jump", bench_indirect_jump, n, 1);
	measure("port_out", bench_port_out, n / 10, 1);
	measure("port_in", bench_port_in, n / 10, 1);
	measure("divide_error", bench_divide_error, n / 10, 1);
	pt_fault[0] = (u32)buffer | P | W | U;
	measure("pte_invlpg", bench_pte_invlpg, n / 10, 1);
	pt_fault[0] = 0;
	__asm__ volatile("invlpg (%0)" : : "r"(FAULT_BASE) : "memory");
	measure("compute_ring0", bench_compute, 8, KERNEL_BYTES);
}

static u64 results[4];

static __attribute__((noinline)) u64 bench_syscall(u32 n)
{
	u64 t = rdtsc();
	for (u32 i = 0; i < n; i++)
		__asm__ volatile("int $0x80");
	return rdtsc() - t;
}

static __attribute__((noinline)) u64 bench_user_page_fault(u32 n)
{
	u64 t = rdtsc();
	for (u32 i = 0; i < n; i++)
		sink = *(volatile u32 *)(FAULT_BASE + i * 4096);
	return rdtsc() - t;
}

static __attribute__((noinline)) u64 bench_context_switch(u32 n)
{
	switch_start = rdtsc();
	__asm__ volatile("call switch_loop" : : "c"(n) : "memory", "cc");
	return rdtsc() - switch_start; /* ends in either process */
}

/* Ring 3: each loop warmed up first, as measure() does; int $0x83 unmaps
 * the fault pages again after the page-fault warm-up. */
static void user_benches(void)
{
	u32 n = iterations;
	bench_syscall(n / 100);
	results[0] = bench_syscall(n / 10);
	bench_user_page_fault(FAULT_PAGES);
	__asm__ volatile("int $0x83" : : : "memory");
	results[1] = bench_user_page_fault(FAULT_PAGES);
	bench_context_switch(2 * (n / 200 + 1)); /* even: it ends in this process */
	results[2] = bench_context_switch(n / 10);
	bench_compute(1);
	results[3] = bench_compute(8);
	__asm__ volatile("int $0x81");
}

static void after_user(void)
{
	u32 n = iterations;
	report("syscall", results[0], n / 10);
	report("user_page_fault", results[1], FAULT_PAGES);
	report("context_switch", results[2], n / 10);
	report("compute_ring3", results[3], 8 * KERNEL_BYTES);
	printf_serial("bench done\n");
	done();
}

extern void end_entry(void);
__asm__(".text\n end_stub: movl $kstack+16384, %esp\n jmp end_entry\n");
void end_entry(void);
void end_entry(void)
{
	after_user();
}

void test_main(u32 magic, u32 mbi)
{
	const char *cmd = (const char *)((u32 *)mbi)[4];
	(void)magic;
	for (const char *p = cmd; *p; p++)
		if (p[0] == 'q' && p[1] == 'u' && p[2] == 'i' && p[3] == 'c' && p[4] == 'k')
			iterations = 2000;
		else if (p[0] == 'l' && p[1] == 'o' && p[2] == 'n' && p[3] == 'g')
			iterations = 200000;
	crc_init();
	for (u32 i = 0; i < KERNEL_BYTES; i++)
		buffer[i] = (u8)(i * 7 + 3);
	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	idt_set(0x80, sys_stub, 3);
	idt_set(0x82, switch_stub, 3);
	idt_set(0x81, end_stub, 3);
	idt_set(0x83, unmap_stub, 3);
	idt_set(0, de_stub, 0);
	idt_set(14, pf_stub, 0);
	for (u32 i = 0; i < 4 * 1024; i++)
		pts[i / 1024][i % 1024] = (i << 12) | P | W | U;
	for (u32 i = 0; i < 4; i++)
		pd[i] = pd_alt[i] = (u32)pts[i] | P | W | U;
	pd[FAULT_BASE >> 22] = pd_alt[FAULT_BASE >> 22] = (u32)pt_fault | P | W | U;
	main_cr3 = proc_cr3[0] = (u32)pd;
	alt_cr3 = proc_cr3[1] = (u32)pd_alt;
	/* Process 1 starts as if it had just made the switch call itself. */
	proc_frames[1][0] = (u32)switch_resume;
	proc_frames[1][1] = USER_CS;
	proc_frames[1][2] = 0x202;
	proc_frames[1][3] = (u32)ustack_b + sizeof ustack_b - 16;
	proc_frames[1][4] = USER_DS;
	__asm__ volatile("movl %0, %%cr3\n movl %%cr0, %%eax; orl $0x80000000, %%eax; movl %%eax, %%cr0\n"
			 "jmp 1f\n1:" : : "r"(pd) : "eax", "memory");
	ring0_benches();
	for (u32 i = 0; i < FAULT_PAGES; i++)
		pt_fault[i] = 0;
	__asm__ volatile("movl %%cr3, %%eax; movl %%eax, %%cr3" : : : "eax", "memory");
	__asm__ volatile("pushl %0\n pushl %1\n pushl $0x202\n pushl %2\n pushl %3\n"
			 "movw %w0, %%ax\n movw %%ax, %%ds\n movw %%ax, %%es\n"
			 "iret" : : "r"(USER_DS), "r"((u32)ustack + sizeof ustack), "r"(USER_CS),
			 "r"((u32)user_benches) : "eax", "memory");
}
