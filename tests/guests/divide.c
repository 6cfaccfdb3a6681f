/* div and idiv at ring 0, every operand size, register and memory
 * divisors: the quotient and remainder when they fit, and otherwise #DE
 * with the EIP of the instruction, its registers untouched and the status
 * flags of before it in the frame (translated code tests ahead of the
 * instruction; AH-BH divisors and idiv's signed overflow reach the host's
 * own #DE).  Every case prints what it saw, so QEMU's run checks the
 * values too. */
#include "rt/rt.h"

#define STATUS 0x8D5u /* CF PF AF ZF SF OF */

static volatile u32 divisor_mem[2];
static u32 flags_in;

static void check(const char *name, u32 at, u32 eax, u32 edx, int want_de, u32 want_eax, u32 want_edx)
{
	int de = last_trap.count != 0;
	printf_serial("%s: %s eax %x edx %x", name, de ? "#DE" : "ok", eax, edx);
	if (de)
		printf_serial(" vector %u at+0 %d flags %x", last_trap.vector, last_trap.eip == at,
			      last_trap.eflags & STATUS);
	printf_serial("\n");
	if (want_de)
		ok(de && last_trap.vector == 0 && last_trap.eip == at && (last_trap.eflags & STATUS) == flags_in &&
			   eax == want_eax && edx == want_edx,
		   name);
	else
		ok(!de && eax == want_eax && edx == want_edx, name);
}

/* One case: EAX = A, EDX = D, ECX = C, EBX = B, the memory divisor M, the
 * status flags all set or all clear in turn; DE says whether it must
 * fault, EA and ED what EAX and EDX hold after it. */
#define CASE(insn, A, D, C, B, M, DE, EA, ED)                                                     \
	do {                                                                                      \
		u32 a_ = (A), d_ = (D), at_;                                                      \
		flags_in = flags_in ? 0 : STATUS;                                                 \
		divisor_mem[0] = (M);                                                             \
		trap_reset();                                                                     \
		__asm__ volatile("movl $2f, trap_resume\n"                                      \
				 "movl $1f, %[at]\n"                                              \
				 "pushl %[fl]\n"                                                  \
				 "popfl\n"                                                        \
				 "1: " insn "\n"                                                  \
				 "2:\n"                                                           \
				 : [at] "=m"(at_), "+a"(a_), "+d"(d_)                             \
				 : "c"(C), "b"(B), [fl] "r"(flags_in | 2u)                        \
				 : "memory", "cc");                                               \
		check(insn, at_, a_, d_, DE, EA, ED);                                             \
	} while (0)

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(34);

	/* 32 bits: EDX:EAX / r/m32 faults when EDX >= the divisor. */
	CASE("divl %%ecx", 100, 0, 7, 0, 0, 0, 14, 2);
	CASE("divl %%ecx", 1, 0, 0, 0, 0, 1, 1, 0);
	CASE("divl %%ecx", 0, 5, 5, 0, 0, 1, 0, 5);
	CASE("divl %%ecx", 0xFFFFFFFF, 4, 5, 0, 0, 0, 0xFFFFFFFF, 4);
	CASE("divl %%ecx", 0, 0xFFFFFFFF, 0xFFFFFFFF, 0, 0, 1, 0, 0xFFFFFFFF);
	CASE("divl %%ebx", 10, 0, 0, 3, 0, 0, 3, 1);
	CASE("divl %%edx", 10, 3, 0, 0, 0, 1, 10, 3);
	CASE("divl divisor_mem", 100, 0, 0, 0, 9, 0, 11, 1);
	CASE("divl divisor_mem", 100, 0, 0, 0, 0, 1, 100, 0);
	CASE("divl (%%ebx)", 0, 8, 0, (u32)divisor_mem, 8, 1, 0, 8);
	CASE("divl -4(%%ebx,%%ecx,4)", 0, 7, 1, (u32)divisor_mem, 8, 0, 0xE0000000, 0);
	/* 16 bits: DX:AX / r/m16, the upper halves ignored. */
	CASE("divw %%cx", 0, 1, 2, 0, 0, 0, 0x8000, 0);
	CASE("divw %%cx", 0, 2, 2, 0, 0, 1, 0, 2);
	CASE("divw %%cx", 0xABCD0000, 0xFFFF0001, 2, 0, 0, 0, 0xABCD8000, 0xFFFF0000);
	CASE("divw %%cx", 5, 0, 0x10000, 0, 0, 1, 5, 0);
	CASE("divw divisor_mem", 0x1234, 0, 0, 0, 0x10, 0, 0x123, 4);
	CASE("divw divisor_mem", 0x1234, 0, 0, 0, 0xFFFF0000, 1, 0x1234, 0);
	/* 8 bits: AX / r/m8 faults when AH >= the divisor. */
	CASE("divb %%cl", 0x01FF, 0, 2, 0, 0, 0, 0x01FF, 0);
	CASE("divb %%cl", 0x0200, 0, 2, 0, 0, 1, 0x0200, 0);
	CASE("divb %%cl", 0xFFFF0010, 0, 3, 0, 0, 0, 0xFFFF0105, 0);
	CASE("divb %%cl", 7, 0, 0x100, 0, 0, 1, 7, 0);
	CASE("divb %%bh", 0x0010, 0, 0, 0x200, 0, 0, 0x0008, 0);
	CASE("divb %%ah", 0x0210, 0, 0, 0, 0, 1, 0x0210, 0);
	CASE("divb divisor_mem", 0x00FF, 0, 0, 0, 0x10, 0, 0x0F0F, 0);
	CASE("divb divisor_mem", 0x00FF, 0, 0, 0, 0xFF00, 1, 0x00FF, 0);
	/* idiv: a zero divisor is tested ahead, signed overflow is the host's. */
	CASE("idivl %%ecx", (u32)-7, 0xFFFFFFFF, 2, 0, 0, 0, (u32)-3, (u32)-1);
	CASE("idivl %%ecx", 7, 0, 0, 0, 0, 1, 7, 0);
	CASE("idivl %%ecx", 0x80000000, 0xFFFFFFFF, (u32)-1, 0, 0, 1, 0x80000000, 0xFFFFFFFF);
	CASE("idivl divisor_mem", 0, 0, 0, 0, 0, 1, 0, 0);
	CASE("idivw %%cx", (u32)-9, 0xFFFF, 4, 0, 0, 0, 0xFFFFFFFE, 0xFFFF);
	CASE("idivw %%cx", 9, 0, 0x10000, 0, 0, 1, 9, 0);
	CASE("idivb %%cl", 0xFFF7, 0, 2, 0, 0, 0, 0xFFFC, 0);
	CASE("idivb divisor_mem", 0x40, 0, 0, 0, 0x100, 1, 0x40, 0);

	u32 faults = 0;
	for (int i = 0; i < 500; i++) {
		u32 a = 1, d = 0, c = (u32)(i & 1) * 3, at;
		trap_reset();
		__asm__ volatile("movl $2f, trap_resume\n movl $1f, %0\n1: divl %%ecx\n2:\n"
				 : "=m"(at), "+a"(a), "+d"(d) : "c"(c) : "memory", "cc");
		faults += last_trap.count == 1 && last_trap.eip == at;
	}
	is_u32(faults, 250, "a loop alternating a zero and a non-zero divisor faults on every zero");
}
