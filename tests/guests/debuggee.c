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

void test_main(u32 magic, u32 mbi)
{
	(void)magic, (void)mbi;
	plan(4);
	is_u32(patched(), 1, "patched() before the debugger writes it");
	checkpoint(1);
	ok(*(const u8 *)checkpoint != 0xCC, "a breakpoint is not in guest memory");
	is_u32(patched(), 2, "patched() after the debugger wrote its code");
	is_u32(steps(5), 16, "steps(5) stepped through");
	checkpoint(2);
	while (!release)
		__asm__ volatile("pause");
	printf_serial("# released\n");
}
