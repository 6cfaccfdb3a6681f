#include "pci.h"

#include <stddef.h>
#include <string.h>

#include "../snapshot/stream.h"

#define ADDR_ENABLE 0x80000000u

static void put16(uint8_t *c, unsigned at, uint16_t v)
{
	c[at] = (uint8_t)v;
	c[at + 1] = (uint8_t)(v >> 8);
}

/* A type-0 header: IDs, revision, class, header type; the command
 * register's I/O, memory, bus-master and SERR bits, the latency timer,
 * the interrupt line and everything from 0x40 writable. */
static void header(struct pci_host *p, unsigned f, uint16_t device, uint8_t rev, uint16_t class, uint8_t type,
		   uint16_t status)
{
	uint8_t *c = p->config[f], *w = p->writable[f];
	put16(c, 0x00, 0x8086);
	put16(c, 0x02, device);
	put16(c, 0x04, 0x0103); /* I/O, memory and SERR on, as SeaBIOS leaves them */
	put16(c, 0x06, status);
	c[0x08] = rev;
	put16(c, 0x0A, class);
	c[0x0E] = type;
	put16(c, 0x2C, 0x1AF4); /* subsystem: QEMU's defaults */
	put16(c, 0x2E, 0x1100);
	w[0x04] = 0x47;
	w[0x05] = 0x01;
	w[0x0D] = 0xFF;
	w[0x3C] = 0xFF;
	memset(w + 0x40, 0xFF, 0xC0);
}

void pci_init(struct pci_host *p)
{
	memset(p, 0, sizeof *p);
	header(p, 0, 0x1237, 0x02, 0x0600, 0x00, 0x0000);
	header(p, 1, 0x7000, 0x00, 0x0601, 0x80, 0x0200);
	p->config[1][0x60] = 10; /* PIRQA-D routing */
	p->config[1][0x61] = 10;
	p->config[1][0x62] = 11;
	p->config[1][0x63] = 11;
}

/* The function CONFIG_ADDRESS names, or -1: bus 0, devices 0 and 1,
 * function 0 each. */
static int function(const struct pci_host *p)
{
	if (!(p->address & ADDR_ENABLE) || (p->address >> 16 & 0xFF) != 0)
		return -1;
	unsigned devfn = p->address >> 8 & 0xFF;
	return devfn == 0 ? 0 : devfn == 8 ? 1 : -1;
}

/* CONFIG_ADDRESS takes only 32-bit accesses (byte ones at 0xCF8-0xCFB
 * are mechanism #2's, which this bridge lacks: ignored, as QEMU does);
 * CONFIG_DATA any size at any byte of the dword. */
uint32_t pci_read(void *dev, uint16_t offset, unsigned size)
{
	struct pci_host *p = dev;
	if (offset < 4)
		return offset == 0 && size == 4 ? p->address : 0xFFFFFFFFu;
	int f = function(p);
	unsigned at = (p->address & 0xFC) + (offset - 4u);
	if (f < 0)
		return 0xFFFFFFFFu;
	uint32_t v = 0;
	for (unsigned i = 0; i < size && at + i < 256; i++)
		v |= (uint32_t)p->config[f][at + i] << 8 * i;
	return v;
}

void pci_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	struct pci_host *p = dev;
	if (offset < 4) {
		if (offset == 0 && size == 4)
			p->address = val & 0x80FFFFFCu;
		return;
	}
	int f = function(p);
	unsigned at = (p->address & 0xFC) + (offset - 4u);
	if (f < 0)
		return;
	for (unsigned i = 0; i < size && at + i < 256; i++) {
		uint8_t w = p->writable[f][at + i], b = (uint8_t)(val >> 8 * i);
		p->config[f][at + i] = (uint8_t)((p->config[f][at + i] & ~w) | (b & w));
	}
}

void pci_save(const struct pci_host *d, struct snap *s)
{
	snap_put(s, d, sizeof *d);
}

bool pci_load(struct pci_host *d, struct snap *s)
{
	return snap_get(s, d, sizeof *d);
}
