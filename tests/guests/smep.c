/* SMEP (run against QEMU with -cpu qemu32,+smep): with CR4.SMEP, ring 0
 * fetching from a user page takes #PF with P and I/D (0x11) at that
 * address, a fetch from a page not present reports I/D too (0x10), data
 * reads of user pages still work, and clearing SMEP lets the same code
 * run again; without it ring 0 runs user pages. */
#include "rt/rt.h"

#define USER_PAGE 0x7u  /* P, W, U */
#define KERNEL_4M 0x83u  /* P, W, PS */
#define USER_CODE 0x400000u

static u32 pd[1024] __attribute__((aligned(4096)));
static u32 pt[1024] __attribute__((aligned(4096)));
static u8 code[4096] __attribute__((aligned(4096)));

static u32 call_user_code(void)
{
	u32 v;
	__asm__ volatile("call *%1" : "=a"(v) : "r"(USER_CODE) : "memory", "ecx", "edx");
	return v;
}

static void smep(int on)
{
	cr4_set_bits(0x100000u, on ? 0x100000u : 0);
}

void test_main(u32 magic, u32 mbi)
{
	u32 at, r[4];
	(void)magic;
	(void)mbi;
	plan(7);

	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(7), "c"(0));
	ok(r[1] & (1u << 7), "CPUID.7.0:EBX reports SMEP");

	const u8 body[] = {0xB8, 0x2A, 0, 0, 0, 0xC3}; /* mov $42, %eax; ret */
	for (unsigned i = 0; i < sizeof body; i++)
		code[i] = body[i];
	pd[0] = 0 | KERNEL_4M;           /* the kernel: supervisor, 4 MiB */
	pd[1] = (u32)pt | USER_PAGE;
	pt[0] = (u32)code | USER_PAGE;   /* a user page holding the code */
	__asm__ volatile("movl %%cr4, %%eax; orl $0x10, %%eax; movl %%eax, %%cr4\n"
			 "movl %0, %%cr3\n"
			 "movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n"
			 "jmp 1f\n1:" : : "r"(pd) : "eax", "memory");

	is_u32(call_user_code(), 42, "without SMEP ring 0 runs a user page");
	smep(1);
	EXPECT_TRAP(at, "jmp *%%eax", "a"(USER_CODE));
	u32 fault_cr2 = read_cr2();
	printf_serial("SMEP fetch: vector %u error %x cr2 %x eip %x\n", last_trap.vector, last_trap.error, fault_cr2,
		      last_trap.eip);
	ok(last_trap.vector == 14 && last_trap.error == 0x11 && fault_cr2 == USER_CODE && last_trap.eip == USER_CODE,
	   "with SMEP the fetch takes #PF(P | I/D) at the user page");
	is_u32(*(volatile u32 *)USER_CODE, 0x00002AB8, "data reads of the user page still work");
	EXPECT_TRAP(at, "jmp *%%eax", "a"(USER_CODE + 0x1000));
	printf_serial("not present: vector %u error %x\n", last_trap.vector, last_trap.error);
	ok(last_trap.vector == 14 && last_trap.error == 0x10, "a fetch from a page not present reports I/D");
	smep(0);
	is_u32(call_user_code(), 42, "SMEP cleared: the same code runs again");
	smep(1);
	EXPECT_TRAP(at, "jmp *%%eax", "a"(USER_CODE));
	ok(last_trap.vector == 14 && last_trap.error == 0x11, "and set again, it faults again");
	smep(0);
}
