/* SYSENTER and SYSEXIT with their MSRs (SDM vol. 2B), as Linux's i386
 * entry uses them: CPUID's SEP bit, the MSRs' widths, #GP(0) without a
 * SYSENTER_CS or from ring 3, the flat CS and SS each instruction makes
 * from SYSENTER_CS, the stack from SYSENTER_ESP, IF cleared on entry, and
 * a thousand round trips from ring 3 (paging off). */
#include "rt/rt.h"

#define KERNEL_CS 0x50 /* SYSENTER_CS; 0x58 its SS, 0x63 and 0x6B ring 3's */
#define SYSEXIT_DS 0x6B

static u32 tss[26];
static u8 kstack[8192] __attribute__((aligned(16)));
static u8 ustack[8192] __attribute__((aligned(16)));
static volatile u32 entry_esp, entry_flags, entry_cs, entry_ss, entries, bad_entries;

static u32 kernel_top(void)
{
	return (u32)kstack + sizeof kstack;
}

/* Called from sysenter_entry with what the instruction left. */
void sysenter_check(void)
{
	entries++;
	if (entry_cs != KERNEL_CS || entry_ss != KERNEL_CS + 8 || entry_esp != kernel_top() ||
	    (entry_flags & 0x30200) != 0)
		bad_entries++;
}

void sysenter_entry(void);
__asm__(".text\n"
	".globl sysenter_entry\n"
	"sysenter_entry:\n"
	"movl %esp, entry_esp\n"
	"pushfl\n popl entry_flags\n"
	"movl $0, entry_cs\n movw %cs, entry_cs\n"
	"movl $0, entry_ss\n movw %ss, entry_ss\n"
	"pushl %eax\n pushl %ecx\n pushl %edx\n"
	"call sysenter_check\n"
	"popl %edx\n popl %ecx\n popl %eax\n"
	"sti\n"
	"sysexit\n");

static void wrmsr(u32 msr, u32 lo, u32 hi)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"(lo), "d"(hi));
}

static u64 rdmsr(u32 msr)
{
	u32 lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (u64)hi << 32 | lo;
}

static void sys(struct trap_frame *f)
{
	if (user_report(f))
		return;
	if (f->eax == 3) {
		printf_serial("entries %u, bad %u\n", entries, bad_entries);
		ok(entries == 1000 && bad_entries == 0,
		   "each sysenter: CS = SYSENTER_CS, SS after it, ESP = SYSENTER_ESP, IF VM RF clear");
		ok((f->cs & 3) == 3, "the program ends by a system call from ring 3");
		done();
	}
}

static void user_main(void)
{
	u32 cs, ss, fl, at;
	__asm__ volatile("movl $0, %0\n movw %%cs, %w0\n movl $0, %1\n movw %%ss, %w1" : "=&r"(cs), "=&r"(ss));
	UIS(cs, KERNEL_CS + 16 + 3, "sysexit enters ring 3 with CS = SYSENTER_CS + 16, RPL 3");
	UIS(ss, KERNEL_CS + 24 + 3, "and SS = SYSENTER_CS + 24, RPL 3");
	for (int i = 0; i < 1000; i++)
		__asm__ volatile("movl %%esp, %%ecx\n movl $1f, %%edx\n sysenter\n1:" : : : "ecx", "edx", "memory", "cc");
	__asm__ volatile("pushfl; popl %0" : "=r"(fl));
	UOK(fl & 0x200, "IF is set again after the kernel's sti; sysexit");
	EXPECT_TRAP(at, "sysexit");
	UOK(last_trap.vector == 13 && last_trap.error == 0 && last_trap.eip == at, "sysexit at CPL 3 raises #GP(0)");
	__asm__ volatile("int $0x80" : : "a"(3) : "memory");
}

void test_main(u32 magic, u32 mbi)
{
	u32 regs[4], at;
	(void)magic;
	(void)mbi;
	plan(12);

	__asm__ volatile("cpuid" : "=a"(regs[0]), "=b"(regs[1]), "=c"(regs[2]), "=d"(regs[3]) : "a"(1), "c"(0));
	ok(regs[3] & (1u << 11), "CPUID.1:EDX reports SEP");

	wrmsr(0x174, 0xFFFF0053, 0x1234);
	wrmsr(0x175, 0x89ABCDEF, 1);
	wrmsr(0x176, 0x01234567, 0xFF);
	u64 cs = rdmsr(0x174), esp = rdmsr(0x175), eip = rdmsr(0x176);
	printf_serial("SYSENTER_CS %x:%x ESP %x:%x EIP %x:%x\n", (u32)(cs >> 32), (u32)cs, (u32)(esp >> 32), (u32)esp,
		      (u32)(eip >> 32), (u32)eip);
	ok(cs == 0x0053, "SYSENTER_CS keeps 16 bits");
	ok((u32)esp == 0x89ABCDEF && (u32)eip == 0x01234567, "SYSENTER_ESP and _EIP read back");

	wrmsr(0x174, 0, 0);
	EXPECT_TRAP(at, "sysenter");
	ok(last_trap.vector == 13 && last_trap.error == 0 && last_trap.eip == at, "sysenter with a null SYSENTER_CS: #GP(0)");
	EXPECT_TRAP(at, "sysexit");
	ok(last_trap.vector == 13 && last_trap.error == 0 && last_trap.eip == at, "so does sysexit");

	set_descriptor(10, 0, 0xFFFFF, 0x9A, 0xC); /* 0x50: kernel code */
	set_descriptor(11, 0, 0xFFFFF, 0x92, 0xC); /* 0x58: kernel data */
	set_descriptor(12, 0, 0xFFFFF, 0xFA, 0xC); /* 0x60: user code */
	set_descriptor(13, 0, 0xFFFFF, 0xF2, 0xC); /* 0x68: user data */
	user_mode_setup(tss, sizeof tss, kernel_top());
	syscall_hook = sys;
	pic_pit_100hz(0xFF); /* every line masked: IF = 1 at ring 3 takes nothing */
	wrmsr(0x174, KERNEL_CS, 0);
	wrmsr(0x175, kernel_top(), 0);
	wrmsr(0x176, (u32)sysenter_entry, 0);
	is_u32((u32)rdmsr(0x176), (u32)sysenter_entry, "SYSENTER_EIP holds the entry: into ring 3 by sysexit");

	__asm__ volatile("movw %w0, %%ds\n movw %w0, %%es\n sti\n sysexit"
			 : : "r"(SYSEXIT_DS), "c"((u32)ustack + sizeof ustack), "d"((u32)user_main) : "memory");
}
