/* The guest's x87 and SSE state survives every kind of exit: an interrupt
 * through the IDT, instructions the emulator runs (out, cpuid), a fault the
 * host CPU raises (ud2), and timer interrupts with hlt. */
#include "rt/rt.h"

static u32 xmm_in[32] __attribute__((aligned(16))), xmm_out[32] __attribute__((aligned(16)));
volatile u32 ticks;
extern void tick_stub(void);
__asm__(".text\n"
	"tick_stub: incl ticks\n pushl %eax\n movb $0x20, %al\n outb %al, $0x20\n popl %eax\n iret\n");

static void load_xmm(void)
{
	__asm__ volatile("movdqa 0(%0), %%xmm0\n movdqa 16(%0), %%xmm1\n movdqa 32(%0), %%xmm2\n"
			 "movdqa 48(%0), %%xmm3\n movdqa 64(%0), %%xmm4\n movdqa 80(%0), %%xmm5\n"
			 "movdqa 96(%0), %%xmm6\n movdqa 112(%0), %%xmm7\n" : : "r"(xmm_in) : "memory");
}

static int xmm_intact(void)
{
	__asm__ volatile("movdqa %%xmm0, 0(%0)\n movdqa %%xmm1, 16(%0)\n movdqa %%xmm2, 32(%0)\n"
			 "movdqa %%xmm3, 48(%0)\n movdqa %%xmm4, 64(%0)\n movdqa %%xmm5, 80(%0)\n"
			 "movdqa %%xmm6, 96(%0)\n movdqa %%xmm7, 112(%0)\n" : : "r"(xmm_out) : "memory");
	for (int i = 0; i < 32; i++)
		if (xmm_in[i] != xmm_out[i])
			return 0;
	return 1;
}

void test_main(u32 magic, u32 mbi)
{
	u32 at;
	(void)magic;
	(void)mbi;
	plan(7);
	__asm__ volatile("movl %%cr4, %%eax; orl $0x600, %%eax; movl %%eax, %%cr4\n" /* OSFXSR, OSXMMEXCPT */
			 "movl %%cr0, %%eax; andl $~0xC, %%eax; orl $0x22, %%eax; movl %%eax, %%cr0\n"
			 "fninit" : : : "eax");
	for (int i = 0; i < 32; i++)
		xmm_in[i] = 0x01020304u * (u32)(i + 1) ^ 0xA5A5A5A5u;
	u16 cw = 0x0E7F, cw_out;                  /* round toward zero, all masked */
	u32 mxcsr = 0x7F80, mxcsr_out;            /* round toward zero */
	__asm__ volatile("fldcw %0; ldmxcsr %1" : : "m"(cw), "m"(mxcsr));
	__asm__ volatile("fld1; fldpi; fldl2e");  /* three values on the x87 stack */
	load_xmm();

	__asm__ volatile("int $48");
	ok(xmm_intact(), "SSE registers survive an interrupt through the IDT");
	outb(0x80, 1);
	u32 a = 0, b, c, d;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
	ok(xmm_intact(), "and instructions the emulator runs (out, cpuid)");
	EXPECT_TRAP(at, "ud2");
	ok(last_trap.vector == 6 && xmm_intact(), "and a fault the host CPU raises");

	outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x01);
	outb(0x21, 0xFE);
	idt_set(0x20, tick_stub, 0);
	outb(0x43, 0x34); outb(0x40, 11932 & 0xFF); outb(0x40, 11932 >> 8);
	__asm__ volatile("sti");
	while (ticks < 5)
		__asm__ volatile("hlt");
	__asm__ volatile("cli");
	ok(xmm_intact(), "and timer interrupts with hlt");

	__asm__ volatile("fnstcw %0; stmxcsr %1" : "=m"(cw_out), "=m"(mxcsr_out));
	is_u32(cw_out, cw, "the x87 control word is kept");
	is_u32(mxcsr_out & 0xFFBF, mxcsr, "MXCSR is kept");
	u32 l2e_bits[2], pi_bits[2], one_bits[2];
	__asm__ volatile("fstpl %0; fstpl %1; fstpl %2" : "=m"(l2e_bits), "=m"(pi_bits), "=m"(one_bits));
	ok(one_bits[1] == 0x3FF00000 && one_bits[0] == 0 && pi_bits[1] == 0x400921FB && l2e_bits[1] == 0x3FF71547,
	   "the x87 stack is kept");
}
