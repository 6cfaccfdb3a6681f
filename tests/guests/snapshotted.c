/* The snapshot test's guest (tests/monitor/snapshot_test.py saves it
 * mid-run and restores it in a new process), and a guest test of its own:
 * sixty steps, each waiting two ticks of the 8254 in hlt and then
 * stirring 4 MiB of memory through paging (4 KiB pages below 4 MiB, 4 MiB
 * pages above), with running values held in the x87 stack and in XMM7
 * across the steps.  Every line it prints depends only on what it
 * computed, never on time, so a restored run prints what an uninterrupted
 * one does. */
#include "rt/rt.h"

#define STEPS 60
#define WORDS (1u << 20) /* 4 MiB */

static u32 pd[1024] __attribute__((aligned(4096)));
static u32 pt[1024] __attribute__((aligned(4096)));
static volatile u32 ticks;
extern void tick_stub(void);
__asm__(".text\n"
	"tick_stub: incl ticks\n"
	"pushl %eax\n movb $0x20, %al\n outb %al, $0x20\n popl %eax\n"
	"iret\n");

static u32 *const data = (u32 *)0x01000000u; /* 16 MiB, a 4 MiB page */

void test_main(u32 magic, u32 mbi)
{
	(void)magic, (void)mbi;
	for (u32 i = 0; i < 1024; i++)
		pt[i] = i << 12 | 0x3;
	pd[0] = (u32)pt | 0x3;
	for (u32 i = 1; i < 16; i++)
		pd[i] = i << 22 | 0x83; /* 4 MiB pages up to 64 MiB */
	__asm__ volatile("movl %0, %%cr3\n"
			 "movl %%cr4, %%eax; orl $0x210, %%eax; movl %%eax, %%cr4\n" /* PSE, OSFXSR */
			 "movl %%cr0, %%eax; orl $0x80000000, %%eax; andl $~0xC, %%eax; movl %%eax, %%cr0\n"
			 : : "r"(pd) : "eax", "memory");
	/* x87: 1.0 on the stack for the whole run; XMM6 = (1, 2, 3, 4). */
	static const u32 inc[4] = {1, 2, 3, 4};
	__asm__ volatile("fninit\n fld1\n movdqu %0, %%xmm6\n pxor %%xmm7, %%xmm7" : : "m"(inc));
	idt_set(0x20, tick_stub, 0);
	pic_pit_100hz(0xFE);
	__asm__ volatile("sti");
	u32 seed = 12345, sum = 0;
	for (u32 i = 0; i < WORDS; i += 1024)
		data[i] = i;
	for (u32 step = 0; step < STEPS; step++) {
		u32 until = ticks + 2;
		while (ticks < until)
			__asm__ volatile("hlt");
		for (u32 k = 0; k < 2000; k++) {
			seed = seed * 1103515245u + 12345u;
			u32 at = (seed >> 8) % WORDS;
			data[at] += seed;
			sum += data[(at * 7) % WORDS];
		}
		int fpu;
		u32 sse[4];
		__asm__ volatile("fadd %%st(0), %%st(0)\n fistl %0\n" : "=m"(fpu)); /* doubles: 2^(step+1) */
		__asm__ volatile("paddd %%xmm6, %%xmm7\n movdqu %%xmm7, %0" : "=m"(sse));
		if (step >= 29) /* past 2^30 the x87 value stays: reload 1.0 */
			__asm__ volatile("fstp %%st(0)\n fld1" : : : "memory");
		printf_serial("# step %u sum %x fpu %d sse %x %x %x %x\n", step, sum, fpu, sse[0], sse[1], sse[2],
			      sse[3]);
	}
	__asm__ volatile("cli");
	plan(1);
	ok(sum != 0, "sixty steps ran");
}
