/* Instructions that 64-bit mode reassigns (BCD adjustments, salc, bound,
 * arpl, pusha/popa, enter) and far returns with an immediate: bt86 emulates
 * them, so they are compared with QEMU over many inputs.  Only flags the SDM
 * defines for each instruction are printed. */
#include "rt/rt.h"

#define CF 0x1u
#define PF 0x4u
#define AF 0x10u
#define ZF 0x40u
#define SF 0x80u

static u32 fold(u32 h, u32 v)
{
	return (h ^ v) * 16777619u;
}

#define BCD(name, insn, flagmask)                                                          \
	static u32 name(void)                                                              \
	{                                                                                  \
		u32 h = 2166136261u;                                                       \
		for (u32 ax = 0; ax < 0x10000; ax += 0x37) {                               \
			for (u32 fin = 0; fin < 2; fin++) {                                \
				u32 r = ax, fl;                                            \
				__asm__ volatile("pushl %2; popfl; " insn "; pushfl; popl %1" \
						 : "+a"(r), "=r"(fl) : "r"(fin ? 0x13u : 0x2u) : "cc"); \
				h = fold(fold(h, r & 0xFFFF), fl & (flagmask));            \
			}                                                          \
		}                                                                          \
		return h;                                                                  \
	}

BCD(daa_hash, "daa", CF | AF | SF | ZF | PF)
BCD(das_hash, "das", CF | AF | SF | ZF | PF)
BCD(aaa_hash, "aaa", CF | AF)
BCD(aas_hash, "aas", CF | AF)
BCD(aam_hash, "aam", SF | ZF | PF)
BCD(aad_hash, "aad", SF | ZF | PF)
BCD(aam7_hash, "aam $7", SF | ZF | PF)
BCD(salc_hash, ".byte 0xd6", 0)

extern void far_ret_target(void);
u32 pusha_image[8], popa_result[2];

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(11);
	printf_serial("# daa %08x das %08x\n", daa_hash(), das_hash());
	printf_serial("# aaa %08x aas %08x\n", aaa_hash(), aas_hash());
	printf_serial("# aam %08x aad %08x aam7 %08x salc %08x\n", aam_hash(), aad_hash(), aam7_hash(), salc_hash());
	u32 r = 0x15;
	__asm__ volatile("addb $0x27, %%al; daa" : "+a"(r) : : "cc");
	is_u32(r & 0xFF, 0x42, "daa: 15 + 27 = 42 in BCD");
	r = 0x0608;
	__asm__ volatile("aad" : "+a"(r) : : "cc");
	is_u32(r & 0xFFFF, 68, "aad: 06 08 -> 68");

	u32 at;
	static const int bounds[2] = {10, 20};
	EXPECT_TRAP(at, "boundl %%eax, (%%ecx)", "a"(25), "c"(bounds));
	ok(last_trap.vector == 5 && last_trap.eip == at, "bound out of range raises #BR");
	trap_reset();
	__asm__ volatile("boundl %%eax, (%%ecx)" : : "a"(15), "c"(bounds));
	ok(last_trap.count == 0, "bound in range passes");
	u16 sel = 0x10;
	u8 zf;
	__asm__ volatile("arpl %w2, %w0; setz %1" : "+r"(sel), "=q"(zf) : "r"(0x0B) : "cc");
	ok(sel == 0x13 && zf, "arpl raises the RPL");

	u32 esp0, esp1;
	__asm__ volatile("movl %%esp, %0\n"
			 "movl $1, %%eax; movl $2, %%ecx; movl $3, %%edx; movl $4, %%ebx\n"
			 "movl $6, %%esi; movl $7, %%edi\n"
			 "pushal\n"
			 "movl $8, %%ecx\n"
			 "1: movl -4(%%esp,%%ecx,4), %%eax; movl %%eax, pusha_image-4(,%%ecx,4); loop 1b\n"
			 "movl $0, %%eax; movl $0, %%ebx; movl $0, %%edi\n"
			 "popal\n"
			 "movl %%edi, popa_result; movl %%eax, popa_result+4\n"
			 "movl %%esp, %1\n"
			 : "=&m"(esp0), "=&m"(esp1) : : "eax", "ecx", "edx", "ebx", "esi", "edi", "memory");
	ok(pusha_image[0] == 7 && pusha_image[1] == 6 && pusha_image[4] == 4 && pusha_image[7] == 1,
	   "pusha stores the registers in order");
	is_u32(pusha_image[3], esp0, "pusha stores the original ESP");
	ok(popa_result[0] == 7 && popa_result[1] == 1 && esp1 == esp0, "popa restores them and ESP");

	u32 ebp_in, ebp_frame, esp_frame, esp_out;
	__asm__ volatile("movl %%ebp, %0\n"
			 "enter $16, $0\n"
			 "movl %%ebp, %1; movl %%esp, %2\n"
			 "leave\n"
			 "movl %%esp, %3"
			 : "=&r"(ebp_in), "=&r"(ebp_frame), "=&r"(esp_frame), "=&r"(esp_out) : : "memory");
	ok(ebp_frame - esp_frame == 16 && esp_out - ebp_frame == 4, "enter $16 builds a frame, leave undoes it");

	u32 esp_a, esp_b, cs;
	__asm__ volatile("movl %%esp, %0\n"
			 "pushl $0xAAAA; pushl $0xBBBB\n"
			 "lcall $0x18, $far_ret_target\n"
			 "movl %%esp, %1\n"
			 "movw %%cs, %w2\n"
			 : "=&r"(esp_a), "=&r"(esp_b), "=&r"(cs) : : "memory");
	ok(esp_a == esp_b, "lret $8 pops the return address and 8 bytes of arguments");
	is_u32(cs & 0xFFFF, 0x08, "and returns to the caller's CS");
	__asm__ volatile("ljmp $0x08, $1f\n1:");
}

__asm__(".text\n far_ret_target: lret $8\n");
