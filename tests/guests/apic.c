/* The local APIC: the periodic and one-shot timer, masking, the task
 * priority holding back an interrupt, self-IPIs (fixed and NMI), an
 * interrupt waiting at sti taken right after its shadow, and LINT0 gating
 * the 8259A in virtual wire mode. */
#include "rt/rt.h"

#define APIC(off) (*(volatile u32 *)(0xFEE00000u + (off)))

volatile u32 timer_ticks, ipis, nmis, pic_ticks, seen_ecx;
extern void timer_stub(void), ipi_stub(void), pic_stub(void), ecx_stub(void);
__asm__(".text\n"
	"timer_stub: incl timer_ticks\n movl $0, 0xFEE000B0\n iret\n"
	"ipi_stub: incl ipis\n movl $0, 0xFEE000B0\n iret\n"
	"ecx_stub: movl %ecx, seen_ecx\n movl $0, 0xFEE000B0\n iret\n"
	"pic_stub: incl pic_ticks\n pushl %eax\n movb $0x20, %al\n outb %al, $0x20\n popl %eax\n iret\n");

static int on_nmi(struct trap_frame *f)
{
	if (f->vector != 2)
		return 0;
	nmis++;
	return 1;
}

/* Interrupts raised by an MMIO write are taken at the next instruction
 * boundary on hardware (and in bt86); QEMU's TCG takes them at the end of
 * its translation block.  Poll a little, so both agree on delivery. */
static void settle(volatile u32 *counter, u32 want)
{
	for (int i = 0; i < 1000 && *counter < want; i++)
		__asm__ volatile("pause");
}

/* Waits for n periods of PIT channel 0 (the firmware's 18.2 Hz), polled. */
static void wait_pit_periods(u32 n)
{
	outb(0x43, 0x00);
	u16 last = (u16)(inb(0x40) | inb(0x40) << 8);
	while (n) {
		outb(0x43, 0x00);
		u16 now = (u16)(inb(0x40) | inb(0x40) << 8);
		if (now > last)
			n--;
		last = now;
	}
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(13);
	fault_hook = on_nmi;
	idt_set(0x40, timer_stub, 0);
	idt_set(0x50, ipi_stub, 0);
	idt_set(0x20, pic_stub, 0);
	idt_set(0x51, ecx_stub, 0);

	APIC(0x3E0) = 0x3;                    /* divide by 16: 62.5 MHz */
	APIC(0x320) = 0x20040;                /* periodic, vector 0x40 */
	APIC(0x380) = 625000;                 /* 10 ms */
	__asm__ volatile("sti");
	while (timer_ticks < 10)
		__asm__ volatile("hlt");
	ok(timer_ticks >= 10, "the periodic timer wakes hlt ten times");
	APIC(0x380) = 0;                      /* stop */
	__asm__ volatile("cli");

	APIC(0x320) = 0x00040;                /* one-shot */
	APIC(0x380) = 6250000;                /* 100 ms */
	u32 c1 = APIC(0x390), c2 = APIC(0x390);
	ok(c1 <= 6250000 && c2 <= c1, "the one-shot current count runs down");
	u32 before = timer_ticks;
	__asm__ volatile("sti");
	while (timer_ticks == before)
		__asm__ volatile("hlt");
	wait_pit_periods(2);
	__asm__ volatile("cli");
	ok(timer_ticks == before + 1 && APIC(0x390) == 0, "the one-shot fires once and stops at 0");

	APIC(0x320) = 0x30040;                /* periodic, masked */
	APIC(0x380) = 62500;                  /* 1 ms */
	before = timer_ticks;
	__asm__ volatile("sti");
	wait_pit_periods(2);
	__asm__ volatile("cli");
	APIC(0x380) = 0;
	is_u32(timer_ticks, before, "a masked timer raises nothing");

	APIC(0x80) = 0x50;                    /* TPR above vector 0x40's class */
	is_u32(APIC(0xA0), 0x50, "PPR follows the TPR");
	__asm__ volatile("sti");
	APIC(0x300) = 0x40040;                /* self-IPI, vector 0x40 */
	is_u32(timer_ticks, before, "the task priority holds a lower interrupt back");
	ok(APIC(0x220) & 1, "and it waits in the IRR");
	APIC(0x80) = 0;
	settle(&timer_ticks, before + 1);
	is_u32(timer_ticks, before + 1, "lowering the priority delivers it");
	APIC(0x300) = 0x40050;                /* self-IPI, vector 0x50 */
	settle(&ipis, 1);
	ok(ipis == 1, "a fixed self-IPI is delivered");
	__asm__ volatile("cli");
	APIC(0x300) = 0x40400;                /* self NMI */
	settle(&nmis, 1);
	ok(nmis == 1, "an NMI by IPI arrives with IF = 0");

	/* A self-IPI made while IF = 0 waits for sti and its shadow (the
	 * nop): it is taken before the first add, whether the flags are dead
	 * there (add) or live (adc reads CF). */
	u32 ecx;
	seen_ecx = 99;
	APIC(0x300) = 0x40051;
	__asm__ volatile("xorl %0, %0\n sti\n nop\n addl $1, %0\n addl $1, %0\n cli" : "=c"(ecx) : : "cc");
	ok(seen_ecx == 0 && ecx == 2, "an interrupt waiting at sti comes after its shadow (flags dead next)");
	seen_ecx = 99;
	APIC(0x300) = 0x40051;
	__asm__ volatile("xorl %0, %0\n sti\n nop\n adcl $1, %0\n addl $1, %0\n cli" : "=c"(ecx) : : "cc");
	ok(seen_ecx == 0 && ecx == 2, "an interrupt waiting at sti comes after its shadow (flags live next)");

	/* Virtual wire: the 8259A reaches the CPU only through LINT0. */
	outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x01);
	outb(0x21, 0xFE);                     /* IRQ 0 (the PIT) only */
	APIC(0x350) = 0x18700;                /* LINT0 masked */
	__asm__ volatile("sti");
	wait_pit_periods(2);
	u32 masked = pic_ticks;
	APIC(0x350) = 0x08700;                /* LINT0 open again */
	wait_pit_periods(2);
	__asm__ volatile("cli");
	ok(masked == 0 && pic_ticks > 0, "LINT0 gates the 8259A's interrupts");
}
