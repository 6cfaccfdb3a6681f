/* The I/O APIC and the MP table: find the table the firmware left, route
 * the PIT through the I/O APIC pin the table names, and take a
 * level-triggered interrupt (the UART in loopback) with remote IRR held
 * until the EOI.  Only facts both bt86's and QEMU's firmware state are
 * checked. */
#include "rt/rt.h"

#define APIC(off) (*(volatile u32 *)(0xFEE00000u + (off)))

volatile u32 pit_ticks, uart_irqs, remote_irr_in_handler;
static volatile u32 *ioapic;
extern void pit_stub(void), uart_stub(void);
void uart_handler(void);
__asm__(".text\n"
	"pit_stub: incl pit_ticks\n movl $0, 0xFEE000B0\n iret\n"
	"uart_stub: pusha\n call uart_handler\n popa\n iret\n");

static u32 ioapic_read(u32 reg)
{
	ioapic[0] = reg;
	return ioapic[4];
}

static void ioapic_write(u32 reg, u32 val)
{
	ioapic[0] = reg;
	ioapic[4] = val;
}

void uart_handler(void)
{
	uart_irqs++;
	remote_irr_in_handler = (ioapic_read(0x10 + 2 * 4) >> 14) & 1;
	(void)inb(0x3F8);          /* read the byte: the line drops */
	APIC(0xB0) = 0;            /* EOI: remote IRR clears */
}

static u8 sum(const u8 *p, u32 n)
{
	u8 s = 0;
	while (n--)
		s = (u8)(s + *p++);
	return s;
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(10);
	const u8 *fp = 0;
	for (u32 a = 0xF0000; a < 0x100000 && !fp; a += 16)
		if (*(const u32 *)a == 0x5F504D5F && sum((const u8 *)a, 16) == 0) /* "_MP_" */
			fp = (const u8 *)a;
	ok(fp != 0, "an MP floating pointer in the F segment");
	const u8 *t = fp ? (const u8 *)*(const u32 *)(fp + 4) : 0;
	u16 len = t ? *(const u16 *)(t + 4) : 0;
	ok(t && *(const u32 *)t == 0x504D4350 && sum(t, len) == 0, "an MP configuration table with a valid checksum");
	int cpus = 0, bsp = 0;
	u32 ioapic_addr = 0, irq0_pin = 99;
	u8 ioapic_id = 0xFF;
	const u8 *e = t + 44;
	for (u16 i = 0; t && i < *(const u16 *)(t + 34); i++) {
		if (e[0] == 0) {
			cpus++;
			bsp |= (e[3] & 2) != 0;
			e += 20;
			continue;
		}
		if (e[0] == 2) {
			ioapic_id = e[1];
			ioapic_addr = *(const u32 *)(e + 4);
		}
		if (e[0] == 3 && e[1] == 0 && e[5] == 0 && e[6] == ioapic_id)
			irq0_pin = e[7];
		e += 8;
	}
	ok(cpus >= 1 && bsp, "the table names a bootstrap processor");
	is_u32(ioapic_addr, 0xFEC00000, "and an I/O APIC at 0xFEC00000");
	is_u32(irq0_pin, 2, "ISA IRQ 0 arrives on I/O APIC pin 2");

	ioapic = (volatile u32 *)ioapic_addr;
	is_u32(ioapic_read(1) & 0xFF00FF, 0x170020, "24 redirection entries, version 0x20");
	is_u32(ioapic_read(0x10 + 2 * 2) & 0x10000, 0x10000, "entries start masked");

	idt_set(0x30, pit_stub, 0);
	idt_set(0x31, uart_stub, 0);
	outb(0x43, 0x34);
	outb(0x40, 11932 & 0xFF);
	outb(0x40, 11932 >> 8);                 /* 100 Hz */
	ioapic_write(0x10 + 2 * 2 + 1, 0);       /* destination: APIC 0 */
	ioapic_write(0x10 + 2 * 2, 0x30);        /* pin 2: edge, fixed, vector 0x30 */
	__asm__ volatile("sti");
	while (pit_ticks < 10)
		__asm__ volatile("hlt");
	__asm__ volatile("cli");
	ok(pit_ticks >= 10, "the PIT's interrupts arrive through the I/O APIC");
	ioapic_write(0x10 + 2 * 2, 0x10030);     /* mask pin 2 again */

	ioapic_write(0x10 + 2 * 4 + 1, 0);
	ioapic_write(0x10 + 2 * 4, 0x8031);      /* pin 4: level, vector 0x31 */
	outb(0x3F8 + 2, 0x00);                   /* UART: FIFOs off (no trigger level), */
	outb(0x3F8 + 4, 0x18);                   /* loopback, OUT2 */
	outb(0x3F8 + 1, 0x01);                   /* interrupt on received data */
	__asm__ volatile("sti");
	outb(0x3F8, 0x5A);                       /* loops back: the line rises */
	for (int i = 0; i < 1000 && !uart_irqs; i++)
		__asm__ volatile("pause");
	__asm__ volatile("cli");
	u32 remote_after = (ioapic_read(0x10 + 2 * 4) >> 14) & 1;
	/* Out of loopback before printing anything, and drain what looped. */
	outb(0x3F8 + 1, 0x00);
	outb(0x3F8 + 4, 0x00);
	while (inb(0x3F8 + 5) & 1)
		(void)inb(0x3F8);
	outb(0x3F8 + 2, 0xC7);
	ok(uart_irqs == 1 && remote_irr_in_handler == 1, "a level-triggered interrupt holds remote IRR until EOI");
	is_u32(remote_after, 0, "and the EOI clears it");
}
