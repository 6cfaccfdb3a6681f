/* PCI configuration mechanism #1 as an OS probes it: Linux's type-1 check
 * (a byte write to 0xCFB, CONFIG_ADDRESS reading back 0x80000000), the
 * host bridge and the ISA bridge's header words at 00:00.0 and 00:01.0,
 * byte and word reads at every offset of a dword, a writable command
 * register and read-only IDs, the PIIX3's PIRQ routing, and all ones for
 * absent functions, slots and buses.  Only what QEMU's pc machine has too
 * is read: its other functions and slots are not compared. */
#include "rt/rt.h"

static u32 cfg_addr(u32 bus, u32 dev, u32 fn, u32 reg)
{
	return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xFC);
}

static u32 cfg_read(u32 bus, u32 dev, u32 fn, u32 reg)
{
	outl(0xCF8, cfg_addr(bus, dev, fn, reg));
	return inl(0xCFC);
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(12);

	outb(0xCFB, 0x01);
	u32 saved = inl(0xCF8);
	outl(0xCF8, 0x80000000u);
	u32 back = inl(0xCF8);
	outl(0xCF8, saved);
	printf_serial("CONFIG_ADDRESS reads back %x\n", back);
	is_u32(back, 0x80000000u, "CONFIG_ADDRESS holds a 32-bit write (Linux's type-1 check)");

	for (u32 dev = 0; dev < 2; dev++) {
		printf_serial("00:%02u.0:", dev);
		for (u32 reg = 0; reg < 0x10; reg += 4)
			printf_serial(" %08x", cfg_read(0, dev, 0, reg));
		printf_serial("\n");
	}
	is_u32(cfg_read(0, 0, 0, 0), 0x12378086, "00:00.0 is the i440FX host bridge");
	is_u32(cfg_read(0, 0, 0, 8) >> 8, 0x060000, "of class host bridge");
	is_u32(cfg_read(0, 1, 0, 0), 0x70008086, "00:01.0 is the PIIX3 ISA bridge");
	is_u32(cfg_read(0, 1, 0, 8) >> 8, 0x060100, "of class ISA bridge");
	is_u32(cfg_read(0, 1, 0, 0x0C) >> 16 & 0xFF, 0x80, "a multi-function device");

	outl(0xCF8, cfg_addr(0, 1, 0, 0));
	u32 bytes = 0;
	for (u32 i = 0; i < 4; i++)
		bytes |= (u32)inb((u16)(0xCFC + i)) << 8 * i;
	is_u32(bytes, 0x70008086, "byte reads at 0xCFC-0xCFF give the dword's bytes");
	is_u32(inw(0xCFE), 0x7000, "a word read at 0xCFE its upper half");

	outl(0xCF8, cfg_addr(0, 0, 0, 0));
	outw(0xCFC, 0x1234); /* the vendor ID is read-only */
	outl(0xCF8, cfg_addr(0, 0, 0, 4));
	u16 cmd = inw(0xCFC);
	outw(0xCFC, (u16)(cmd | 0x0004));
	u16 cmd2 = inw(0xCFC);
	outw(0xCFC, cmd);
	printf_serial("command %04x, with bus master %04x\n", cmd, cmd2);
	ok(cfg_read(0, 0, 0, 0) == 0x12378086 && (cmd2 & 0x0004), "the IDs are read-only, the command register is not");

	u32 pirq = cfg_read(0, 1, 0, 0x60);
	printf_serial("PIRQ routing %08x\n", pirq);
	is_u32(pirq, 0x0B0B0A0A, "the PIIX3 routes PIRQA-D to IRQ 10, 10, 11, 11 (SeaBIOS)");

	is_u32(cfg_read(0, 0, 1, 0), 0xFFFFFFFFu, "an absent function reads all ones");
	u32 far = cfg_read(0, 31, 0, 0) & cfg_read(1, 0, 0, 0) & cfg_read(255, 31, 7, 0);
	is_u32(far, 0xFFFFFFFFu, "and so do an empty slot and other buses");
}
