#include "i8259.h"

#include <stddef.h>
#include <string.h>

#include "../snapshot/stream.h"

static void chip_reset(struct pic_chip *c)
{
	uint8_t base = c->vector_base;
	struct i8259 *pair = c->pair;
	memset(c, 0, sizeof *c);
	c->vector_base = base;
	c->pair = pair;
}

void pic_init(struct i8259 *p, void (*set_output)(void *, bool), void *opaque)
{
	memset(p, 0, sizeof *p);
	p->chip[0].vector_base = 0x08; /* the BIOS defaults */
	p->chip[1].vector_base = 0x70;
	p->chip[0].pair = p->chip[1].pair = p;
	p->set_output = set_output;
	p->opaque = opaque;
}

/* Highest-priority bit of mask (after rotation), or -1. */
static int priority_of(const struct pic_chip *c, uint8_t mask)
{
	for (int i = 0; i < 8; i++) {
		int irq = (i + c->priority_add) & 7;
		if (mask & (1 << irq))
			return irq;
	}
	return -1;
}

/* The IRQ this chip would raise now, or -1: the highest requested,
 * unmasked line above everything in service. */
static int chip_pending(const struct pic_chip *c, bool master)
{
	int req = priority_of(c, c->irr & ~c->imr);
	if (req < 0)
		return -1;
	uint8_t isr = c->isr;
	if (master)
		isr &= ~(1 << 2); /* fully nested: the cascade line does not block */
	int cur = priority_of(c, isr);
	if (cur >= 0 && ((cur - c->priority_add) & 7) <= ((req - c->priority_add) & 7))
		return -1;
	return req;
}

static void pic_update_irq(struct i8259 *p)
{
	/* The slave's output is the master's IRQ 2. */
	if (chip_pending(&p->chip[1], false) >= 0)
		p->chip[0].irr |= 1 << 2;
	else
		p->chip[0].irr &= ~(1 << 2);
	bool out = chip_pending(&p->chip[0], true) >= 0;
	if (out != p->output) {
		p->output = out;
		if (p->set_output)
			p->set_output(p->opaque, out);
	}
}

void pic_set_irq(struct i8259 *p, unsigned irq, bool level)
{
	struct pic_chip *c = &p->chip[irq >> 3];
	uint8_t bit = (uint8_t)(1 << (irq & 7));

	if (level) {
		if (!(c->last_level & bit))
			c->irr |= bit; /* rising edge */
		c->last_level |= bit;
	} else {
		c->last_level &= ~bit;
	}
	pic_update_irq(p);
}

static void chip_ack(struct pic_chip *c, int irq)
{
	c->irr &= ~(1 << irq);
	if (c->auto_eoi)
		return;
	c->isr |= 1 << irq;
}

int pic_acknowledge(struct i8259 *p)
{
	int irq = chip_pending(&p->chip[0], true);
	int vector;

	if (irq < 0)
		return -1;
	if (irq == 2) {
		int sirq = chip_pending(&p->chip[1], false);
		if (sirq < 0)
			sirq = 7; /* spurious on the slave */
		else
			chip_ack(&p->chip[1], sirq);
		chip_ack(&p->chip[0], 2);
		vector = p->chip[1].vector_base + sirq;
	} else {
		chip_ack(&p->chip[0], irq);
		vector = p->chip[0].vector_base + irq;
	}
	pic_update_irq(p);
	return vector;
}

static uint32_t chip_read(struct pic_chip *c, uint16_t offset)
{
	if (offset == 1)
		return c->imr;
	return c->read_isr ? c->isr : c->irr;
}

static void chip_write(struct pic_chip *c, uint16_t offset, uint8_t v)
{
	if (offset == 0) {
		if (v & 0x10) { /* ICW1 */
			chip_reset(c);
			c->icw4_needed = v & 1;
			c->single = v & 2;
			c->init_step = 2;
		} else if (v & 0x08) { /* OCW3 */
			if (v & 0x02)
				c->read_isr = v & 1;
		} else { /* OCW2 */
			unsigned cmd = v >> 5;
			int irq = (cmd == 3 || cmd == 7) ? (v & 7) : priority_of(c, c->isr);
			if ((cmd == 1 || cmd == 3 || cmd == 5 || cmd == 7) && irq >= 0) /* EOI */
				c->isr &= ~(1 << irq);
			if ((cmd == 5 || cmd == 7 || cmd == 6) && irq >= 0) /* rotate */
				c->priority_add = (uint8_t)((irq + 1) & 7);
		}
		return;
	}
	switch (c->init_step) {
	case 2:
		c->vector_base = v & 0xF8;
		c->init_step = c->single ? (c->icw4_needed ? 4 : 0) : 3;
		break;
	case 3:
		c->init_step = c->icw4_needed ? 4 : 0;
		break;
	case 4:
		c->auto_eoi = v & 2;
		c->init_step = 0;
		break;
	default:
		c->imr = v; /* OCW1 */
		break;
	}
}

uint32_t pic_read(void *dev, uint16_t offset, unsigned size)
{
	(void)size;
	return chip_read(dev, offset);
}

void pic_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	struct pic_chip *c = dev;
	(void)size;
	chip_write(c, offset, (uint8_t)val);
	pic_update_irq(c->pair);
}

void pic_save(const struct i8259 *p, struct snap *s)
{
	for (unsigned i = 0; i < 2; i++)
		snap_put(s, &p->chip[i], offsetof(struct pic_chip, pair));
	snap_put(s, &p->output, sizeof p->output);
}

bool pic_load(struct i8259 *p, struct snap *s)
{
	for (unsigned i = 0; i < 2; i++)
		if (!snap_get(s, &p->chip[i], offsetof(struct pic_chip, pair)))
			return false;
	if (!snap_get(s, &p->output, sizeof p->output))
		return false;
	for (unsigned i = 0; i < 2; i++)
		if (p->chip[i].init_step > 4 || p->chip[i].priority_add > 7)
			return snap_bad(s, "the 8259A's state");
	return true;
}
