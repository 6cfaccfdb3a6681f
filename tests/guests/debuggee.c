/* The GDB test's guest (tests/gdb/gdb_test.sh runs it under a debugger,
 * on bt86 and on QEMU): its results hold only when the debugger does its
 * part, so no other test runs it. */
#include "rt/rt.h"

/* The debugger rewrites its code to return 2 after it has run once (and
 * been translated). */
__attribute__((noipa)) u32 patched(void)
{
	return 1;
}

/* The debugger's breakpoint. */
__attribute__((noipa)) void checkpoint(u32 n)
{
	__asm__ volatile("" : : "r"(n) : "memory");
}

/* Straight-line code and a jump for stepi: (a + 1 + 2) * 2. */
u32 steps(u32 a);
__asm__(".text\n"
	".globl steps\n"
	"steps:\n"
	"	mov 4(%esp), %eax\n"
	"	add $1, %eax\n"
	"	jmp 1f\n"
	"1:	add $2, %eax\n"
	"	shl $1, %eax\n"
	"	ret\n");

/* Set by the debugger after it has interrupted the spin below. */
volatile u32 release;

/* The watchpoints' variables.  With paging on, the first 4 MiB are mapped
 * with 4 KiB pages and linear ALIAS.. maps them again as one 4 MiB page. */
volatile u32 counter, secret = 0x5EC2E7, far_secret = 0xFA2;
#define ALIAS 0x00400000u
static u32 pd[1024] __attribute__((aligned(4096)));
static u32 pt[1024] __attribute__((aligned(4096)));

static void paging_on(void)
{
	for (u32 i = 0; i < 1024; i++)
		pt[i] = i << 12 | 0x7; /* user pages, for user_watched */
	pd[0] = (u32)pt | 0x7;
	pd[ALIAS >> 22] = 0x83; /* present, writable, 4 MiB, frame 0 */
	__asm__ volatile("movl %0, %%cr3\n"
			 "movl %%cr4, %%eax; orl $0x10, %%eax; movl %%eax, %%cr4\n"
			 "movl %%cr0, %%eax; orl $0x80000000, %%eax; movl %%eax, %%cr0\n"
			 : : "r"(pd) : "eax", "memory");
}

/* Where the debugger watches: stores to counter (the first is 10), reads
 * of secret, a read through the 4 MiB page, and a read-modify-write. */
__attribute__((noipa)) u32 watched(void)
{
	for (u32 i = 1; i <= 3; i++)
		counter = i * 10;
	u32 sum = secret;
	sum += *(volatile u32 *)(ALIAS + (u32)&far_secret);
	counter++;
	return sum + counter;
}

/* Ring 3's watched variable: the debugger watches its stores from a
 * user program, whose accesses go through the soft TLB and the user view. */
static u32 tss[26];
static u8 kstack[4096] __attribute__((aligned(16)));
static u8 ustack[4096] __attribute__((aligned(16)));
volatile u32 ucounter;

static void user_watched(void)
{
	ucounter = 7;
	ucounter = 8;
	UIS(ucounter, 8, "ring 3 stored under the debugger's watchpoint");
	__asm__ volatile("int $0x80" : : "a"(3));
}

/* rt's reports, and 3: the user program's end, which ends the test. */
static void sys(struct trap_frame *f)
{
	if (!user_report(f) && f->eax == 3)
		done();
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic, (void)mbi;
	plan(6);
	is_u32(patched(), 1, "patched() before the debugger writes it");
	checkpoint(1);
	ok(*(const u8 *)checkpoint != 0xCC, "a breakpoint is not in guest memory");
	is_u32(patched(), 2, "patched() after the debugger wrote its code");
	is_u32(steps(5), 16, "steps(5) stepped through");
	checkpoint(2);
	while (!release)
		__asm__ volatile("pause");
	printf_serial("# released\n");
	paging_on();
	is_u32(watched(), 0x5EC2E7 + 0xFA2 + 31, "watched() under the debugger's watchpoints");
	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	syscall_hook = sys;
	enter_user(user_watched, (u32)ustack + sizeof ustack);
}
