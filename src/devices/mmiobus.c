#include "mmiobus.h"

#include <stdio.h>

int mmio_register(struct mmiobus *bus, uint32_t base, uint32_t len, const char *name, void *dev,
		  mmio_read_fn read, mmio_write_fn write, char *err, size_t errlen)
{
	uint64_t end = (uint64_t)base + len;

	if (len == 0 || end > 0x100000000ull) {
		snprintf(err, errlen, "%s: MMIO range %#x+%u is invalid", name, base, len);
		return -1;
	}
	for (unsigned i = 0; i < bus->n; i++) {
		const struct mmio_region *r = &bus->regions[i];
		if (base < (uint64_t)r->base + r->len && r->base < end) {
			snprintf(err, errlen, "%s at %#x-%#llx overlaps %s at %#x-%#x", name, base,
				 (unsigned long long)end - 1, r->name, r->base, r->base + r->len - 1);
			return -1;
		}
	}
	if (bus->n == MMIOBUS_MAX_REGIONS) {
		snprintf(err, errlen, "%s: too many MMIO devices", name);
		return -1;
	}
	bus->regions[bus->n++] = (struct mmio_region){base, len, name, dev, read, write};
	return 0;
}

static struct mmio_region *find(struct mmiobus *bus, uint32_t addr)
{
	for (unsigned i = 0; i < bus->n; i++) {
		struct mmio_region *r = &bus->regions[i];
		if (addr >= r->base && addr - r->base < r->len)
			return r;
	}
	return NULL;
}

uint32_t mmio_read(struct mmiobus *bus, uint32_t addr, unsigned size)
{
	struct mmio_region *r = find(bus, addr);
	uint32_t ones = size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;

	if (!r || !r->read)
		return ones;
	return r->read(r->dev, addr - r->base, size) & ones;
}

void mmio_write(struct mmiobus *bus, uint32_t addr, unsigned size, uint32_t val)
{
	struct mmio_region *r = find(bus, addr);

	if (r && r->write)
		r->write(r->dev, addr - r->base, size, val);
}
