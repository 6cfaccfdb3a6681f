/*
 * The ACPI tables PC firmware leaves (ACPI 6.5 ch. 5), in the reserved F
 * segment beside the MP table: an ACPI 1.0 RSDP (found by the search of
 * 0xE0000-0xFFFFF), an RSDT, a FADT (revision 1) pointing at the PM
 * blocks of acpi_pm.h with SCI on IRQ 9, its FACS, a DSDT holding \_S5 so
 * that an OS can power off and the PCI root bus (pci.h), and a MADT that says what the MP table says:
 * the local APIC, the I/O APIC, ISA IRQ 0 on GSI 2, the SCI level-
 * triggered active high (QEMU's flags), NMI on LINT1; and an HPET table
 * for hpet.h's timer block.
 */
#ifndef BT86_ACPI_H
#define BT86_ACPI_H

#include <stdint.h>

#define ACPI_TABLES_ADDR 0xF6000u

struct gmem;

/* Returns 0, or -1 if guest RAM does not reach the F segment. */
int acpi_write(struct gmem *mem, uint32_t lapic_base, uint32_t ioapic_base);

#endif
