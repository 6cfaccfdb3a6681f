/* The monitor test's guest (tests/monitor/monitor_test.py looks at it
 * from bt86's and QEMU's monitors): paging on with 4 KiB pages of every
 * kind of permission and a global 4 MiB page, A and D set ahead wherever
 * the entries allow them, so that neither machine's own accesses change
 * what its monitor shows; a known pattern in memory; then, interrupts off,
 * a loop counting for ever.  CS is reloaded from a descriptor with its
 * accessed bit set: QEMU's far jump does not set the bit (the SDM's
 * processor does, and so does bt86), so both caches then agree. */
#include "rt/rt.h"

#define P 0x1u
#define W 0x2u
#define U 0x4u
#define A 0x20u
#define D 0x40u
#define PS 0x80u
#define G 0x100u

static u32 pd[1024] __attribute__((aligned(4096)));
static u32 pt[1024] __attribute__((aligned(4096)));
/* The pattern: words, then a string with characters to escape. */
u32 pattern[1024] __attribute__((aligned(4096)));
/* What the loop counts, on a page of its own. */
volatile u32 counter __attribute__((aligned(4096)));
extern const char spin[];

void test_main(u32 magic, u32 mbi)
{
	(void)magic, (void)mbi;
	for (u32 i = 0; i < 1024; i++)
		pt[i] = i << 12 | P | W | A | D;
	/* Below 1 MiB: a user page, a read-only one, a user read-only one,
	 * one absent, one with caching off and write-through. */
	pt[0x10] |= U;
	pt[0x11] &= ~W;
	pt[0x12] = (pt[0x12] & ~W) | U;
	pt[0x13] = 0;
	pt[0x14] |= 0x18u;
	pd[0] = (u32)pt | P | W | U | A;
	pd[1] = 0x00400000u | P | W | A | D | PS | G; /* identity 4-8 MiB */
	pd[0x300] = 0x00000000u | P | W | U | A | D | PS; /* 0xC0000000: the first 4 MiB again */
	for (u32 i = 0; i < 1024; i++)
		pattern[i] = 0x01020304u * i ^ 0xA5A5A5A5u;
	static const char text[] = "bt86 'monitor'\n\\\x01";
	for (u32 i = 0; i < sizeof text; i++)
		((char *)&pattern[16])[i] = text[i];
	__asm__ volatile("movl %0, %%cr3\n"
			 "movl %%cr4, %%eax; orl $0x90, %%eax; movl %%eax, %%cr4\n" /* PSE, PGE */
			 "movl %%cr0, %%eax; orl $0x80000000, %%eax; movl %%eax, %%cr0\n"
			 : : "r"(pd) : "eax", "memory");
	gdt[1] |= 1ull << 40;
	__asm__ volatile("ljmp $0x08, $1f\n1:" : : : "memory");
	printf_serial("# ready pattern %x counter %x spin %x\n", (u32)pattern, (u32)&counter, (u32)spin);
	__asm__ volatile("cli\n"
			 "movl $0x11111111, %%eax\n movl $0x22222222, %%ebx\n movl $0x33333333, %%ecx\n"
			 "movl $0x44444444, %%edx\n movl $0x55555555, %%esi\n movl $0x66666666, %%edi\n"
			 "movl $0x77777777, %%ebp\n"
			 ".globl spin\nspin: incl counter\n jmp spin\n" : : : "memory");
}
