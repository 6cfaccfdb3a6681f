/*
 * The MP configuration table (Intel MultiProcessor Specification 1.4) that
 * PC firmware leaves in the F segment: one processor, the ISA bus, the I/O
 * APIC, and where each ISA interrupt arrives (IRQ 0 on pin 2, the others on
 * their own pins, the 8259A as ExtINT on pin 0 and LINT0, NMI on LINT1).
 */
#ifndef BT86_MPTABLE_H
#define BT86_MPTABLE_H

#include <stdint.h>

/* Where the floating pointer goes: inside the BIOS area that the memory
 * map reports as reserved. */
#define MPTABLE_ADDR 0xF5000u

struct gmem;

/* Writes the floating pointer and the table; returns 0, or -1 if guest RAM
 * does not reach the F segment. */
int mptable_write(struct gmem *mem, uint32_t lapic_base, uint32_t ioapic_base, uint32_t cpu_signature,
		  uint32_t cpu_features);

#endif
