/*
 * The PCI host bridge of QEMU's pc machine, reduced to what an OS probes:
 * configuration mechanism #1 (CONFIG_ADDRESS at 0xCF8, CONFIG_DATA at
 * 0xCFC-0xCFF, PCI Local Bus 3.0 sec. 3.2.2.3.2) over bus 0 with two
 * functions, the i440FX host bridge (00:00.0, 8086:1237) and the PIIX3
 * PCI-to-ISA bridge (00:01.0, 8086:7000, multi-function as in QEMU, whose
 * IDE, USB and ACPI functions this board lacks).  Neither has a BAR; the
 * chipset registers from 0x40 up are plain storage (PAM, SMRAM and the
 * like change no memory mapping here); the command registers and the
 * PIIX3's PIRQ routing (IRQ 10, 10, 11, 11) as SeaBIOS leaves them.  Absent functions and other
 * buses read all ones.
 */
#ifndef BT86_PCI_H
#define BT86_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_PORT 0xCF8
#define PCI_PORT_COUNT 8
#define PCI_FUNCTIONS 2 /* devfn 0 (00:00.0) and 8 (00:01.0) */

struct pci_host {
	uint32_t address;                        /* CONFIG_ADDRESS */
	uint8_t config[PCI_FUNCTIONS][256];
	uint8_t writable[PCI_FUNCTIONS][256];    /* per byte: the bits a write changes */
};

void pci_init(struct pci_host *p);
uint32_t pci_read(void *dev, uint16_t offset, unsigned size);
void pci_write(void *dev, uint16_t offset, unsigned size, uint32_t val);

/* The snapshot (snapshot.h): the state fields, and on load the checks of
 * what this device's code relies on. */
struct snap;
void pci_save(const struct pci_host *d, struct snap *s);
bool pci_load(struct pci_host *d, struct snap *s);

#endif
