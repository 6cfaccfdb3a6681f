/* Port I/O: in/out and string I/O to the UART; and cmps/scas as the
 * emulator runs them (an fs: source sends them there), flags included. */
#include "rt/rt.h"

static const char msg[] = "# rep outsb reached the UART\n";

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(10);
	const char *p = msg;
	u32 n = sizeof msg - 1;
	__asm__ volatile("cld; rep outsb" : "+S"(p), "+c"(n) : "d"(0x3F8) : "memory");
	ok(n == 0 && p == msg + sizeof msg - 1, "rep outsb advances ESI and counts ECX down");
	u8 lsr[4] = {0, 0, 0, 0};
	u8 *q = lsr;
	n = 4;
	__asm__ volatile("cld; rep insb" : "+D"(q), "+c"(n) : "d"(0x3FD) : "memory");
	ok(n == 0 && (lsr[0] & 0x60) == 0x60 && (lsr[3] & 0x60) == 0x60, "rep insb reads the line status");
	outb(0x3F8 + 7, 0xA5);
	is_u32(inb(0x3F8 + 7), 0xA5, "the scratch register holds a byte");
	u16 port = 0x3F8 + 7;
	u8 v;
	__asm__ volatile("movb $0x5A, %%al; outb %%al, %%dx; inb %%dx, %%al; movb %%al, %0" : "=r"(v) : "d"(port) : "eax");
	is_u32(v, 0x5A, "out/in through DX");
	outb(0x80, 0x42);
	ok(1, "port 0x80 accepts a write");
	is_u32(inb(0x3F8 + 3) & 0x7F, 0x03, "LCR reads back 8N1");

	static const u8 left[8] = {1, 2, 3, 4, 0x80, 6, 7, 8};
	static const u8 right[8] = {1, 2, 3, 4, 0x7F, 6, 7, 8};
	const u8 *sp = left, *dp = right;
	u32 fl, cnt = 8;
	__asm__ volatile("movw %%ds, %%ax; movw %%ax, %%fs; cld; repe cmpsb %%es:(%%edi), %%fs:(%%esi); pushfl; popl %0"
			 : "=r"(fl), "+S"(sp), "+D"(dp), "+c"(cnt) : : "eax", "memory", "cc");
	ok(cnt == 3 && sp == left + 5 && dp == right + 5, "repe cmpsb (emulated) stops after the first difference");
	is_u32(fl & 0x8D5, 0x810, "and leaves the flags of 0x80 - 0x7F: OF, AF");
	static const u16 words[4] = {7, 7, 9, 7};
	const u16 *wp = words;
	cnt = 4;
	__asm__ volatile("cld; repne scasw %%es:(%%edi), %%ax; pushfl; popl %0" : "=r"(fl), "+D"(wp), "+c"(cnt)
			 : "a"(9) : "memory", "cc");
	ok(cnt == 1 && wp == words + 3 && (fl & 0x40), "repne scasw (translated) finds the word, ZF set");
	static const u32 dwords[2] = {5, 0xFFFFFFF0};
	const u32 *ls = dwords, *ld = dwords + 1;
	__asm__ volatile("cld; cmpsl %%es:(%%edi), %%fs:(%%esi); pushfl; popl %0" : "=r"(fl), "+S"(ls), "+D"(ld)
			 : : "memory", "cc");
	is_u32(fl & 0x8D5, 0x001, "cmpsd (emulated) of 5 - 0xFFFFFFF0: CF alone");
}
