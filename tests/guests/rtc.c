/* The MC146818 RTC/CMOS at ring 0: the firmware's register settings, the
 * CMOS memory sizes for -m 128, a plausible date in BCD, and the periodic
 * interrupt on IRQ 8 (through the slave 8259A), acknowledged by reading
 * register C. */
#include "rt/rt.h"

volatile u32 rtc_ticks;
volatile u8 last_c;
extern void rtc_stub(void);
__asm__(".text\n"
	"rtc_stub: pushl %eax\n"
	"movb $0x0C, %al\n outb %al, $0x70\n inb $0x71, %al\n movb %al, last_c\n"
	"incl rtc_ticks\n"
	"movb $0x20, %al\n outb %al, $0xA0\n outb %al, $0x20\n"
	"popl %eax\n iret\n");

static u8 cmos(u8 reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static void cmos_set(u8 reg, u8 val)
{
	outb(0x70, reg);
	outb(0x71, val);
}

static u32 bcd(u8 v)
{
	return (v >> 4) * 10 + (v & 0xF);
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(7);
	is_u32(cmos(0x0A) & 0x7F, 0x26, "register A: 32.768 kHz base, 1024 Hz rate");
	is_u32(cmos(0x0B), 0x02, "register B: 24-hour BCD, no interrupts");
	is_u32(cmos(0x0D), 0x80, "register D: valid RAM and time");
	is_u32(cmos(0x34) | cmos(0x35) << 8, (128 - 16) * 16, "CMOS: memory above 16 MiB in 64 KiB units");
	u32 year = bcd(cmos(0x32)) * 100 + bcd(cmos(0x09));
	u32 month = bcd(cmos(0x08)), day = bcd(cmos(0x07)), hour = bcd(cmos(0x04));
	ok(year >= 2024 && year < 2100 && month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour < 24,
	   "a plausible date and time in BCD");

	outb(0x20, 0x11); outb(0xA0, 0x11);   /* ICW1: edge, cascade, ICW4 */
	outb(0x21, 0x20); outb(0xA1, 0x28);   /* ICW2: vectors 0x20, 0x28 */
	outb(0x21, 0x04); outb(0xA1, 0x02);   /* ICW3 */
	outb(0x21, 0x01); outb(0xA1, 0x01);   /* ICW4: 8086 mode */
	outb(0x21, 0xFB); outb(0xA1, 0xFE);   /* only IRQ 8, through the cascade */
	idt_set(0x28, rtc_stub, 0);
	cmos(0x0C);
	cmos_set(0x0B, 0x42);                 /* PIE, 24-hour BCD */
	__asm__ volatile("sti");
	while (rtc_ticks < 50)
		__asm__ volatile("hlt");
	__asm__ volatile("cli");
	ok(rtc_ticks >= 50, "50 periodic interrupts wake hlt");
	is_u32(last_c & 0xC0, 0xC0, "register C reports IRQF and PF");
	cmos_set(0x0B, 0x02);
}
