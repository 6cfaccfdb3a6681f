/* ATA PIO on the primary channel, master and slave, against two 1 MiB raw
 * images whose sectors carry a known pattern (tests/guests/mkdisk.py):
 * reset signatures, IDENTIFY, 28- and 48-bit reads, READ/WRITE MULTIPLE,
 * 16- and 32-bit data transfers, the task file after a transfer, errors,
 * and the interrupt request.  run_guest.sh compares the images both
 * systems leave behind, so what the writes put on the disk is checked
 * against QEMU too.
 *
 * Status is compared without DSC (0x10): whether a command sets it varies
 * between drives and between QEMU's commands, and no driver relies on it. */
#include "rt/rt.h"

#define DATA 0x1F0
#define ERR_FEAT 0x1F1
#define COUNT 0x1F2
#define LBA0 0x1F3
#define LBA1 0x1F4
#define LBA2 0x1F5
#define DEV 0x1F6
#define CMD 0x1F7
#define CTL 0x3F6
#define ST_MASK 0xE9 /* BSY, DRDY, DF, DRQ, ERR */
#define SECTORS 2048u

static u8 buf[16 * 512];

/* The byte mkdisk.py puts at offset j of sector s of disk d. */
static u8 pattern(u32 d, u32 s, u32 j)
{
	return (u8)(s * 13 + j * 7 + d * 101);
}

static int sectors_match(u32 d, u32 first, u32 n, const u8 *p)
{
	for (u32 s = 0; s < n; s++)
		for (u32 j = 0; j < 512; j++)
			if (p[s * 512 + j] != pattern(d, first + s, j))
				return 0;
	return 1;
}

static u8 status(void)
{
	u8 s;
	while ((s = inb(CTL)) & 0x80)
		;
	return inb(CMD) & ST_MASK;
}

static void insw(void *p, u32 words)
{
	__asm__ volatile("cld; rep insw" : "+D"(p), "+c"(words) : "d"(DATA) : "memory");
}

static void insl(void *p, u32 dwords)
{
	__asm__ volatile("cld; rep insl" : "+D"(p), "+c"(dwords) : "d"(DATA) : "memory");
}

static void outsw(const void *p, u32 words)
{
	__asm__ volatile("cld; rep outsw" : "+S"(p), "+c"(words) : "d"(DATA) : "memory");
}

static void outsl(const void *p, u32 dwords)
{
	__asm__ volatile("cld; rep outsl" : "+S"(p), "+c"(dwords) : "d"(DATA) : "memory");
}

/* A 28-bit LBA command on drive `unit`. */
static void command28(u32 unit, u8 cmd, u32 lba, u8 count)
{
	outb(DEV, (u8)(0xE0 | unit << 4 | (lba >> 24 & 0xF)));
	outb(COUNT, count);
	outb(LBA0, (u8)lba);
	outb(LBA1, (u8)(lba >> 8));
	outb(LBA2, (u8)(lba >> 16));
	outb(CMD, cmd);
}

static u16 word(u32 i)
{
	return (u16)(buf[2 * i] | buf[2 * i + 1] << 8);
}

static void fill_written(u32 n, u8 seed)
{
	for (u32 i = 0; i < n * 512; i++)
		buf[i] = (u8)(i * 3 + seed);
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(24);

	outb(CTL, 0x06); /* SRST, nIEN */
	outb(CTL, 0x02);
	outb(DEV, 0xA0);
	u8 st = status();
	ok(st == 0x40 && inb(COUNT) == 1 && inb(LBA0) == 1 && inb(LBA1) == 0 && inb(LBA2) == 0,
	   "master: ready after a soft reset, with the ATA signature");
	is_u32(inb(ERR_FEAT), 0x01, "master: diagnostic code 01h after reset");
	outb(DEV, 0xB0);
	ok(status() == 0x40 && inb(COUNT) == 1 && inb(LBA0) == 1 && inb(LBA1) == 0 && inb(LBA2) == 0,
	   "slave: ready with the ATA signature");

	outb(DEV, 0xA0);
	outb(CMD, 0xEC);
	st = status();
	insw(buf, 256);
	ok(st == 0x48 && status() == 0x40, "IDENTIFY: DRQ for one block, then ready");
	ok(!(word(0) & 0x8000) && (word(49) & 0x0200) && (word(83) & 0x0400),
	   "IDENTIFY: an ATA device with LBA and 48-bit addressing");
	is_u32(word(60) | (u32)word(61) << 16, SECTORS, "IDENTIFY: 28-bit capacity is the image's sectors");
	is_u32(word(100) | (u32)word(101) << 16, SECTORS, "IDENTIFY: 48-bit capacity too");
	ok(word(27) != 0x2020 && word(27) != 0, "IDENTIFY: a model name");
	/* Word 59 after a SET MULTIPLE differs: QEMU repeats the first
	 * IDENTIFY's data (docs/architecture.md). */
	is_u32(word(59), 0x110, "IDENTIFY: READ/WRITE MULTIPLE in blocks of 16 from power-on");

	command28(0, 0x20, 5, 1);
	st = status();
	insw(buf, 256);
	ok(st == 0x48 && sectors_match(0, 5, 1, buf) && status() == 0x40, "READ SECTORS: LBA 5 by rep insw");

	command28(0, 0x20, 7, 3);
	int good = 1;
	for (u32 s = 0; s < 3; s++) {
		good &= status() == 0x48;
		insl(buf + s * 512, 128);
	}
	ok(good && sectors_match(0, 7, 3, buf) && status() == 0x40, "READ SECTORS: 3 sectors by rep insl, DRQ each");
	ok(inb(COUNT) == 0 && inb(LBA0) == 10 && (inb(DEV) & 0x4F) == 0x40,
	   "the task file addresses the sector after the transfer");

	fill_written(2, 0x11);
	command28(0, 0x30, 20, 2);
	good = status() == 0x48;
	outsw(buf, 256);
	good &= status() == 0x48;
	outsw(buf + 512, 256);
	ok(good && status() == 0x40, "WRITE SECTORS: 2 sectors by rep outsw");
	outb(CMD, 0xE7);
	is_u32(status(), 0x40, "FLUSH CACHE");
	for (u32 i = 0; i < 1024; i++)
		buf[i] = 0;
	command28(0, 0x20, 20, 2);
	status();
	insw(buf, 256);
	status();
	insw(buf + 512, 256);
	good = 1;
	for (u32 i = 0; i < 1024; i++)
		good &= buf[i] == (u8)(i * 3 + 0x11);
	ok(good, "the written sectors read back");

	outb(DEV, 0x40);
	outb(COUNT, 0); outb(COUNT, 2);
	outb(LBA0, 0); outb(LBA0, 1500 & 0xFF);
	outb(LBA1, 0); outb(LBA1, 1500 >> 8);
	outb(LBA2, 0); outb(LBA2, 0);
	outb(CMD, 0x24);
	status();
	insw(buf, 256);
	status();
	insw(buf + 512, 256);
	ok(sectors_match(0, 1500, 2, buf) && status() == 0x40, "READ SECTORS EXT: LBA 1500, 2 sectors");

	outb(DEV, 0xE0);
	outb(COUNT, 4);
	outb(CMD, 0xC6);
	is_u32(status(), 0x40, "SET MULTIPLE MODE 4");
	command28(0, 0xC4, 100, 6);
	good = status() == 0x48;
	insl(buf, 4 * 128);
	good &= status() == 0x48;
	insl(buf + 4 * 512, 2 * 128);
	ok(good && sectors_match(0, 100, 6, buf) && status() == 0x40, "READ MULTIPLE: blocks of 4, then 2");
	fill_written(5, 0x5A);
	command28(0, 0xC5, 40, 5);
	good = status() == 0x48;
	outsl(buf, 4 * 128);
	good &= status() == 0x48;
	outsl(buf + 4 * 512, 128);
	ok(good && status() == 0x40, "WRITE MULTIPLE: 5 sectors by rep outsl");

	/* QEMU sets only ABRT; ATA asks for IDNF too, which bt86 adds. */
	command28(0, 0x20, SECTORS + 10, 1);
	st = status();
	ok(st == 0x41 && (inb(ERR_FEAT) & 0x04), "a read past the end: ERR, aborted");
	outb(CMD, 0x50);
	st = status();
	ok(st == 0x41 && inb(ERR_FEAT) == 0x04, "an unknown command: ERR, ABRT");

	command28(1, 0x20, 0, 2);
	status();
	insw(buf, 256);
	status();
	insw(buf + 512, 256);
	ok(sectors_match(1, 0, 2, buf) && status() == 0x40, "slave: its own image's sectors 0 and 1");
	fill_written(1, 0xC3);
	command28(1, 0x30, 3, 1);
	status();
	outsw(buf, 256);
	is_u32(status(), 0x40, "slave: WRITE SECTORS");

	/* The interrupt request reaches the slave 8259A's IR6 (IRQ 14), masked
	 * at the chip so it is only latched. */
	outb(0xA1, 0xFF);
	outb(CTL, 0x00);
	outb(DEV, 0xA0);
	outb(CMD, 0xE5);
	while (inb(CTL) & 0x80)
		;
	outb(0xA0, 0x0A);
	ok((inb(0xA0) & 0x40) && inb(COUNT) == 0xFF, "CHECK POWER MODE: active, and IRQ 14 requested");
	outb(CTL, 0x02);
	inb(CMD);
	done();
}
