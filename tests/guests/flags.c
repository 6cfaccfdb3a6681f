/* cli/sti/pushf/popf and EFLAGS as the guest sees them, at ring 0. */
#include "rt/rt.h"

#define IF 0x200u
#define IOPL 0x3000u

static u32 popf_readback(u32 v)
{
	u32 f;
	__asm__ volatile("pushl %1; popfl; pushfl; popl %0" : "=r"(f) : "r"(v) : "cc");
	return f;
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(22);
	__asm__ volatile("cli");
	ok(!(read_eflags() & IF), "cli clears IF as seen by pushf");
	__asm__ volatile("sti");
	ok(read_eflags() & IF, "sti sets IF");
	__asm__ volatile("cli");
	ok(read_eflags() & 2, "reserved bit 1 reads as 1");
	ok(popf_readback(read_eflags() | IF) & IF, "popf sets IF at CPL 0");
	ok(!(popf_readback(read_eflags() & ~IF) & IF), "popf clears IF at CPL 0");
	is_u32(popf_readback(0x3002) & IOPL, IOPL, "popf sets IOPL 3 at CPL 0");
	is_u32(popf_readback(0x0002) & IOPL, 0, "popf clears IOPL");
	u32 arith = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x800; /* CF PF AF ZF SF OF */
	is_u32(popf_readback(0x2 | arith) & 0x8D5, arith, "popf loads every status flag");
	is_u32(popf_readback(0x2) & 0x8D5, 0, "popf clears every status flag");
	ok(popf_readback(0x402) & 0x400, "popf sets DF");
	__asm__ volatile("cld");
	u32 ac_on = popf_readback(0x40002) & 0x40000, ac_off = popf_readback(0x2) & 0x40000;
	ok(ac_on && !ac_off, "AC toggles (486 detection)");
	u32 id_on = popf_readback(0x200002) & 0x200000, id_off = popf_readback(0x2) & 0x200000;
	ok(id_on && !id_off, "ID toggles (CPUID detection)");
	u8 carry;
	__asm__ volatile("stc; pushfl; clc; popfl; setc %0" : "=q"(carry) : : "cc");
	ok(carry, "pushf/popf round-trip carries CF");
	u32 iflag_sum = 0;
	for (int i = 0; i < 1000; i++) {
		__asm__ volatile("sti");
		iflag_sum += (read_eflags() >> 9) & 1;
		__asm__ volatile("cli");
		iflag_sum += (read_eflags() >> 9) & 1;
	}
	is_u32(iflag_sum, 1000, "IF tracks 1000 cli/sti pairs");
	u32 before, after;
	__asm__ volatile("sti; pushfl; popl %0; pushl %0; andl $~0x200, (%%esp); popfl; pushfl; popl %1"
			 : "=&r"(before), "=r"(after) : : "cc", "memory");
	ok((before & IF) && !(after & IF), "popf of a saved image restores IF = 0");
	__asm__ volatile("cli");
	u32 esp0, esp1;
	__asm__ volatile("movl %%esp, %0; pushfl; popfl; movl %%esp, %1" : "=r"(esp0), "=r"(esp1));
	is_u32(esp1, esp0, "pushf/popf leave ESP balanced");

	/* No BMI1 or LZCNT in the model: F3 0F BC/BD are bsf/bsr, whose
	 * destination a zero source leaves alone, with ZF set. */
	u32 dst = 0x1234, zf;
	__asm__ volatile("rep bsfl %2, %0; setz %b1; movzbl %b1, %1" : "+r"(dst), "=q"(zf) : "r"(0) : "cc");
	ok(dst == 0x1234 && zf, "rep bsf of 0 (tzcnt's bytes) is bsf: destination kept, ZF set");
	u32 src = 0x00F00000;
	__asm__ volatile("rep bsrl %2, %0; setz %b1; movzbl %b1, %1" : "=r"(dst), "=q"(zf) : "r"(src) : "cc");
	ok(dst == 23 && !zf, "rep bsr (lzcnt's bytes) is bsr: the highest set bit's index");

	/* A shift by 0 leaves the flags alone, also first in a block (the
	 * jump ends the one before): found by the differential test. */
	u32 fl_imm, fl_cl, x = 5;
	__asm__ volatile("movl $0xFFFFFFFF, %%eax; addl $1, %%eax\n" /* CF ZF PF AF set */
			 "jmp 1f\n1: shll $0, %1\n pushfl; popl %0"
			 : "=r"(fl_imm), "+r"(x) : : "eax", "cc");
	is_u32(fl_imm & 0x8D5, 0x55, "shl $0 first in a block keeps the flags");
	__asm__ volatile("movl $0, %%ecx; movl $0xFFFFFFFF, %%eax; addl $1, %%eax\n"
			 "jmp 1f\n1: shrl %%cl, %1\n pushfl; popl %0"
			 : "=r"(fl_cl), "+r"(x) : : "eax", "ecx", "cc");
	is_u32(fl_cl & 0x8D5, 0x55, "shr %cl with CL = 0 first in a block keeps the flags");

	/* An exception frame holds the flags of before the faulting
	 * instruction, also when it comes first in a block whose next flag
	 * write would overwrite them all. */
	trap_reset();
	__asm__ volatile("movl $2f, trap_resume\n"
			 "movl $0, %%ecx; movl $0xFFFFFFFF, %%eax; addl $1, %%eax\n"
			 "jmp 1f\n1: divl %%ecx\n2:"
			 : : : "eax", "ecx", "edx", "memory", "cc");
	is_u32(last_trap.vector, 0, "div by 0 raises #DE");
	is_u32(last_trap.eflags & 0x8D5, 0x55, "#DE's frame holds the flags of before div, first in its block");
}
