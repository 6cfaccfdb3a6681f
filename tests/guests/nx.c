/* Execute disable (run against QEMU with -cpu qemu32,+nx): CPUID reports
 * NX, IA32_EFER holds NXE, and under PAE paging with NXE bit 63 of a
 * directory or table entry (XD) keeps instructions from being fetched from
 * the pages it covers while data reads and writes go on: #PF with P and
 * I/D at the page, I/D on a fetch from a page not present, U from ring 3.
 * Code that ran before the entry gained XD faults after invlpg or a CR3
 * load, a block running from an executable page onto an XD one stops at
 * the boundary, an instruction straddling it faults whole, and without
 * NXE bit 63 is reserved again. */
#include "rt/rt.h"

#define P 0x1ull
#define W 0x2ull
#define U 0x4ull
#define PS 0x80ull
#define XD (1ull << 63)
#define EFER 0xC0000080u
#define NXE 0x800u

#define TEST_BASE 0x40000000u /* pt's pages */
#define BIG_BASE 0x40200000u  /* a 2 MiB XD page onto physical 0x600000 */
#define XD_TABLE 0x40400000u  /* pt2's pages, under a directory entry with XD */

static u64 pdpt[4] __attribute__((aligned(32)));
static u64 pd_low[512] __attribute__((aligned(4096)));
static u64 pd_test[512] __attribute__((aligned(4096)));
static u64 pt[512] __attribute__((aligned(4096)));
static u64 pt2[512] __attribute__((aligned(4096)));
static u8 code_a[4096] __attribute__((aligned(4096)));
static u8 code_c[4096] __attribute__((aligned(4096)));
static u8 code_d[4096] __attribute__((aligned(4096)));
static u32 tss[26];
static u8 kstack[8192] __attribute__((aligned(16)));
static u8 ustack[8192] __attribute__((aligned(16)));

static const u8 ret42[] = {0xB8, 0x2A, 0, 0, 0, 0xC3}; /* mov $42, %eax; ret */

static u32 call_at(u32 lin)
{
	u32 v;
	__asm__ volatile("call *%1" : "=a"(v) : "r"(lin) : "memory", "ecx", "edx");
	return v;
}

static u64 rdmsr(u32 msr)
{
	u32 lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((u64)hi << 32) | lo;
}

static void wrmsr(u32 msr, u64 v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
}

static void invlpg(u32 lin)
{
	__asm__ volatile("invlpg (%0)" : : "r"(lin) : "memory");
}

static void show_fault(const char *what)
{
	printf_serial("%s: vector %u error %x cr2 %x eip %x\n", what, last_trap.vector, last_trap.error, read_cr2(),
		      last_trap.eip);
}

/* A fetch fault at `lin` with error code `err`, reported at `eip`. */
static int fetch_fault(u32 lin, u32 err, u32 eip)
{
	return last_trap.vector == 14 && last_trap.error == err && read_cr2() == lin && last_trap.eip == eip;
}

static void user_main(void)
{
	u32 at;
	UIS(call_at(TEST_BASE), 42, "ring 3 runs a user page without XD");
	EXPECT_TRAP(at, "jmp *%%eax", "a"(TEST_BASE + 0x1000));
	UOK(last_trap.vector == 14 && last_trap.error == 0x15, "ring 3 fetching an XD page: #PF(P | U | I/D)");
	UIS(*(volatile u32 *)(TEST_BASE + 0x1000), 0x00002AB8, "and ring 3 reads it");
	__asm__ volatile("int $0x80" : : "a"(3));
}

static void after_user(void)
{
	u32 at;
	/* NXE off: bit 63 is a reserved bit again.  The SDM's error code
	 * is P | RSVD (9); QEMU 7.2 gives RSVD alone (docs/architecture.md). */
	wrmsr(EFER, 0);
	EXPECT_TRAP(at, "movl 0x40001000, %%eax", "a"(0));
	printf_serial("XD without NXE: vector %u error without P %x\n", last_trap.vector, last_trap.error & ~1u);
	ok(last_trap.vector == 14 && (last_trap.error & ~1u) == 8, "NXE cleared: XD is reserved, #PF with RSVD");
	is_u32(call_at(TEST_BASE), 42, "and an entry without it still runs");
	done();
}

static void sys(struct trap_frame *f)
{
	if (user_report(f))
		return;
	if (f->eax == 3)
		after_user();
}

void test_main(u32 magic, u32 mbi)
{
	u32 at, r[4];
	(void)magic;
	(void)mbi;
	plan(22);

	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(0x80000001u), "c"(0));
	ok(r[3] & (1u << 20), "CPUID.80000001H:EDX reports NX");
	is_u32((u32)rdmsr(EFER), 0, "IA32_EFER starts clear");
	wrmsr(EFER, NXE);
	is_u32((u32)rdmsr(EFER), NXE, "and holds NXE");

	for (unsigned i = 0; i < sizeof ret42; i++) {
		code_a[i] = ret42[i];
		((volatile u8 *)0x600000)[i] = ret42[i];
	}
	for (u32 i = 0; i < 512; i++)
		pd_low[i] = ((u64)i << 21) | P | W | U | PS;
	pdpt[0] = (u32)pd_low | P;
	pdpt[1] = (u32)pd_test | P;
	pd_test[0] = (u32)pt | P | W | U;
	pd_test[1] = 0x600000u | P | W | U | PS | XD;
	pd_test[2] = (u32)pt2 | P | W | U | XD;
	pt[0] = (u32)code_a | P | W | U;
	pt[1] = (u32)code_a | P | W | U | XD;
	pt[3] = (u32)code_c | P | W | U;
	pt[4] = (u32)code_d | P | W | U | XD;
	pt2[0] = (u32)code_a | P | W | U;
	__asm__ volatile("movl %%cr4, %%eax; orl $0x20, %%eax; movl %%eax, %%cr4\n"
			 "movl %0, %%cr3\n"
			 "movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n"
			 "jmp 1f\n1:" : : "r"(pdpt) : "eax", "memory");

	is_u32(call_at(TEST_BASE), 42, "PAE with NXE: a page without XD runs");
	is_u32(*(volatile u32 *)(TEST_BASE + 0x1000), 0x00002AB8, "an XD page reads");
	EXPECT_TRAP(at, "jmp *%%eax", "a"(TEST_BASE + 0x1000));
	show_fault("XD fetch");
	ok(fetch_fault(TEST_BASE + 0x1000, 0x11, TEST_BASE + 0x1000), "fetching it: #PF(P | I/D) at the page");
	EXPECT_TRAP(at, "jmp *%%eax", "a"(TEST_BASE + 0x2000));
	show_fault("not present");
	ok(fetch_fault(TEST_BASE + 0x2000, 0x10, TEST_BASE + 0x2000), "a fetch from a page not present: #PF(I/D)");
	EXPECT_TRAP(at, "jmp *%%eax", "a"(BIG_BASE));
	ok(fetch_fault(BIG_BASE, 0x11, BIG_BASE), "XD on a 2 MiB page");
	EXPECT_TRAP(at, "jmp *%%eax", "a"(XD_TABLE));
	ok(fetch_fault(XD_TABLE, 0x11, XD_TABLE), "XD in the directory entry covers its table's pages");
	is_u32(*(volatile u32 *)XD_TABLE, 0x00002AB8, "which still read");

	/* Code that ran before gains XD. */
	pt[0] |= XD;
	invlpg(TEST_BASE);
	EXPECT_TRAP(at, "jmp *%%eax", "a"(TEST_BASE));
	ok(fetch_fault(TEST_BASE, 0x11, TEST_BASE), "code that ran faults once its entry has XD and invlpg");
	pt[0] &= ~XD;
	invlpg(TEST_BASE);
	is_u32(call_at(TEST_BASE), 42, "and runs again once XD is cleared");
	pt[0] |= XD;
	__asm__ volatile("movl %0, %%cr3" : : "r"(pdpt) : "memory");
	EXPECT_TRAP(at, "jmp *%%eax", "a"(TEST_BASE));
	ok(fetch_fault(TEST_BASE, 0x11, TEST_BASE), "the same after a CR3 load");
	pt[0] &= ~XD;
	__asm__ volatile("movl %0, %%cr3" : : "r"(pdpt) : "memory");
	is_u32(call_at(TEST_BASE), 42, "and back");

	/* From an executable page onto an XD one: three nops run, the
	 * fetch past them faults at the boundary. */
	for (u32 i = 4093; i < 4096; i++)
		code_c[i] = 0x90;
	for (unsigned i = 0; i < sizeof ret42; i++)
		code_d[i] = ret42[i];
	EXPECT_TRAP(at, "jmp *%%eax", "a"(TEST_BASE + 0x3FFD));
	show_fault("onto XD");
	ok(fetch_fault(TEST_BASE + 0x4000, 0x11, TEST_BASE + 0x4000), "running onto an XD page faults at its start");
	/* mov $42, %eax straddling the boundary: its first two bytes on the
	 * executable page. */
	code_c[4094] = 0xB8;
	code_c[4095] = 0x2A;
	for (unsigned i = 0; i < 4; i++)
		code_d[i] = (u8)(i < 3 ? 0 : 0xC3);
	EXPECT_TRAP(at, "jmp *%%eax", "a"(TEST_BASE + 0x3FFE));
	show_fault("straddling");
	ok(fetch_fault(TEST_BASE + 0x4000, 0x11, TEST_BASE + 0x3FFE), "an instruction straddling into it faults whole");
	pt[4] &= ~XD;
	invlpg(TEST_BASE + 0x4000);
	is_u32(call_at(TEST_BASE + 0x3FFE), 42, "and runs once the page is executable");

	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	syscall_hook = sys;
	enter_user(user_main, (u32)ustack + sizeof ustack);
}
