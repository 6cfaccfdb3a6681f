#include "acpi.h"

#include <string.h>

#include "../devices/acpi_pm.h"
#include "../devices/hpet.h"
#include "../mem/gmem.h"

#define IOAPIC_ID 1 /* as in the MP table */
#define SCI_IRQ 9

/* The tables, in the order they are laid out from ACPI_TABLES_ADDR (each
 * on a 64-byte boundary, which the FACS needs). */
enum { T_RSDP, T_RSDT, T_FADT, T_FACS, T_DSDT, T_MADT, T_HPET, T_COUNT };

struct image {
	uint8_t bytes[0x800];
	uint32_t at[T_COUNT];
	uint32_t len[T_COUNT];
};

static uint8_t checksum(const uint8_t *p, unsigned n)
{
	uint8_t sum = 0;
	while (n--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

/* The standard header of a system description table, its checksum last. */
static void sdt_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "BT86  ", 6);
	memcpy(t + 16, "BT86PC  ", 8);
	put32(t + 24, 1);
	memcpy(t + 28, "BT86", 4);
	put32(t + 32, 1);
}

static uint8_t *place(struct image *im, unsigned t, uint32_t len)
{
	uint32_t at = t == 0 ? 0 : (im->at[t - 1] + im->len[t - 1] + 63) & ~63u;
	im->at[t] = at;
	im->len[t] = len;
	return im->bytes + at;
}

static uint32_t addr(const struct image *im, unsigned t)
{
	return ACPI_TABLES_ADDR + im->at[t];
}

/* Name (_S5, Package (4) {5, 5, 0, 0}): SLP_TYP for PM1a and PM1b; and
 * Scope (\_SB) { Device (PCI0) { Name (_HID, EisaId ("PNP0A03"))
 * Name (_UID, 0) } }: the PCI root bus, which an ACPI OS scans only when
 * the namespace has it.  Hand-assembled (ACPI 6.5 ch. 20). */
static const uint8_t dsdt_aml[] = {
	0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, ACPI_SLP_TYP_S5, 0x0A, ACPI_SLP_TYP_S5, 0x00, 0x00,
	0x10, 0x1C, '_', 'S', 'B', '_',               /* Scope, PkgLength 28 */
	0x5B, 0x82, 0x15, 'P', 'C', 'I', '0',         /* Device, PkgLength 21 */
	0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0A, 0x03, /* DWordConst PNP0A03 */
	0x08, '_', 'U', 'I', 'D', 0x00,
};

static void madt(uint8_t *t, uint32_t len, uint32_t lapic_base, uint32_t ioapic_base)
{
	sdt_header(t, "APIC", len, 1);
	put32(t + 36, lapic_base);
	put32(t + 40, 1); /* PCAT_COMPAT: there are 8259As */
	uint8_t *e = t + 44;
	const uint8_t lapic[8] = {0, 8, 0, 0, 1}; /* processor 0, APIC ID 0, enabled */
	memcpy(e, lapic, 8);
	e += 8;
	uint8_t ioapic[12] = {1, 12, IOAPIC_ID, 0};
	put32(ioapic + 4, ioapic_base); /* GSI base 0 */
	memcpy(e, ioapic, 12);
	e += 12;
	uint8_t irq0[10] = {2, 10, 0, 0};
	put32(irq0 + 4, 2); /* ISA IRQ 0 -> GSI 2, conforming */
	memcpy(e, irq0, 10);
	e += 10;
	uint8_t sci[10] = {2, 10, 0, SCI_IRQ};
	put32(sci + 4, SCI_IRQ);
	put16(sci + 8, 0x000D); /* active high, level-triggered */
	memcpy(e, sci, 10);
	e += 10;
	const uint8_t nmi[6] = {4, 6, 0xFF, 0, 0, 1}; /* every processor: NMI on LINT1 */
	memcpy(e, nmi, 6);
}

int acpi_write(struct gmem *mem, uint32_t lapic_base, uint32_t ioapic_base)
{
	static struct image im;
	memset(&im, 0, sizeof im);
	uint8_t *rsdp = place(&im, T_RSDP, 20);
	uint8_t *rsdt = place(&im, T_RSDT, 36 + 3 * 4);
	uint8_t *fadt = place(&im, T_FADT, 116);
	uint8_t *facs = place(&im, T_FACS, 64);
	uint8_t *dsdt = place(&im, T_DSDT, 36 + sizeof dsdt_aml);
	uint8_t *apic = place(&im, T_MADT, 44 + 8 + 12 + 10 + 10 + 6);
	uint8_t *hpet = place(&im, T_HPET, 56);

	memcpy(facs, "FACS", 4);
	put32(facs + 4, 64);

	sdt_header(dsdt, "DSDT", im.len[T_DSDT], 1);
	memcpy(dsdt + 36, dsdt_aml, sizeof dsdt_aml);

	sdt_header(fadt, "FACP", im.len[T_FADT], 1);
	put32(fadt + 36, addr(&im, T_FACS));
	put32(fadt + 40, addr(&im, T_DSDT));
	fadt[44] = 1; /* INT_MODEL (ACPI 1.0): APIC */
	put16(fadt + 46, SCI_IRQ);
	/* SMI_CMD 0: always in ACPI mode */
	put32(fadt + 56, ACPI_PM1_EVT);
	put32(fadt + 64, ACPI_PM1_CNT);
	put32(fadt + 76, ACPI_PM_TMR);
	fadt[88] = 4; /* PM1_EVT_LEN */
	fadt[89] = 2; /* PM1_CNT_LEN */
	fadt[91] = 4; /* PM_TMR_LEN */
	put16(fadt + 96, 101);  /* P_LVL2_LAT: no C2 */
	put16(fadt + 98, 1001); /* P_LVL3_LAT: no C3 */
	/* CENTURY 0: the RTC keeps no century byte */
	put32(fadt + 112, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 5)); /* WBINVD, PROC_C1, no power or sleep button */

	madt(apic, im.len[T_MADT], lapic_base, ioapic_base);

	sdt_header(hpet, "HPET", im.len[T_HPET], 1);
	put32(hpet + 36, HPET_CAP_LOW);
	put32(hpet + 44, HPET_BASE); /* a memory-space GAS */
	put16(hpet + 53, 128);       /* the minimum periodic tick, as QEMU's */

	sdt_header(rsdt, "RSDT", im.len[T_RSDT], 1);
	put32(rsdt + 36, addr(&im, T_FADT));
	put32(rsdt + 40, addr(&im, T_MADT));
	put32(rsdt + 44, addr(&im, T_HPET));

	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "BT86  ", 6);
	put32(rsdp + 16, addr(&im, T_RSDT));
	rsdp[8] = checksum(rsdp, 20);
	for (unsigned t = T_RSDT; t < T_COUNT; t++)
		if (t != T_FACS)
			im.bytes[im.at[t] + 9] = checksum(im.bytes + im.at[t], im.len[t]);

	uint32_t total = im.at[T_COUNT - 1] + im.len[T_COUNT - 1];
	if (!gmem_is_ram(mem, ACPI_TABLES_ADDR, total))
		return -1;
	gmem_write_block(mem, ACPI_TABLES_ADDR, im.bytes, total);
	return 0;
}
