/*
 * The I/O APIC (82093AA-style, 24 pins, version 0x20 as QEMU's): the
 * IOREGSEL/IOWIN window, ID, version, arbitration, and the redirection
 * table.  Edge pins deliver on a rising edge; level pins deliver while high
 * and hold remote IRR until the local APIC's EOI for their vector.  Fixed
 * and lowest-priority delivery go to the one local APIC, NMI to its NMI.
 */
#ifndef BT86_IOAPIC_H
#define BT86_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#define IOAPIC_DEFAULT_BASE 0xFEC00000u
#define IOAPIC_PINS 24

struct lapic;

struct ioapic {
	uint32_t id, regsel;
	uint64_t redir[IOAPIC_PINS];
	uint32_t level;           /* input lines */
	/* Wiring, not state: a snapshot saves the fields above. */
	struct lapic *lapic;
};

void ioapic_init(struct ioapic *io, struct lapic *lapic);
uint32_t ioapic_read(void *dev, uint32_t offset, unsigned size);
void ioapic_write(void *dev, uint32_t offset, unsigned size, uint32_t val);
void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level);
/* Whether the pin's redirection entry is masked (its edges are lost). */
bool ioapic_masked(const struct ioapic *io, unsigned pin);
/* The local APIC's EOI for a level-triggered vector. */
void ioapic_eoi(struct ioapic *io, unsigned vector);

/* The snapshot (snapshot.h): the state fields, and on load the checks of
 * what this device's code relies on. */
struct snap;
void ioapic_save(const struct ioapic *d, struct snap *s);
bool ioapic_load(struct ioapic *d, struct snap *s);

#endif
