/* The timer and interrupt controllers at ring 0: the 8259A pair remapped,
 * the 8254 at 100 Hz on IRQ 0, hlt waiting for ticks, ticks held off by
 * cli, a pending tick taken right after sti, and channel 2 gated through
 * port 0x61. */
#include "rt/rt.h"

volatile u32 ticks;
extern void tick_stub(void);
__asm__(".text\n"
	"tick_stub: incl ticks\n"
	"pushl %eax\n movb $0x20, %al\n outb %al, $0x20\n popl %eax\n"
	"iret\n");

static u16 pit_count(void)
{
	outb(0x43, 0x00); /* latch channel 0 */
	u8 lo = inb(0x40);
	return (u16)(lo | inb(0x40) << 8);
}

static u16 ch2_count(void)
{
	outb(0x43, 0x80); /* latch channel 2 */
	u8 lo = inb(0x42);
	return (u16)(lo | inb(0x42) << 8);
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(9);
	outb(0x20, 0x11); outb(0xA0, 0x11);   /* ICW1: edge, cascade, ICW4 */
	outb(0x21, 0x20); outb(0xA1, 0x28);   /* ICW2: vectors 0x20, 0x28 */
	outb(0x21, 0x04); outb(0xA1, 0x02);   /* ICW3 */
	outb(0x21, 0x01); outb(0xA1, 0x01);   /* ICW4: 8086 mode */
	outb(0x21, 0xFE); outb(0xA1, 0xFF);   /* only IRQ 0 */
	is_u32(inb(0x21), 0xFE, "the master's IMR reads back");
	idt_set(0x20, tick_stub, 0);
	outb(0x43, 0x34);                     /* channel 0, lo/hi, mode 2 */
	outb(0x40, 11932 & 0xFF);
	outb(0x40, 11932 >> 8);               /* 100 Hz */
	u16 a = pit_count(), b = pit_count();
	ok(a <= 11932 && b <= 11932, "the latched count is within the period");

	__asm__ volatile("sti");
	while (ticks < 20)
		__asm__ volatile("hlt");
	__asm__ volatile("cli");
	ok(ticks >= 20, "20 timer interrupts wake hlt");

	u32 before = ticks, wraps = 0;
	u16 last = pit_count();
	while (wraps < 3) { /* three periods pass with interrupts off */
		u16 now = pit_count();
		if (now > last)
			wraps++;
		last = now;
	}
	is_u32(ticks, before, "no interrupt while IF = 0");
	u32 after;
	__asm__ volatile("sti; nop; movl ticks, %0; cli" : "=r"(after));
	is_u32(after, before + 1, "the pending tick arrives right after sti, once");
	outb(0x21, 0xFF);                     /* mask IRQ 0 at the PIC */
	before = ticks;
	wraps = 0;
	__asm__ volatile("sti");
	while (wraps < 3) {
		u16 now = pit_count();
		if (now > last)
			wraps++;
		last = now;
	}
	__asm__ volatile("cli");
	is_u32(ticks, before, "a masked IRQ is not delivered");
	outb(0x20, 0x0A);                     /* OCW3: read IRR */
	ok(inb(0x20) & 1, "the masked tick waits in the IRR");

	/* Channel 2, gated by port 0x61 bit 0, its output on bit 5: the way
	 * Linux calibrates its TSC. */
	/* (A low gate holding the count in mode 0 is left out: QEMU keeps
	 * counting, the 82C54 datasheet holds; see docs.) */
	outb(0x61, (inb(0x61) & ~0x02) | 0x01); /* gate high, speaker off */
	outb(0x43, 0xB0);                     /* channel 2, lo/hi, mode 0 */
	outb(0x42, 0xFF);
	outb(0x42, 0xFF);                     /* 65535 ticks: 55 ms */
	u16 start = ch2_count();
	ok(start > 0x8000 && !(inb(0x61) & 0x20), "channel 2 counts down from its load, OUT2 low");
	u32 polls = 0;
	while (!(inb(0x61) & 0x20) && polls < 100000000u)
		polls++;
	ok((inb(0x61) & 0x20) && ch2_count() > 0x1000, "with its gate high it counts to 0 and raises OUT2");
	outb(0x61, inb(0x61) & ~0x01);
}
