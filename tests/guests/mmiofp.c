/* SSE, MMX and x87 instructions with a memory operand on MMIO (the HPET's
 * registers at 0xFED00000), which the emulator runs through its bounce
 * buffer with the guest's own XMM registers and MXCSR: loads, a store
 * that reaches the device, arithmetic with an MMIO source, and a
 * conversion that rounds as the guest's MXCSR says. */
#include "rt/rt.h"

#define MMIO 0xFED00000u

static u32 out[4] __attribute__((aligned(16)));
static const u32 ones[4] __attribute__((aligned(16))) = {1, 1, 1, 1};
static const u32 pattern[4] __attribute__((aligned(16))) = {0x12345678, 0, 0x11, 0x22};

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(7);
	__asm__ volatile("movl %%cr4, %%eax; orl $0x600, %%eax; movl %%eax, %%cr4" : : : "eax");

	__asm__ volatile("movdqu (%0), %%xmm0; movdqa %%xmm0, (%1)" : : "r"(MMIO), "r"(out) : "memory");
	printf_serial("movdqu from MMIO: %08x %08x %08x %08x\n", out[0], out[1], out[2], out[3]);
	ok(out[0] == 0x8086A201 && out[1] == 10000000 && out[2] == 0 && out[3] == 0,
	   "movdqu loads 16 bytes of device registers");

	__asm__ volatile("movdqa (%0), %%xmm1; movdqu %%xmm1, (%1)" : : "r"(pattern), "r"(MMIO + 0x148) : "memory");
	is_u32(*(volatile u32 *)(MMIO + 0x148), 0x12345678, "movdqu stores into the device (timer 2's comparator)");

	__asm__ volatile("movdqa (%0), %%xmm2; paddd (%1), %%xmm2; movdqa %%xmm2, (%2)"
			 : : "r"(ones), "r"(MMIO), "r"(out) : "memory");
	ok(out[0] == 0x8086A202 && out[1] == 10000001 && out[2] == 1, "paddd with an MMIO source");

	u32 q = 0;
	__asm__ volatile("movq (%1), %%mm0; movd %%mm0, %0; emms" : "=r"(q) : "r"(MMIO));
	is_u32(q, 0x8086A201, "movq into an MMX register");

	u32 i = 0;
	__asm__ volatile("fildl (%1); fistpl %0" : "=m"(i) : "r"(MMIO + 4) : "memory");
	is_u32(i, 10000000, "fild from MMIO, through the x87 stack");

	u32 csr = 0x3F80 | 0x2000, after = 0, bits = 0; /* round down */
	__asm__ volatile("ldmxcsr %3; cvtsi2ssl (%2), %%xmm3; movd %%xmm3, %0; stmxcsr %1; ldmxcsr %4"
			 : "=r"(bits), "=m"(after) : "r"(MMIO), "m"(csr), "m"((u32){0x1F80}));
	printf_serial("cvtsi2ss of %08x rounding down: %08x, MXCSR after %08x\n", *(volatile u32 *)MMIO, bits, after);
	is_u32(bits, 0xCEFEF2BC, "cvtsi2ss from MMIO rounds as the guest's MXCSR says");
	is_u32(after & 0x6000, 0x2000, "and the guest's MXCSR is its own after it");
}
