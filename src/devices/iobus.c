#include "iobus.h"

#include <stdio.h>

int iobus_register(struct iobus *bus, uint16_t base, uint16_t len, const char *name, void *dev,
		   io_read_fn read, io_write_fn write, char *err, size_t errlen)
{
	uint32_t end = (uint32_t)base + len;

	if (len == 0 || end > 0x10000) {
		snprintf(err, errlen, "%s: port range %#x+%u is invalid", name, base, len);
		return -1;
	}
	for (unsigned i = 0; i < bus->n; i++) {
		const struct io_region *r = &bus->regions[i];
		if (base < r->base + r->len && r->base < end) {
			snprintf(err, errlen, "%s at ports %#x-%#x overlaps %s at %#x-%#x", name, base,
				 end - 1, r->name, r->base, r->base + r->len - 1);
			return -1;
		}
	}
	if (bus->n == IOBUS_MAX_REGIONS) {
		snprintf(err, errlen, "%s: too many port-I/O devices", name);
		return -1;
	}
	bus->regions[bus->n++] = (struct io_region){base, len, name, dev, read, write, NULL, NULL};
	return 0;
}

static struct io_region *find(struct iobus *bus, uint16_t port)
{
	for (unsigned i = 0; i < bus->n; i++) {
		struct io_region *r = &bus->regions[i];
		if (port >= r->base && port - r->base < r->len)
			return r;
	}
	return NULL;
}

uint32_t iobus_read(struct iobus *bus, uint16_t port, unsigned size)
{
	struct io_region *r = find(bus, port);
	uint32_t ones = size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;

	if (!r || !r->read)
		return ones;
	return r->read(r->dev, (uint16_t)(port - r->base), size) & ones;
}

void iobus_write(struct iobus *bus, uint16_t port, unsigned size, uint32_t val)
{
	struct io_region *r = find(bus, port);

	if (r && r->write)
		r->write(r->dev, (uint16_t)(port - r->base), size, val);
}

void iobus_set_string(struct iobus *bus, uint16_t base, io_read_string_fn read_string,
		      io_write_string_fn write_string)
{
	struct io_region *r = find(bus, base);

	if (r && r->base == base) {
		r->read_string = read_string;
		r->write_string = write_string;
	}
}

unsigned iobus_read_string(struct iobus *bus, uint16_t port, unsigned size, void *buf, unsigned count)
{
	struct io_region *r = find(bus, port);

	return r && r->read_string ? r->read_string(r->dev, (uint16_t)(port - r->base), size, buf, count) : 0;
}

unsigned iobus_write_string(struct iobus *bus, uint16_t port, unsigned size, const void *buf, unsigned count)
{
	struct io_region *r = find(bus, port);

	return r && r->write_string ? r->write_string(r->dev, (uint16_t)(port - r->base), size, buf, count)
				    : 0;
}
