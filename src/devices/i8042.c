#include "i8042.h"

#include <stddef.h>
#include <string.h>

#include "../snapshot/stream.h"

#define ST_OBF 0x01
#define ST_SYS 0x04
#define ST_CMD 0x08
#define ST_AUX 0x20
#define CTR_KBD_INT 0x01
#define CTR_AUX_INT 0x02

void i8042_init(struct i8042 *k, void (*set_irq)(void *, unsigned, bool), void (*reset)(void *), void *opaque)
{
	memset(k, 0, sizeof *k);
	k->ctr = 0x45; /* keyboard interrupt, system flag, translation */
	k->set_irq = set_irq;
	k->reset = reset;
	k->opaque = opaque;
}

static void i8042_update_irq(struct i8042 *k)
{
	bool data = k->out_count > 0;
	k->set_irq(k->opaque, 1, data && !k->out_aux && (k->ctr & CTR_KBD_INT));
	k->set_irq(k->opaque, 12, data && k->out_aux && (k->ctr & CTR_AUX_INT));
}

static void push(struct i8042 *k, uint8_t b)
{
	if (k->out_count == sizeof k->out)
		return;
	if (k->out_count == 0)
		k->out_aux = false;
	k->out[(k->out_head + k->out_count++) % sizeof k->out] = b;
}

uint32_t i8042_data_read(void *dev, uint16_t offset, unsigned size)
{
	struct i8042 *k = dev;
	uint8_t b = 0;
	(void)offset;
	(void)size;
	if (k->out_count) {
		b = k->out[k->out_head];
		k->out_head = (k->out_head + 1) % sizeof k->out;
		k->out_count--;
	}
	i8042_update_irq(k);
	return b;
}

/* A byte for the keyboard itself (or for the output port / command byte
 * after a command that takes data). */
void i8042_data_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	struct i8042 *k = dev;
	uint8_t b = (uint8_t)val;
	(void)offset;
	(void)size;
	switch (k->pending) {
	case 0x60:
		k->ctr = b;
		break;
	case 0xD1:
		if (!(b & 1))
			k->reset(k->opaque); /* output port bit 0 is the reset line */
		break;
	case 0xD4:
		break; /* to the aux device: there is none, nothing answers */
	default:
		switch (b) {
		case 0xFF: /* reset: ACK, then self-test passed */
			push(k, 0xFA);
			push(k, 0xAA);
			break;
		case 0xF2: /* identify: an MF2 keyboard */
			push(k, 0xFA);
			push(k, 0xAB);
			push(k, 0x83);
			break;
		case 0xEE: /* echo */
			push(k, 0xEE);
			break;
		default: /* every other command and its arguments: ACK */
			push(k, 0xFA);
			break;
		}
	}
	k->pending = 0;
	i8042_update_irq(k);
}

uint32_t i8042_status_read(void *dev, uint16_t offset, unsigned size)
{
	struct i8042 *k = dev;
	(void)offset;
	(void)size;
	return (k->out_count ? ST_OBF : 0) | (k->out_count && k->out_aux ? ST_AUX : 0) | ST_SYS |
	       (k->pending ? ST_CMD : 0);
}

void i8042_command_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	struct i8042 *k = dev;
	uint8_t c = (uint8_t)val;
	(void)offset;
	(void)size;
	switch (c) {
	case 0x20: push(k, k->ctr); break;     /* read the command byte */
	case 0x60: case 0xD1: case 0xD4: k->pending = c; break;
	case 0xAA: push(k, 0x55); break;       /* controller self-test */
	case 0xAB: push(k, 0x00); break;       /* keyboard interface test */
	case 0xA9: push(k, 0xFF); break;       /* aux interface test: no mouse */
	case 0xAD: k->ctr |= 0x10; break;      /* disable keyboard */
	case 0xAE: k->ctr &= ~0x10; break;
	case 0xA7: k->ctr |= 0x20; break;      /* disable aux */
	case 0xA8: k->ctr &= ~0x20; break;
	case 0xD0: push(k, 0x01); break;       /* read output port: reset line high */
	case 0xFE: k->reset(k->opaque); break; /* pulse the reset line */
	default: break;
	}
	i8042_update_irq(k);
}

void kbc_save(const struct i8042 *d, struct snap *s)
{
	snap_put(s, d, offsetof(struct i8042, set_irq));
}

bool kbc_load(struct i8042 *d, struct snap *s)
{
	if (!snap_get(s, d, offsetof(struct i8042, set_irq)))
		return false;
	return d->out_head < sizeof d->out && d->out_count <= sizeof d->out ? true : snap_bad(s, "the 8042's output buffer");
}
