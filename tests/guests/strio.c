/* Port I/O: in/out and string I/O to the UART. */
#include "rt/rt.h"

static const char msg[] = "# rep outsb reached the UART\n";

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(6);
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
}
