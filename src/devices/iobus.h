/*
 * The port-I/O bus.  A device registers a range and sees offsets inside it,
 * never absolute port numbers; where it sits is the board's business.
 * Overlapping registrations are refused with an error naming both devices.
 * Ports nobody claims read as all ones and ignore writes, as on a PC.
 */
#ifndef BT86_IOBUS_H
#define BT86_IOBUS_H

#include <stddef.h>
#include <stdint.h>

typedef uint32_t (*io_read_fn)(void *dev, uint16_t offset, unsigned size);
typedef void (*io_write_fn)(void *dev, uint16_t offset, unsigned size, uint32_t val);

/* Optional, for rep ins/outs: moves up to count items of size bytes at
 * once and returns how many it moved (0: do them one at a time). */
typedef unsigned (*io_read_string_fn)(void *dev, uint16_t offset, unsigned size, void *buf, unsigned count);
typedef unsigned (*io_write_string_fn)(void *dev, uint16_t offset, unsigned size, const void *buf,
				       unsigned count);

struct io_region {
	uint16_t base, len;
	const char *name;
	void *dev;
	io_read_fn read;   /* NULL: reads as all ones */
	io_write_fn write; /* NULL: writes are ignored */
	io_read_string_fn read_string;
	io_write_string_fn write_string;
};

#define IOBUS_MAX_REGIONS 32

struct iobus {
	struct io_region regions[IOBUS_MAX_REGIONS];
	unsigned n;
};

int iobus_register(struct iobus *bus, uint16_t base, uint16_t len, const char *name, void *dev,
		   io_read_fn read, io_write_fn write, char *err, size_t errlen);
/* Gives the region registered at `base` its string handlers. */
void iobus_set_string(struct iobus *bus, uint16_t base, io_read_string_fn read_string,
		      io_write_string_fn write_string);
uint32_t iobus_read(struct iobus *bus, uint16_t port, unsigned size);
void iobus_write(struct iobus *bus, uint16_t port, unsigned size, uint32_t val);
/* String transfers: how many items the device moved at once (maybe 0). */
unsigned iobus_read_string(struct iobus *bus, uint16_t port, unsigned size, void *buf, unsigned count);
unsigned iobus_write_string(struct iobus *bus, uint16_t port, unsigned size, const void *buf, unsigned count);

#endif
