#include "mptable.h"

#include <string.h>

#include "../mem/gmem.h"

#define IOAPIC_ID 1

static uint8_t checksum(const uint8_t *p, unsigned n)
{
	uint8_t sum = 0;
	while (n--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

int mptable_write(struct gmem *mem, uint32_t lapic_base, uint32_t ioapic_base, uint32_t cpu_signature,
		  uint32_t cpu_features)
{
	uint8_t t[512];
	unsigned n = 44, entries = 0;
	uint32_t table_at = MPTABLE_ADDR + 16;

	memset(t, 0, sizeof t);
	/* processor: APIC ID 0, version 0x14, enabled bootstrap processor */
	uint8_t cpu[20] = {0, 0, 0x14, 3};
	memcpy(cpu + 4, &cpu_signature, 4);
	memcpy(cpu + 8, &cpu_features, 4);
	memcpy(t + n, cpu, 20);
	n += 20;
	entries++;
	/* bus 0: ISA */
	const uint8_t bus[8] = {1, 0, 'I', 'S', 'A', ' ', ' ', ' '};
	memcpy(t + n, bus, 8);
	n += 8;
	entries++;
	/* the I/O APIC, version 0x20, enabled */
	uint8_t ioapic[8] = {2, IOAPIC_ID, 0x20, 1};
	memcpy(ioapic + 4, &ioapic_base, 4);
	memcpy(t + n, ioapic, 8);
	n += 8;
	entries++;
	/* I/O interrupts: the 8259A as ExtINT on pin 0, ISA IRQ 0 on pin 2,
	 * IRQ 1-15 on their own pins (IRQ 2 is the cascade). */
	const uint8_t extint[8] = {3, 3, 0, 0, 0, 0, IOAPIC_ID, 0};
	memcpy(t + n, extint, 8);
	n += 8;
	entries++;
	for (uint8_t irq = 0; irq < 16; irq++) {
		if (irq == 2)
			continue;
		const uint8_t e[8] = {3, 0, 0, 0, 0, irq, IOAPIC_ID, irq == 0 ? 2 : irq};
		memcpy(t + n, e, 8);
		n += 8;
		entries++;
	}
	/* local interrupts: ExtINT on LINT0, NMI on LINT1, every local APIC */
	const uint8_t lint0[8] = {4, 3, 0, 0, 0, 0, 0xFF, 0}, lint1[8] = {4, 1, 0, 0, 0, 0, 0xFF, 1};
	memcpy(t + n, lint0, 8);
	n += 8;
	memcpy(t + n, lint1, 8);
	n += 8;
	entries += 2;

	memcpy(t, "PCMP", 4);
	t[4] = (uint8_t)n;
	t[5] = (uint8_t)(n >> 8);
	t[6] = 4; /* MP spec 1.4 */
	memcpy(t + 8, "BT86    ", 8);
	memcpy(t + 16, "bt86 PC     ", 12);
	t[34] = (uint8_t)entries;
	t[35] = (uint8_t)(entries >> 8);
	memcpy(t + 36, &lapic_base, 4);
	t[7] = checksum(t, n);

	uint8_t fp[16] = {'_', 'M', 'P', '_'};
	memcpy(fp + 4, &table_at, 4);
	fp[8] = 1;  /* length in 16-byte units */
	fp[9] = 4;  /* spec revision */
	fp[10] = checksum(fp, 16);

	if (!gmem_is_ram(mem, MPTABLE_ADDR, 16 + n))
		return -1;
	gmem_write_block(mem, MPTABLE_ADDR, fp, 16);
	gmem_write_block(mem, table_at, t, n);
	return 0;
}
