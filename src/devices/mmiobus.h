/*
 * The MMIO bus: physical address ranges outside RAM claimed by devices.
 * The same rules as the port bus: a device sees offsets inside its own range,
 * overlapping registrations are refused naming both, and addresses nobody
 * claims read as all ones and ignore writes.  Guest accesses reach it
 * through the emulator (translated code faults on any address that is not
 * RAM).
 */
#ifndef BT86_MMIOBUS_H
#define BT86_MMIOBUS_H

#include <stddef.h>
#include <stdint.h>

typedef uint32_t (*mmio_read_fn)(void *dev, uint32_t offset, unsigned size);
typedef void (*mmio_write_fn)(void *dev, uint32_t offset, unsigned size, uint32_t val);

struct mmio_region {
	uint32_t base, len;
	const char *name;
	void *dev;
	mmio_read_fn read;
	mmio_write_fn write;
};

#define MMIOBUS_MAX_REGIONS 16

struct mmiobus {
	struct mmio_region regions[MMIOBUS_MAX_REGIONS];
	unsigned n;
};

int mmio_register(struct mmiobus *bus, uint32_t base, uint32_t len, const char *name, void *dev,
		  mmio_read_fn read, mmio_write_fn write, char *err, size_t errlen);
uint32_t mmio_read(struct mmiobus *bus, uint32_t addr, unsigned size);
void mmio_write(struct mmiobus *bus, uint32_t addr, unsigned size, uint32_t val);

#endif
