/* NMI blocking (SDM vol. 3 6.7.1): an NMI sent from inside the NMI handler
 * waits until the handler's iret, then arrives, once; an iret that is not
 * an NMI's own (a software interrupt's, inside the handler) unblocks them
 * too.  NMIs come from the local APIC as self-IPIs. */
#include "rt/rt.h"

#define APIC(off) (*(volatile u32 *)(0xFEE00000u + (off)))

static volatile u32 nmis, nested, in_nmi, seen_during, mode;

static void self_nmi(void)
{
	APIC(0x310) = 0;
	APIC(0x300) = 0x40400; /* self, NMI */
}

static void spin(void)
{
	for (volatile int i = 0; i < 20000; i++)
		__asm__ volatile("pause");
}

static int on_nmi(struct trap_frame *f)
{
	if (f->vector != 2)
		return 0;
	if (in_nmi)
		nested++;
	in_nmi = 1;
	if (++nmis == 1) {
		self_nmi();
		spin();
		seen_during = nmis;
		if (mode == 1) {
			__asm__ volatile("int $48"); /* its iret unblocks NMIs */
			spin();
			seen_during = nmis;
		}
	}
	in_nmi = 0;
	return 1;
}

static void settle(u32 want)
{
	for (int i = 0; i < 100000 && nmis < want; i++)
		__asm__ volatile("pause");
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(5);
	fault_hook = on_nmi;
	APIC(0xF0) = 0x1FF; /* software enable */
	__asm__ volatile("cli");

	self_nmi();
	settle(2);
	printf_serial("nmis %u, seen inside the handler %u, nested %u\n", nmis, seen_during, nested);
	is_u32(seen_during, 1, "an NMI sent inside the NMI handler waits");
	is_u32(nmis, 2, "and arrives after the handler's iret");
	is_u32(nested, 0, "never inside the first");

	nmis = nested = 0;
	mode = 1;
	self_nmi();
	settle(2);
	printf_serial("with an int inside: nmis %u, seen after its iret %u, nested %u\n", nmis, seen_during, nested);
	is_u32(seen_during, 2, "an int's iret inside the handler unblocks NMIs: the second arrives there");
	is_u32(nested, 1, "nested in the first handler");
}
