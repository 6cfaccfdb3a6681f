/* The port bus and the devices on it. */
#include <string.h>
#include <time.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/acpi_pm.h"
#include "devices/ata.h"
#include "devices/console.h"
#include "devices/disk.h"
#include "devices/debug_exit.h"
#include "devices/hpet.h"
#include "devices/i8254.h"
#include "devices/i8259.h"
#include "devices/panic_watch.h"
#include "devices/iobus.h"
#include "devices/mc146818.h"
#include "devices/uart16550.h"
#include "unit.h"

static uint8_t sent[64];
static unsigned n_sent;
static bool irq_level;

static void tx(void *opaque, uint8_t b)
{
	(void)opaque;
	sent[n_sent++] = b;
}

static void set_irq(void *opaque, bool level)
{
	(void)opaque;
	irq_level = level;
}

START_TEST(test_bus_refuses_overlap)
{
	struct iobus bus = {0};
	char err[256];
	ck_assert_int_eq(iobus_register(&bus, 0x3F8, 8, "uart-a", NULL, NULL, NULL, err, sizeof err), 0);
	ck_assert_int_eq(iobus_register(&bus, 0x3FC, 4, "uart-b", NULL, NULL, NULL, err, sizeof err), -1);
	ck_assert(strstr(err, "uart-a") && strstr(err, "uart-b"));
	ck_assert_int_eq(iobus_register(&bus, 0x400, 4, "other", NULL, NULL, NULL, err, sizeof err), 0);
	ck_assert_uint_eq(iobus_read(&bus, 0x1234, 1), 0xFF);
	ck_assert_uint_eq(iobus_read(&bus, 0x1234, 4), 0xFFFFFFFF);
}
END_TEST

START_TEST(test_uart_registers)
{
	struct uart16550 u;
	n_sent = 0;
	uart_init(&u, tx, set_irq, NULL);
	ck_assert_uint_eq(uart_read(&u, 5, 1) & 0x61, 0x60); /* THRE, TEMT, no data */
	uart_write(&u, 7, 1, 0x5A);
	ck_assert_uint_eq(uart_read(&u, 7, 1), 0x5A);
	uart_write(&u, 3, 1, 0x80); /* DLAB */
	uart_write(&u, 0, 1, 0x01);
	uart_write(&u, 1, 1, 0x00);
	ck_assert_uint_eq(uart_read(&u, 0, 1), 0x01);
	uart_write(&u, 3, 1, 0x03);
	uart_write(&u, 0, 1, 'A');
	ck_assert_uint_eq(n_sent, 1);
	ck_assert_uint_eq(sent[0], 'A');
	uart_destroy(&u);
}
END_TEST

static uint64_t fake_ns;
static uint64_t fake_clock(void)
{
	return fake_ns;
}

START_TEST(test_uart_receive_and_interrupt)
{
	struct uart16550 u;
	uart_init(&u, tx, set_irq, NULL);
	irq_level = false;
	uart_write(&u, 4, 1, 0x08); /* OUT2 */
	uart_write(&u, 1, 1, 0x01); /* IER: receive */
	ck_assert_uint_eq(uart_read(&u, 2, 1) & 0x0F, 0x01); /* no interrupt */
	/* FIFOs off: one holding register; the caller keeps the rest. */
	ck_assert_uint_eq(uart_receive(&u, (const uint8_t *)"hi", 2), 1);
	ck_assert(!irq_level); /* the line follows on the VCPU thread */
	uart_poll(&u);
	ck_assert(irq_level);
	ck_assert_uint_eq(uart_read(&u, 5, 1) & 1, 1);       /* DR */
	ck_assert_uint_eq(uart_read(&u, 2, 1) & 0x0F, 0x04); /* received data available */
	ck_assert_uint_eq(uart_read(&u, 0, 1), 'h');
	ck_assert_uint_eq(uart_read(&u, 5, 1) & 1, 0);
	ck_assert(!irq_level);
	ck_assert_uint_eq(uart_next_deadline(&u), UINT64_MAX); /* no timeout without FIFOs */
	uart_destroy(&u);
}
END_TEST

START_TEST(test_uart_fifo_trigger_and_timeout)
{
	struct uart16550 u;
	uart_init(&u, tx, set_irq, NULL);
	u.now_ns = fake_clock;
	fake_ns = 1000;
	irq_level = false;
	uart_write(&u, 3, 1, 0x80); /* 115200 baud */
	uart_write(&u, 0, 1, 0x01);
	uart_write(&u, 1, 1, 0x00);
	uart_write(&u, 3, 1, 0x03); /* 8N1: ten bits a character */
	uart_write(&u, 4, 1, 0x08);
	uart_write(&u, 1, 1, 0x01);
	uart_write(&u, 2, 1, 0x41); /* FIFOs on, trigger level 4 */
	ck_assert_uint_eq(uart_receive(&u, (const uint8_t *)"abc", 3), 3);
	uart_poll(&u);
	ck_assert(!irq_level);                                /* below the trigger level */
	ck_assert_uint_eq(uart_read(&u, 2, 1), 0xC1);
	ck_assert_uint_eq(uart_next_deadline(&u), 1000 + 4 * 8680 * 10);
	fake_ns = 1000 + 4 * 8680 * 10 - 1;
	uart_poll(&u);
	ck_assert(!irq_level);
	fake_ns++;
	uart_poll(&u);
	ck_assert(irq_level);
	ck_assert_uint_eq(uart_read(&u, 2, 1), 0xCC);         /* character timeout */
	ck_assert_uint_eq(uart_read(&u, 0, 1), 'a');
	ck_assert(!irq_level);                                /* reading RBR ends it */
	ck_assert_uint_eq(uart_next_deadline(&u), fake_ns + 4 * 8680 * 10);
	ck_assert_uint_eq(uart_receive(&u, (const uint8_t *)"defghijklmnopqrstu", 18), 14); /* 16 in all */
	uart_poll(&u);
	ck_assert(irq_level);
	ck_assert_uint_eq(uart_read(&u, 2, 1), 0xC4);         /* data at the trigger level */
	uart_write(&u, 2, 1, 0x43);                           /* reset the receive FIFO */
	ck_assert_uint_eq(uart_read(&u, 5, 1) & 1, 0);
	ck_assert(!irq_level);
	ck_assert_uint_eq(uart_next_deadline(&u), UINT64_MAX);
	uart_destroy(&u);
}
END_TEST

START_TEST(test_uart_overrun_line_status)
{
	struct uart16550 u;
	uart_init(&u, tx, set_irq, NULL);
	uart_write(&u, 4, 1, 0x10 | 0x08); /* loopback, OUT2 */
	uart_write(&u, 1, 1, 0x05);        /* IER: receive, line status */
	uart_write(&u, 0, 1, 'x');
	uart_write(&u, 0, 1, 'y');         /* no FIFO: overwrites, overrun */
	ck_assert_uint_eq(uart_read(&u, 2, 1), 0x06);
	ck_assert_uint_eq(uart_read(&u, 5, 1) & 0x03, 0x03); /* OE, DR; reading clears OE */
	ck_assert_uint_eq(uart_read(&u, 2, 1), 0x04);
	ck_assert_uint_eq(uart_read(&u, 0, 1), 'y');
	uart_destroy(&u);
}
END_TEST

START_TEST(test_uart_loopback)
{
	struct uart16550 u;
	n_sent = 0;
	uart_init(&u, tx, set_irq, NULL);
	uart_write(&u, 4, 1, 0x10 | 0x03); /* loop, DTR, RTS */
	uart_write(&u, 0, 1, 0xAE);
	ck_assert_uint_eq(n_sent, 0);
	ck_assert_uint_eq(uart_read(&u, 0, 1), 0xAE);
	ck_assert_uint_eq(uart_read(&u, 6, 1) & 0x30, 0x30); /* DSR, CTS follow DTR, RTS */
	uart_destroy(&u);
}
END_TEST

static int exit_status = -1;
static void on_exit_port(void *opaque, int status)
{
	(void)opaque;
	exit_status = status;
}

static uint64_t fake_ns;
static int powered_off;

static uint64_t fake_now(void)
{
	return fake_ns;
}

static void fake_power_off(void *opaque)
{
	(void)opaque;
	powered_off++;
}

/* The PM timer counts 3.579545 MHz in 24 bits and sets TMR_STS at each
 * bit-23 carry until cleared by a write of 1; SCI_EN reads set; SLP_EN
 * powers off with SLP_TYP 5 only. */
START_TEST(test_acpi_pm_timer_and_sleep)
{
	struct acpi_pm pm;
	fake_ns = 0;
	powered_off = 0;
	acpi_pm_init(&pm, fake_now, fake_power_off, NULL);
	ck_assert_uint_eq(acpi_pm_read(&pm, 8, 4), 0);
	fake_ns = 1000000000u;
	ck_assert_uint_eq(acpi_pm_read(&pm, 8, 4), ACPI_PM_TIMER_HZ);
	ck_assert_uint_eq(acpi_pm_read(&pm, 0, 2) & 1, 0); /* no carry of bit 23 yet */
	fake_ns = 3000000000u;                               /* 10,738,635 ticks: past 2^23 */
	ck_assert_uint_eq(acpi_pm_read(&pm, 8, 4), (3u * ACPI_PM_TIMER_HZ) & 0xFFFFFF);
	ck_assert_uint_eq(acpi_pm_read(&pm, 0, 2) & 1, 1);
	acpi_pm_write(&pm, 0, 2, 1);
	ck_assert_uint_eq(acpi_pm_read(&pm, 0, 2) & 1, 0);
	ck_assert_uint_eq(acpi_pm_read(&pm, 4, 2) & 1, 1);  /* SCI_EN */
	acpi_pm_write(&pm, 4, 2, 0x2000 | 1u << 10);       /* SLP_EN with SLP_TYP 1 */
	ck_assert_int_eq(powered_off, 0);
	acpi_pm_write(&pm, 4, 2, 0x2000 | ACPI_SLP_TYP_S5 << 10);
	ck_assert_int_eq(powered_off, 1);
	ck_assert_uint_eq(acpi_pm_read(&pm, 4, 2), ACPI_SLP_TYP_S5 << 10 | 1); /* SLP_EN reads 0 */
}
END_TEST

static unsigned hpet_edges;

static void hpet_line(void *opaque, bool isa, unsigned n, bool level)
{
	(void)opaque;
	(void)isa;
	(void)n;
	hpet_edges += level;
}

static void hpet_changed(void *opaque)
{
	(void)opaque;
}

/* A one-shot comparator's deadline is the host time of the tick it
 * matches, whatever the moment it is asked: the board re-arms its host
 * timer whenever the deadline moves, and one that moved with every poll
 * cost a timer_settime at each exit.  The timer fires at that time, not a
 * tick before. */
START_TEST(test_hpet_deadline_steady)
{
	struct hpet h;
	fake_ns = 1000;
	hpet_edges = 0;
	hpet_init(&h, fake_now, hpet_line, hpet_changed, NULL);
	hpet_write(&h, 0x010, 4, 1);                 /* enable at 1,000 ns: counter 0 */
	hpet_write(&h, 0x100, 4, 1u << 2);           /* timer 0: edge, interrupt enabled */
	fake_ns = 1234;                               /* tick 23, 4 ns into it */
	hpet_write(&h, 0x108, 4, 500);                /* comparator: tick 500 */
	hpet_write(&h, 0x10C, 4, 0);
	uint64_t want = 1000 + 500 * (HPET_PERIOD_FS / 1000000u);
	for (uint64_t t = 1234; t < want; t += 777) {
		fake_ns = t;
		ck_assert_uint_eq(hpet_next_deadline(&h), want);
		hpet_poll(&h, t);
	}
	ck_assert_uint_eq(hpet_edges, 0);
	fake_ns = want;
	hpet_poll(&h, want);
	ck_assert_uint_eq(hpet_edges, 1);
	ck_assert_uint_eq(hpet_next_deadline(&h), UINT64_MAX); /* one-shot: disarmed */
	/* Only the low half of timer 2's comparator written (Linux's probe
	 * does): the high half keeps its reset value of all ones, a match
	 * thousands of years away, which is no deadline at all rather than
	 * one that wrapped into the past (the board would poll without
	 * sleeping while the guest halts). */
	hpet_write(&h, 0x148, 4, 0x04528E80u);
	ck_assert_uint_eq(hpet_next_deadline(&h), UINT64_MAX);
}
END_TEST

START_TEST(test_exit_port)
{
	struct debug_exit d = {on_exit_port, NULL};
	debug_exit_write(&d, 0, 4, 0);
	ck_assert_int_eq(exit_status, 1);
	debug_exit_write(&d, 0, 1, 0x21);
	ck_assert_int_eq(exit_status, 0x43);
}
END_TEST

static bool pic_out;
static void on_pic(void *opaque, bool level)
{
	(void)opaque;
	pic_out = level;
}

static void pic_program(struct i8259 *p)
{
	pic_write(&p->chip[0], 0, 1, 0x11);
	pic_write(&p->chip[0], 1, 1, 0x20);
	pic_write(&p->chip[0], 1, 1, 0x04);
	pic_write(&p->chip[0], 1, 1, 0x01);
	pic_write(&p->chip[1], 0, 1, 0x11);
	pic_write(&p->chip[1], 1, 1, 0x28);
	pic_write(&p->chip[1], 1, 1, 0x02);
	pic_write(&p->chip[1], 1, 1, 0x01);
}

START_TEST(test_pic_priority_and_eoi)
{
	struct i8259 p;
	pic_init(&p, on_pic, NULL);
	pic_program(&p);
	pic_out = false;
	pic_set_irq(&p, 4, true);
	pic_set_irq(&p, 1, true);
	ck_assert(pic_out);
	ck_assert_int_eq(pic_acknowledge(&p), 0x21); /* IRQ 1 before IRQ 4 */
	ck_assert(!pic_out); /* IRQ 4 is lower than the one in service */
	pic_write(&p.chip[0], 0, 1, 0x20);            /* non-specific EOI */
	ck_assert(pic_out);
	ck_assert_int_eq(pic_acknowledge(&p), 0x24);
	pic_write(&p.chip[0], 0, 1, 0x0B);            /* OCW3: read ISR */
	ck_assert_uint_eq(pic_read(&p.chip[0], 0, 1), 0x10);
	pic_write(&p.chip[0], 0, 1, 0x64);            /* specific EOI for IRQ 4 */
	ck_assert_uint_eq(pic_read(&p.chip[0], 0, 1), 0x00);
	ck_assert_int_eq(pic_acknowledge(&p), -1);
}
END_TEST

START_TEST(test_pic_mask_edge_and_cascade)
{
	struct i8259 p;
	pic_init(&p, on_pic, NULL);
	pic_program(&p);
	pic_write(&p.chip[0], 1, 1, 0xFE);            /* only IRQ 0 */
	pic_set_irq(&p, 3, true);
	ck_assert(!pic_out);
	pic_set_irq(&p, 3, true);                    /* a held line is one edge */
	pic_write(&p.chip[0], 1, 1, 0x00);
	ck_assert(pic_out);
	ck_assert_int_eq(pic_acknowledge(&p), 0x23);
	pic_write(&p.chip[0], 0, 1, 0x20);
	ck_assert_int_eq(pic_acknowledge(&p), -1);
	pic_set_irq(&p, 12, true);                   /* slave IRQ 4 through IRQ 2 */
	ck_assert(pic_out);
	ck_assert_int_eq(pic_acknowledge(&p), 0x2C);
}
END_TEST

static int pulses;
static void on_pulse(void *opaque)
{
	(void)opaque;
	pulses++;
}

START_TEST(test_pit_periods_and_latch)
{
	struct i8254 t;
	pit_init(&t, on_pulse, NULL);
	pit_write(&t, 3, 1, 0x34);                   /* channel 0, lo/hi, mode 2 */
	pit_write(&t, 0, 1, 1193 & 0xFF);
	pit_write(&t, 0, 1, 1193 >> 8);              /* 1 kHz */
	uint64_t start = t.ch[0].start_ns;
	uint64_t d = pit_next_deadline(&t);
	ck_assert(d > start && d - start >= 999000 && d - start <= 1001000);
	pulses = 0;
	pit_poll(&t, start + 500000);
	ck_assert_int_eq(pulses, 0);
	pit_poll(&t, start + 1000100);
	ck_assert_int_eq(pulses, 1);
	pit_poll(&t, start + 5000100);               /* four periods late: one edge */
	ck_assert_int_eq(pulses, 2);
	ck_assert(pit_next_deadline(&t) > start + 5000100);
	pit_write(&t, 3, 1, 0x00);                   /* latch */
	uint16_t v = (uint16_t)(pit_read(&t, 0, 1) | pit_read(&t, 0, 1) << 8);
	ck_assert_uint_le(v, 1193);
	ck_assert_uint_ge(v, 1);
}
END_TEST

/* QEMU's console keys on terminal input: Ctrl-A x quits, Ctrl-A Ctrl-A is
 * one Ctrl-A for the guest, an escape may be split across reads, Ctrl-A c
 * switches to the monitor and back, ending what each call consumes. */
START_TEST(test_console_escape)
{
	struct console_escape st = {0};
	bool quit = false;
	size_t used;
	uint8_t a[] = {'l', 's', CONSOLE_ESCAPE, CONSOLE_ESCAPE, '\r', CONSOLE_ESCAPE, 'z', 'k'};
	size_t n = console_escape(&st, a, sizeof a, &quit, &used);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(used, sizeof a);
	ck_assert_mem_eq(a, "ls\x01\rk", 5);
	ck_assert(!quit && !st.pending);

	uint8_t m[] = {'a', CONSOLE_ESCAPE, 'c', 'i', 'n', CONSOLE_ESCAPE, 'c', 'b'};
	n = console_escape(&st, m, sizeof m, &quit, &used);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(used, 3);
	ck_assert(st.monitor && m[0] == 'a');
	n = console_escape(&st, m + 3, sizeof m - 3, &quit, &used);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(used, 4);
	ck_assert(!st.monitor && !quit);
	ck_assert_mem_eq(m + 3, "in", 2);

	uint8_t b[] = {'e', CONSOLE_ESCAPE};
	n = console_escape(&st, b, sizeof b, &quit, &used);
	ck_assert_uint_eq(n, 1);
	ck_assert(st.pending && !quit);
	uint8_t c[] = {'x', 'l', 'o', 's', 't'};
	n = console_escape(&st, c, sizeof c, &quit, &used);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(used, 1);
	ck_assert(quit);
}
END_TEST

static bool rtc_line;
static void rtc_set_irq(void *opaque, bool level)
{
	(void)opaque;
	rtc_line = level;
}

static uint8_t cmos(struct mc146818 *r, uint8_t reg)
{
	rtc_write(r, 0, 1, reg);
	return (uint8_t)rtc_read(r, 1, 1);
}

static void cmos_set(struct mc146818 *r, uint8_t reg, uint8_t val)
{
	rtc_write(r, 0, 1, reg);
	rtc_write(r, 1, 1, val);
}

/* The RTC tells the host's UTC time in BCD, then binary; a guest write moves
 * its clock; the periodic interrupt sets PF and IRQF until C is read. */
START_TEST(test_rtc_time_and_periodic)
{
	struct mc146818 r;
	rtc_init(&r, 256u << 20, rtc_set_irq, NULL);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	unsigned year = (cmos(&r, 0x32) >> 4) * 1000 + (cmos(&r, 0x32) & 0xF) * 100 +
			(cmos(&r, 0x09) >> 4) * 10 + (cmos(&r, 0x09) & 0xF);
	ck_assert_uint_eq(year, (unsigned)tm.tm_year + 1900);
	ck_assert_uint_eq(cmos(&r, 0x08), (unsigned)((tm.tm_mon + 1) / 10 << 4 | (tm.tm_mon + 1) % 10));
	ck_assert_uint_eq(cmos(&r, 0x0D), 0x80);
	ck_assert_uint_eq(cmos(&r, 0x34) | cmos(&r, 0x35) << 8, (256 - 16) * 16); /* 64 KiB units above 16 MiB */

	cmos_set(&r, RTC_REG_B, RTC_B_24H | RTC_B_BINARY);
	ck_assert_uint_eq(cmos(&r, 0x07), (unsigned)tm.tm_mday);
	cmos_set(&r, 0x09, 99); /* year 2099 (binary) */
	ck_assert_uint_eq(cmos(&r, 0x09), 99);
	ck_assert_uint_eq(cmos(&r, 0x32), (unsigned)(tm.tm_year + 1900) / 100);
	ck_assert(r.offset_s > 0);

	/* 1024 Hz (rate 6) with PIE: no interrupt before the period, one after. */
	uint64_t t0 = pit_now_ns();
	cmos_set(&r, RTC_REG_A, 0x26);
	cmos_set(&r, RTC_REG_B, RTC_B_24H | RTC_B_PIE);
	ck_assert_uint_ge(rtc_next_deadline(&r), t0 + 976000);
	ck_assert_uint_le(rtc_next_deadline(&r), pit_now_ns() + 977000);
	rtc_poll(&r, rtc_next_deadline(&r) - 1);
	ck_assert(!rtc_line);
	rtc_poll(&r, rtc_next_deadline(&r));
	ck_assert(rtc_line);
	ck_assert_uint_eq(cmos(&r, RTC_REG_C), RTC_C_IRQF | RTC_C_PF);
	ck_assert(!rtc_line);
	ck_assert_uint_eq(cmos(&r, RTC_REG_C), 0);
	cmos_set(&r, RTC_REG_B, RTC_B_24H);
	ck_assert_uint_eq(rtc_next_deadline(&r), UINT64_MAX);
}
END_TEST

/* Channel 2's gate (the 82C54 datasheet): low holds a mode-0 count, high
 * resumes it; OUT rises at terminal count. */
START_TEST(test_pit_gate_holds_mode0)
{
	struct i8254 p;
	pit_init(&p, NULL, NULL);
	pit_write(&p, 3, 1, 0xB0); /* channel 2, lo/hi, mode 0 */
	pit_write(&p, 2, 1, 0x00);
	pit_write(&p, 2, 1, 0x01); /* 256 ticks: 215 us */
	ck_assert(!pit_output(&p, 2, pit_now_ns()));
	struct timespec ms = {0, 1000000};
	nanosleep(&ms, NULL);
	pit_write(&p, 3, 1, 0x80); /* latch */
	uint16_t held = (uint16_t)(pit_read(&p, 2, 1) | pit_read(&p, 2, 1) << 8);
	ck_assert_uint_eq(held, 256);
	ck_assert(!pit_output(&p, 2, pit_now_ns()));
	pit_set_gate(&p, 2, true);
	nanosleep(&ms, NULL);
	ck_assert(pit_output(&p, 2, pit_now_ns()));
}
END_TEST


/* A 64-sector image, byte j of sector s = s + j; opened as a disk. */
static void make_disk(struct disk *d, char *path)
{
	char err[256];
	uint8_t sector[DISK_SECTOR];
	strcpy(path, "/tmp/bt86-ata-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	for (unsigned s = 0; s < 64; s++) {
		for (unsigned j = 0; j < DISK_SECTOR; j++)
			sector[j] = (uint8_t)(s + j);
		ck_assert_int_eq(write(fd, sector, sizeof sector), (int)sizeof sector);
	}
	ck_assert_int_eq(write(fd, "tail", 4), 4); /* a partial sector is not part of the disk */
	close(fd);
	ck_assert_int_eq(disk_open(d, path, err, sizeof err), 0);
	ck_assert_uint_eq(d->sectors, 64);
}

static void lba28(struct ata_channel *c, unsigned unit, uint32_t lba, uint8_t count, uint8_t cmd)
{
	ata_write(c, ATA_DEVICE, 1, 0xE0 | unit << 4 | (lba >> 24 & 0xF));
	ata_write(c, ATA_COUNT, 1, count);
	ata_write(c, ATA_LBA_LOW, 1, lba & 0xFF);
	ata_write(c, ATA_LBA_MID, 1, (lba >> 8) & 0xFF);
	ata_write(c, ATA_LBA_HIGH, 1, (lba >> 16) & 0xFF);
	ata_write(c, ATA_STATUS, 1, cmd);
}

START_TEST(test_ata_absent_and_identify)
{
	struct ata_channel c;
	struct disk d;
	char path[32];
	uint8_t id[DISK_SECTOR];

	ata_init(&c, set_irq, NULL);
	ck_assert_uint_eq(ata_read(&c, ATA_STATUS, 1), 0); /* nothing attached reads as zero */
	ata_write(&c, ATA_STATUS, 1, 0xEC);
	ck_assert_uint_eq(ata_control_read(&c, 0, 1), 0);
	make_disk(&d, path);
	ata_attach(&c, 0, &d);
	ata_write(&c, ATA_DEVICE, 1, 0xB0); /* the absent slave */
	ck_assert_uint_eq(ata_read(&c, ATA_STATUS, 1), 0);
	ck_assert_uint_eq(ata_read(&c, ATA_DEVICE, 1), 0xB0);
	ata_write(&c, ATA_DEVICE, 1, 0xA0);
	ata_write(&c, ATA_STATUS, 1, 0xEC);
	ck_assert_uint_eq(ata_read(&c, ATA_STATUS, 1), ATA_SR_DRDY | ATA_SR_DSC | ATA_SR_DRQ);
	ck_assert_uint_eq(ata_read_string(&c, ATA_DATA, 2, id, 1000), 256); /* stops at the block's end */
	ck_assert_uint_eq(ata_read(&c, ATA_STATUS, 1), ATA_SR_DRDY | ATA_SR_DSC);
	uint8_t sum = 0;
	for (unsigned i = 0; i < DISK_SECTOR; i++)
		sum = (uint8_t)(sum + id[i]);
	ck_assert_uint_eq(id[510], 0xA5);
	ck_assert_uint_eq(sum, 0); /* the integrity word's checksum */
	ck_assert_uint_eq(id[120] | id[121] << 8, 64); /* words 60-61 */
	ck_assert(id[54] == 'T' && id[55] == 'B'); /* "BT86...", byte-swapped */
	disk_close(&d);
	unlink(path);
}
END_TEST

START_TEST(test_ata_read_write_and_errors)
{
	struct ata_channel c;
	struct disk d;
	char path[32];
	uint8_t buf[3 * DISK_SECTOR];

	ata_init(&c, set_irq, NULL);
	make_disk(&d, path);
	ata_attach(&c, 1, &d);
	lba28(&c, 1, 10, 3, 0x20);
	for (unsigned s = 0; s < 3; s++) {
		ck_assert(ata_read(&c, ATA_STATUS, 1) & ATA_SR_DRQ);
		ck_assert_uint_eq(ata_read_string(&c, ATA_DATA, 4, buf + s * DISK_SECTOR, 1000), 128);
	}
	ck_assert_uint_eq(buf[0], 10);
	ck_assert_uint_eq(buf[2 * DISK_SECTOR + 5], 12 + 5);
	ck_assert_uint_eq(ata_read(&c, ATA_STATUS, 1), ATA_SR_DRDY | ATA_SR_DSC);
	ck_assert_uint_eq(ata_read(&c, ATA_LBA_LOW, 1), 13);
	ck_assert_uint_eq(c.sectors_read, 3);

	memset(buf, 0xC3, DISK_SECTOR);
	lba28(&c, 1, 63, 1, 0x30);
	ck_assert_uint_eq(ata_read(&c, ATA_STATUS, 1), ATA_SR_DRDY | ATA_SR_DSC | ATA_SR_DRQ);
	for (unsigned i = 0; i < DISK_SECTOR; i += 2)
		ata_write(&c, ATA_DATA, 2, buf[i] | buf[i + 1] << 8);
	ck_assert_uint_eq(ata_read(&c, ATA_STATUS, 1), ATA_SR_DRDY | ATA_SR_DSC);
	memset(buf, 0, DISK_SECTOR);
	ck_assert(disk_read(&d, 63, 1, buf));
	ck_assert_uint_eq(buf[0], 0xC3);
	ck_assert_uint_eq(buf[511], 0xC3);
	ck_assert(!disk_read(&d, 64, 1, buf)); /* past the end */

	lba28(&c, 1, 64, 1, 0x20);
	ck_assert_uint_eq(ata_read(&c, ATA_STATUS, 1), ATA_SR_DRDY | ATA_SR_ERR);
	ck_assert_uint_eq(ata_read(&c, ATA_ERROR, 1), ATA_ER_IDNF | ATA_ER_ABRT);
	lba28(&c, 1, 0, 3, 0xC6); /* SET MULTIPLE 3: not a power of two */
	ck_assert_uint_eq(ata_read(&c, ATA_ERROR, 1), ATA_ER_ABRT);
	lba28(&c, 1, 0, 0, 0x00); /* NOP is always aborted */
	ck_assert_uint_eq(ata_read(&c, ATA_STATUS, 1), ATA_SR_DRDY | ATA_SR_ERR);
	disk_close(&d);
	unlink(path);
}
END_TEST

START_TEST(test_ata_hob_nien_and_reset)
{
	struct ata_channel c;
	struct disk d;
	char path[32];

	ata_init(&c, set_irq, NULL);
	make_disk(&d, path);
	ata_attach(&c, 0, &d);
	irq_level = false;
	ata_write(&c, ATA_COUNT, 1, 0x12);
	ata_write(&c, ATA_COUNT, 1, 0x34);
	ck_assert_uint_eq(ata_read(&c, ATA_COUNT, 1), 0x34);
	ata_control_write(&c, 0, 1, ATA_DC_HOB);
	ck_assert_uint_eq(ata_read(&c, ATA_COUNT, 1), 0x12);
	ata_write(&c, ATA_LBA_LOW, 1, 0); /* any task-file write clears HOB */
	ck_assert_uint_eq(ata_read(&c, ATA_COUNT, 1), 0x34);

	ata_control_write(&c, 0, 1, ATA_DC_NIEN);
	ata_write(&c, ATA_STATUS, 1, 0xE5);           /* CHECK POWER MODE */
	ck_assert(!irq_level);                         /* pending, but nIEN holds the line */
	ata_control_write(&c, 0, 1, 0);
	ck_assert(irq_level);
	ck_assert_uint_eq(ata_control_read(&c, 0, 1), ATA_SR_DRDY | ATA_SR_DSC); /* alternate status */
	ck_assert(irq_level);                          /* does not acknowledge */
	ata_read(&c, ATA_STATUS, 1);
	ck_assert(!irq_level);

	ata_control_write(&c, 0, 1, ATA_DC_SRST);
	ck_assert(ata_control_read(&c, 0, 1) & ATA_SR_BSY);
	ata_control_write(&c, 0, 1, 0);
	ck_assert_uint_eq(ata_read(&c, ATA_STATUS, 1), ATA_SR_DRDY | ATA_SR_DSC);
	ck_assert_uint_eq(ata_read(&c, ATA_COUNT, 1), 1);
	ck_assert_uint_eq(ata_read(&c, ATA_LBA_LOW, 1), 1);
	ck_assert_uint_eq(ata_read(&c, ATA_ERROR, 1), 1);
	disk_close(&d);
	unlink(path);
}
END_TEST

static bool feed(struct panic_watch *w, const char *text)
{
	bool end = false;
	for (; *text; text++)
		end |= panic_watch_byte(w, *text);
	return end;
}

START_TEST(test_panic_watch)
{
	struct panic_watch w = {0};
	ck_assert(!feed(&w, "[    1.0] ---[ end Kernel panic - not syncing: no banner before ]---\r\n"));
	ck_assert(!feed(&w, "echo Kernel panic without the words that follow\n"));
	ck_assert(!w.panicked);
	ck_assert(!feed(&w, "[    5.6] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n"));
	ck_assert(w.panicked);
	ck_assert_str_eq(w.reason, "VFS: Unable to mount root fs");
	ck_assert(!feed(&w, "[    5.7] Call Trace:\r\n"));
	ck_assert(feed(&w, "[    5.8] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs ]---\r\n"));
	ck_assert_str_eq(w.reason, "VFS: Unable to mount root fs"); /* the first panic is the one reported */
}
END_TEST

Suite *devices_suite(void)
{
	Suite *s = suite_create("devices");
	TCase *t = tcase_create("port bus");
	tcase_add_test(t, test_bus_refuses_overlap);
	tcase_add_test(t, test_console_escape);
	tcase_add_test(t, test_rtc_time_and_periodic);
	tcase_add_test(t, test_pit_gate_holds_mode0);
	tcase_add_test(t, test_uart_registers);
	tcase_add_test(t, test_panic_watch);
	tcase_add_test(t, test_ata_absent_and_identify);
	tcase_add_test(t, test_ata_read_write_and_errors);
	tcase_add_test(t, test_ata_hob_nien_and_reset);
	tcase_add_test(t, test_uart_receive_and_interrupt);
	tcase_add_test(t, test_uart_fifo_trigger_and_timeout);
	tcase_add_test(t, test_uart_overrun_line_status);
	tcase_add_test(t, test_uart_loopback);
	tcase_add_test(t, test_exit_port);
	tcase_add_test(t, test_hpet_deadline_steady);
	tcase_add_test(t, test_acpi_pm_timer_and_sleep);
	tcase_add_test(t, test_pic_priority_and_eoi);
	tcase_add_test(t, test_pic_mask_edge_and_cascade);
	tcase_add_test(t, test_pit_periods_and_latch);
	suite_add_tcase(s, t);
	return s;
}
