/* The 16550A's receiver as Linux's 8250 driver uses it, in loopback mode
 * so that the guest is its own sender: the FIFO's trigger level, the
 * character timeout (bytes below the trigger level, nothing received or
 * read for four character times), the 16-byte depth and its overrun, the
 * line-status interrupt, the 16450 mode with FIFOs off, and the
 * transmitter-empty interrupt.  The results are printed once the port
 * leaves loopback, which would swallow them. */
#include "rt/rt.h"

#define CHECKS 13
static int results[CHECKS];
static const char *names[CHECKS];
static u32 got_v[CHECKS], want_v[CHECKS];
static int n_checks;

static void check(int cond, const char *desc)
{
	results[n_checks] = cond;
	names[n_checks++] = desc;
}

static void check_u32(u32 got, u32 want, const char *desc)
{
	got_v[n_checks] = got;
	want_v[n_checks] = want;
	check(got == want, desc);
}

#define COM1 0x3F8
#define RBR (COM1 + 0)
#define IER (COM1 + 1)
#define IIR (COM1 + 2)
#define FCR (COM1 + 2)
#define LCR (COM1 + 3)
#define MCR (COM1 + 4)
#define LSR (COM1 + 5)

/* Spins until IIR leaves `from` (bounded), returning the new value. */
static u8 iir_after(u8 from)
{
	u8 v = from;
	for (u32 i = 0; i < 20000000 && v == from; i++)
		v = inb(IIR);
	return v;
}

static void send(const char *s)
{
	for (; *s; s++)
		outb(COM1, (u8)*s);
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	outb(IER, 0);
	outb(LCR, 0x80); /* 1200 baud: a character takes 8.3 ms */
	outb(COM1, 96);
	outb(IER, 0);
	outb(LCR, 0x03); /* 8N1 */
	outb(FCR, 0x47); /* FIFOs on and emptied, trigger level 4 */
	outb(MCR, 0x18); /* loopback, OUT2 */
	check_u32(inb(IIR), 0xC1, "FIFOs on: IIR bits 7-6 set, no interrupt");
	outb(IER, 0x01);
	send("abc");
	u8 lsr = inb(LSR);
	check_u32(inb(IIR), 0xC1, "3 bytes under a trigger level of 4: no interrupt yet");
	check(lsr & 1, "but the line status shows data ready");
	check_u32(iir_after(0xC1), 0xCC, "four character times later: the character timeout");
	u8 a = inb(RBR);
	check(a == 'a' && inb(IIR) == 0xC1, "reading a byte ends the timeout indication");
	send("de");
	check_u32(inb(IIR), 0xC4, "4 bytes: received data at the trigger level");
	char got[17];
	for (int i = 0; i < 4; i++)
		got[i] = (char)inb(RBR);
	check(got[0] == 'b' && got[3] == 'e' && inb(IIR) == 0xC1 && !(inb(LSR) & 1), "the FIFO drained in order");

	outb(IER, 0x05); /* and line status */
	send("0123456789ABCDEFG");
	check_u32(inb(IIR), 0xC6, "17 bytes into 16: overrun, a line-status interrupt first");
	lsr = inb(LSR);
	check((lsr & 0x03) == 0x03 && inb(IIR) == 0xC4, "LSR shows the overrun once; data remains");
	int n = 0;
	while ((inb(LSR) & 1) && n < 17)
		got[n++] = (char)inb(RBR);
	check(n == 16 && got[0] == '0' && got[15] == 'F', "the FIFO kept the first 16 bytes");

	outb(FCR, 0x00); /* FIFOs off: the 16450's single register */
	outb(IER, 0x01);
	send("x");
	check_u32(inb(IIR), 0x04, "FIFOs off: IIR bits 7-6 clear, data at the first byte");
	send("y");
	check((inb(LSR) & 0x02) && inb(RBR) == 'y', "a second byte overwrites the first, with an overrun");
	outb(IER, 0x02);
	u8 thr = inb(IIR);
	check(thr == 0x02 && inb(IIR) == 0x01, "transmitter empty when enabled, cleared by reading IIR");
	outb(IER, 0);
	outb(MCR, 0x03);
	plan(CHECKS);
	for (int i = 0; i < n_checks; i++) {
		if (!results[i] && got_v[i] != want_v[i])
			printf_serial("# got %02x, want %02x\n", got_v[i], want_v[i]);
		ok(results[i], names[i]);
	}
	done();
}
