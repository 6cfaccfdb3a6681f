/*
 * The i8042 keyboard controller, as much as a PC kernel probes: the status
 * and command ports, controller self-test and interface tests, the command
 * byte, a keyboard that answers reset and identify (no keys are ever
 * pressed), an absent mouse, and the reset line (command 0xFE, or output
 * port bit 0 cleared), which ends the run as a reboot would.  The output
 * buffer drives IRQ 1 (or 12 for aux data) when the command byte enables it.
 */
#ifndef BT86_I8042_H
#define BT86_I8042_H

#include <stdbool.h>
#include <stdint.h>

struct i8042 {
	uint8_t out[16];
	unsigned out_head, out_count;
	bool out_aux;            /* the byte at the head came from the aux port */
	uint8_t ctr;             /* the command byte */
	uint8_t pending;         /* command awaiting its data byte, or 0 */
	/* Wiring, not state: a snapshot saves the fields above. */
	void (*set_irq)(void *opaque, unsigned irq, bool level);
	void (*reset)(void *opaque);
	void *opaque;
};

void i8042_init(struct i8042 *k, void (*set_irq)(void *, unsigned, bool), void (*reset)(void *), void *opaque);
uint32_t i8042_data_read(void *dev, uint16_t offset, unsigned size);
void i8042_data_write(void *dev, uint16_t offset, unsigned size, uint32_t val);
uint32_t i8042_status_read(void *dev, uint16_t offset, unsigned size);
void i8042_command_write(void *dev, uint16_t offset, unsigned size, uint32_t val);

/* The snapshot (snapshot.h): the state fields, and on load the checks of
 * what this device's code relies on. */
struct snap;
void kbc_save(const struct i8042 *d, struct snap *s);
bool kbc_load(struct i8042 *d, struct snap *s);

#endif
