/* UMIP and RDTSCP (run against QEMU with -cpu qemu32,+umip,+rdtscp): CPUID
 * names both; IA32_TSC_AUX reaches ECX through rdtscp, whose EDX:EAX lies
 * between two rdtsc reads; with CR4.UMIP, SGDT, SIDT, SLDT, SMSW and STR
 * at CPL 3 raise #GP(0), and without it they run there; CR4.TSD keeps
 * rdtscp from ring 3 too.  Paging off. */
#include "rt/rt.h"


static u32 tss[26];
static u8 kstack[8192] __attribute__((aligned(16)));
static u8 ustack[8192] __attribute__((aligned(16)));
static volatile u32 phase;

static void set_cr4_bits(u32 set, u32 clear)
{
	__asm__ volatile("movl %%cr4, %%eax; orl %0, %%eax; andl %1, %%eax; movl %%eax, %%cr4"
			 : : "r"(set), "r"(~clear) : "eax");
}

/* 3: next phase (UMIP and TSD off, then the end). */
static void sys(struct trap_frame *f)
{
	if (user_report(f))
		return;
	if (f->eax == 3) {
		if (phase++ == 0) {
			set_cr4_bits(0, 0x804);
			return;
		}
		done();
	}
}

#define UMIP_FAULTS(insn, desc)                                                          \
	do {                                                                              \
		EXPECT_TRAP(at, insn, "a"(buf));                                          \
		UOK(last_trap.vector == 13 && last_trap.error == 0 && last_trap.eip == at, desc); \
	} while (0)

static void user_main(void)
{
	static u8 buf[8];
	u32 at;
	UMIP_FAULTS("sgdt (%%eax)", "sgdt at CPL 3 with UMIP: #GP(0)");
	UMIP_FAULTS("sidt (%%eax)", "sidt: #GP(0)");
	UMIP_FAULTS("sldt (%%eax)", "sldt: #GP(0)");
	UMIP_FAULTS("str (%%eax)", "str: #GP(0)");
	UMIP_FAULTS("smsw (%%eax)", "smsw: #GP(0)");
	EXPECT_TRAP(at, "rdtscp", "a"(0));
	UOK(last_trap.vector == 13 && last_trap.eip == at, "rdtscp at CPL 3 with CR4.TSD: #GP(0)");
	__asm__ volatile("int $0x80" : : "a"(3) : "memory");

	u16 limit = 0, tr = 0;
	__asm__ volatile("sgdt (%0)" : : "r"(buf) : "memory");
	limit = (u16)(buf[0] | buf[1] << 8);
	__asm__ volatile("str %0" : "=m"(tr));
	UIS(limit, sizeof gdt - 1, "without UMIP sgdt at CPL 3 gives the GDT's limit");
	UIS(tr, 0x28, "and str the task register");
	u32 lo, hi, aux;
	__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
	UIS(aux, 0xBEEF, "rdtscp at CPL 3 without TSD gives TSC_AUX");
	__asm__ volatile("int $0x80" : : "a"(3) : "memory");
}

void test_main(u32 magic, u32 mbi)
{
	u32 r[4];
	(void)magic;
	(void)mbi;
	plan(13);

	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(7), "c"(0));
	ok(r[2] & (1u << 2), "CPUID.7.0:ECX reports UMIP");
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(0x80000001u), "c"(0));
	ok(r[3] & (1u << 27), "CPUID.80000001H:EDX reports RDTSCP");

	__asm__ volatile("wrmsr" : : "c"(0xC0000103u), "a"(0xBEEF), "d"(0));
	u32 lo0, hi0, lo1, hi1, lo, hi, aux;
	__asm__ volatile("rdtsc" : "=a"(lo0), "=d"(hi0));
	__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
	__asm__ volatile("rdtsc" : "=a"(lo1), "=d"(hi1));
	u64 t0 = (u64)hi0 << 32 | lo0, t = (u64)hi << 32 | lo, t1 = (u64)hi1 << 32 | lo1;
	is_u32(aux, 0xBEEF, "rdtscp gives IA32_TSC_AUX in ECX");
	ok(t0 <= t && t <= t1, "and the TSC between two rdtsc");

	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	syscall_hook = sys;
	set_cr4_bits(0x804, 0); /* UMIP, TSD */
	__asm__ volatile("pushl %0\n pushl %1\n pushl $0x2\n pushl %2\n pushl %3\n"
			 "movw %w0, %%ax\n movw %%ax, %%ds\n movw %%ax, %%es\n"
			 "iret" : : "r"(USER_DS), "r"((u32)ustack + sizeof ustack), "r"(USER_CS),
			 "r"((u32)user_main) : "eax", "memory");
}
