/* Self-modifying code: a patched instruction that has already run, run
 * again; a store into the very next instruction; a loop that rewrites the
 * code it calls. */
#include "rt/rt.h"

extern u8 patch_me[], next_insn[], imm_fn[];
u32 call_patch(void);
u32 store_next(void);
u32 imm_call(void);

__asm__(".text\n"
	"call_patch:\n"
	"patch_me: movl $1, %eax\n"
	"ret\n"
	"store_next:\n"
	"movb $0x2A, next_insn+1\n"
	"next_insn: movb $0x00, %al\n"
	"movzbl %al, %eax\n"
	"ret\n"
	"imm_call:\n"
	"imm_fn: movl $0, %eax\n"
	"ret\n");

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(5);
	u32 a = call_patch();
	*(volatile u32 *)(patch_me + 1) = 2;
	u32 b = call_patch();
	ok(a == 1 && b == 2, "a patched instruction that already ran runs patched");
	is_u32(store_next(), 0x2A, "a store into the next instruction takes effect");
	is_u32(store_next(), 0x2A, "and again once retranslated");
	u32 sum = 0;
	for (u32 i = 1; i <= 100; i++) {
		*(volatile u32 *)(imm_fn + 1) = i;
		sum += imm_call();
	}
	is_u32(sum, 5050, "100 rewrites of a called function");
	u8 *dst = imm_fn + 1;
	u32 cnt = 4;
	__asm__ volatile("cld; rep stosb" : "+D"(dst), "+c"(cnt) : "a"(0x11) : "memory");
	is_u32(imm_call(), 0x11111111, "rep stosb over code");
}
