/* The ACPI tables as an OS finds them: the RSDP by the search of
 * 0xE0000-0xFFFFF, every table the RSDT lists with a valid checksum, the
 * FADT's PM timer counting at 3.579545 MHz (against the 8254's channel 2
 * over 55 ms) and 24 bits wide, SCI on IRQ 9, ACPI mode (entered through
 * SMI_CMD where the FADT has one, as QEMU's does), a DSDT naming \_S5,
 * and a MADT with the bootstrap processor's local APIC, the I/O APIC at
 * 0xFEC00000 and ISA IRQ 0 on GSI 2.  Only what QEMU's tables have too is
 * printed: their OEM IDs, other tables and addresses differ. */
#include "rt/rt.h"

static u32 rd32(u32 a)
{
	return *(volatile u32 *)a;
}

static u8 sum(u32 a, u32 n)
{
	u8 s = 0;
	for (u32 i = 0; i < n; i++)
		s = (u8)(s + *(volatile u8 *)(a + i));
	return s;
}

static int sig_is(u32 a, const char *sig)
{
	for (int i = 0; i < 4; i++)
		if (*(volatile u8 *)(a + (u32)i) != (u8)sig[i])
			return 0;
	return 1;
}

static u32 find(u32 rsdt, const char *sig)
{
	for (u32 i = 0; i < (rd32(rsdt + 4) - 36) / 4; i++)
		if (sig_is(rd32(rsdt + 36 + 4 * i), sig))
			return rd32(rsdt + 36 + 4 * i);
	return 0;
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(12);

	u32 rsdp = 0;
	for (u32 a = 0xE0000; a < 0x100000 && !rsdp; a += 16)
		if (sig_is(a, "RSD ") && sig_is(a + 4, "PTR ") && sum(a, 20) == 0)
			rsdp = a;
	ok(rsdp != 0, "an RSDP with a valid checksum on a 16-byte boundary in 0xE0000-0xFFFFF");
	u32 rsdt = rd32(rsdp + 16);
	ok(sig_is(rsdt, "RSDT") && sum(rsdt, rd32(rsdt + 4)) == 0, "its RSDT, checksum valid");
	u32 bad = 0;
	for (u32 i = 0; i < (rd32(rsdt + 4) - 36) / 4; i++) {
		u32 t = rd32(rsdt + 36 + 4 * i);
		bad += sum(t, rd32(t + 4)) != 0;
	}
	is_u32(bad, 0, "every table it lists has a valid checksum");

	u32 fadt = find(rsdt, "FACP");
	u32 dsdt = rd32(fadt + 40);
	ok(fadt && sig_is(dsdt, "DSDT") && sum(dsdt, rd32(dsdt + 4)) == 0, "a FADT and its DSDT");
	is_u32(*(volatile u16 *)(fadt + 46), 9, "SCI on IRQ 9");
	u32 s5 = 0;
	for (u32 a = dsdt + 36; a + 4 <= dsdt + rd32(dsdt + 4); a++)
		s5 |= sig_is(a, "_S5_") && *(volatile u8 *)(a + 4) == 0x12;
	ok(s5, "the DSDT names \\_S5 as a package");

	u16 pm1a_cnt = (u16)rd32(fadt + 64), smi_cmd = (u16)rd32(fadt + 48);
	if (!(inw(pm1a_cnt) & 1) && smi_cmd) {
		outb(smi_cmd, *(volatile u8 *)(fadt + 52)); /* ACPI_ENABLE */
		for (u32 i = 0; i < 1000000 && !(inw(pm1a_cnt) & 1); i++)
			;
	}
	ok(inw(pm1a_cnt) & 1, "SCI_EN: the machine is in ACPI mode");

	u16 tmr = (u16)rd32(fadt + 76);
	ok(tmr && *(volatile u8 *)(fadt + 91) == 4 && !(rd32(fadt + 112) & (1u << 8)),
	   "a PM timer block, 24 bits wide");
	outb(0x61, (inb(0x61) & ~0x02) | 0x01); /* channel 2: gate high, speaker off */
	outb(0x43, 0xB0);
	outb(0x42, 0xFF);
	outb(0x42, 0xFF); /* 65535 ticks of 1.193182 MHz */
	u32 t0 = inl(tmr) & 0xFFFFFF, high = 0;
	while (!(inb(0x61) & 0x20))
		high |= inl(tmr);
	u32 t1 = inl(tmr) & 0xFFFFFF;
	outb(0x61, inb(0x61) & ~0x01);
	u32 elapsed = (t1 - t0) & 0xFFFFFF;
	printf_serial("PM timer ticks over 65535 PIT ticks: %s\n",
		      elapsed > 3 * 65535 * 9 / 10 && elapsed < 3 * 65535 * 12 / 10 ? "about 3 each" : "WRONG");
	ok(elapsed > 3 * 65535 * 9 / 10 && elapsed < 3 * 65535 * 12 / 10, "the PM timer runs at 3 times the 8254's rate");
	is_u32(high >> 24, 0, "and has 24 bits");

	u32 madt = find(rsdt, "APIC"), lapic0 = 0, ioapic = 0, irq0 = 0;
	for (u32 e = madt + 44; e < madt + rd32(madt + 4); e += *(volatile u8 *)(e + 1)) {
		u8 type = *(volatile u8 *)e;
		if (type == 0 && *(volatile u8 *)(e + 3) == 0 && (rd32(e + 4) & 1))
			lapic0 = 1;
		if (type == 1 && rd32(e + 4) == 0xFEC00000u && rd32(e + 8) == 0)
			ioapic = 1;
		if (type == 2 && *(volatile u8 *)(e + 3) == 0)
			irq0 = rd32(e + 4);
	}
	ok(madt && lapic0 && ioapic, "a MADT: the enabled local APIC 0 and the I/O APIC at 0xFEC00000, GSI base 0");
	is_u32(irq0, 2, "and ISA IRQ 0 on GSI 2");
}
