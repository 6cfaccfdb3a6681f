#include "i8254.h"

#include <stddef.h>
#include <string.h>
#include <time.h>

#include "../snapshot/stream.h"

/* The board's clock minus the host's; set once, before the run. */
static uint64_t clock_shift;

static uint64_t host_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t pit_now_ns(void)
{
	return host_now_ns() + clock_shift;
}

void pit_clock_continue(uint64_t now)
{
	clock_shift = now - host_now_ns();
}

uint64_t pit_host_ns(uint64_t board_ns)
{
	return board_ns - clock_shift;
}

void pit_init(struct i8254 *p, void (*pulse_irq0)(void *), void *opaque)
{
	memset(p, 0, sizeof *p);
	for (int i = 0; i < 3; i++) {
		p->ch[i].reload = 65536;
		p->ch[i].access = 3;
		p->ch[i].mode = 3;
		p->ch[i].gate = i != 2; /* channel 2's gate is port 0x61, off */
	}
	p->pulse_irq0 = pulse_irq0;
	p->opaque = opaque;
}

static uint64_t ticks_since(const struct pit_channel *c, uint64_t now)
{
	if (!c->gate)
		return c->held; /* a low gate holds the count */
	uint64_t ns = now - c->start_ns;
	return (uint64_t)(((unsigned __int128)ns * PIT_HZ) / 1000000000u);
}

static uint16_t counter_value(const struct pit_channel *c, uint64_t now)
{
	if (!c->loaded)
		return 0;
	uint64_t t = ticks_since(c, now);
	switch (c->mode) {
	case 2:
	case 3: {
		uint32_t v = c->reload - (uint32_t)(t % c->reload);
		if (c->mode == 3)
			v = (v * 2) % c->reload; /* counts down by two, twice a period */
		return (uint16_t)v;
	}
	default:
		return (uint16_t)(c->reload - (uint32_t)t); /* wraps after terminal count */
	}
}

static void load(struct pit_channel *c, uint32_t value)
{
	c->reload = value ? value : 65536;
	c->loaded = true;
	c->start_ns = pit_now_ns();
	c->held = 0;
	c->fired = 0;
}

static uint64_t ticks_to_ns(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * 1000000000u) / PIT_HZ);
}

void pit_set_gate(struct i8254 *p, unsigned i, bool level)
{
	struct pit_channel *c = &p->ch[i];
	uint64_t now = pit_now_ns();
	if (level == c->gate)
		return;
	if (!level) {
		c->held = ticks_since(c, now);
		c->gate = false;
		return;
	}
	c->gate = true;
	if (c->mode == 0 || c->mode == 4) {
		c->start_ns = now - ticks_to_ns(c->held); /* counting resumes */
	} else {
		c->start_ns = now; /* a rising edge restarts the period */
		c->fired = 0;
	}
}

bool pit_output(const struct i8254 *p, unsigned i, uint64_t now)
{
	const struct pit_channel *c = &p->ch[i];
	if (!c->loaded)
		return c->mode != 0; /* mode 0 drives it low from the control word */
	uint64_t t = ticks_since(c, now);
	switch (c->mode) {
	case 2:
		return !c->gate || t % c->reload != c->reload - 1; /* low for the last tick */
	case 3:
		return !c->gate || t % c->reload < (c->reload + 1) / 2; /* high for the first half */
	default:
		return t >= c->reload; /* high from terminal count on */
	}
}

uint32_t pit_read(void *dev, uint16_t offset, unsigned size)
{
	struct i8254 *p = dev;
	(void)size;
	if (offset == 3)
		return 0xFF;
	struct pit_channel *c = &p->ch[offset];
	uint16_t v = c->latched ? c->latch : counter_value(c, pit_now_ns());
	uint8_t out;
	if (c->access == 1)
		out = (uint8_t)v;
	else if (c->access == 2)
		out = (uint8_t)(v >> 8);
	else {
		out = c->read_hi ? (uint8_t)(v >> 8) : (uint8_t)v;
		c->read_hi = !c->read_hi;
		if (c->read_hi)
			return out;
	}
	c->latched = false;
	return out;
}

void pit_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	struct i8254 *p = dev;
	uint8_t b = (uint8_t)val;
	(void)size;

	if (offset == 3) {
		unsigned sel = b >> 6;
		if (sel == 3) { /* read-back: latch the counts asked for */
			for (int i = 0; i < 3; i++)
				if (!(b & 0x20) && (b & (2 << i)) && !p->ch[i].latched) {
					p->ch[i].latch = counter_value(&p->ch[i], pit_now_ns());
					p->ch[i].latched = true;
					p->ch[i].read_hi = false;
				}
			return;
		}
		struct pit_channel *c = &p->ch[sel];
		unsigned access = (b >> 4) & 3;
		if (access == 0) { /* counter latch */
			if (!c->latched) {
				c->latch = counter_value(c, pit_now_ns());
				c->latched = true;
				c->read_hi = false;
			}
			return;
		}
		c->access = (uint8_t)access;
		c->mode = (b >> 1) & 7;
		if (c->mode > 5)
			c->mode -= 4; /* 6 and 7 are aliases of 2 and 3 */
		c->write_hi = false;
		c->read_hi = false;
		c->loaded = false;
		return;
	}
	struct pit_channel *c = &p->ch[offset];
	switch (c->access) {
	case 1:
		load(c, b);
		break;
	case 2:
		load(c, (uint32_t)b << 8);
		break;
	default:
		if (!c->write_hi) {
			c->pending_lo = b;
			c->write_hi = true;
		} else {
			c->write_hi = false;
			load(c, c->pending_lo | ((uint32_t)b << 8));
		}
		break;
	}
}

/* Periods of channel 0 that have ended by `now`. */
static uint64_t periods(const struct pit_channel *c, uint64_t now)
{
	uint64_t t = ticks_since(c, now);
	if (c->mode == 2 || c->mode == 3)
		return t / c->reload;
	return t >= c->reload ? 1 : 0; /* one-shot */
}

void pit_poll(struct i8254 *p, uint64_t now)
{
	struct pit_channel *c = &p->ch[0];
	if (!c->loaded || !c->gate)
		return;
	uint64_t n = periods(c, now);
	if (n > c->fired) {
		c->fired = n;
		p->pulse_irq0(p->opaque);
	}
}

uint64_t pit_next_deadline(const struct i8254 *p)
{
	const struct pit_channel *c = &p->ch[0];
	if (!c->loaded || !c->gate)
		return UINT64_MAX;
	if (c->mode != 2 && c->mode != 3 && c->fired)
		return UINT64_MAX;
	uint64_t next_tick = (c->fired + 1) * (uint64_t)c->reload;
	return c->start_ns + (uint64_t)(((unsigned __int128)next_tick * 1000000000u + PIT_HZ - 1) / PIT_HZ);
}

void pit_save(const struct i8254 *d, struct snap *s)
{
	snap_put(s, d, offsetof(struct i8254, pulse_irq0));
}

bool pit_load(struct i8254 *d, struct snap *s)
{
	if (!snap_get(s, d, offsetof(struct i8254, pulse_irq0)))
		return false;
	return d->ch[0].reload - 1 < 65536 && d->ch[1].reload - 1 < 65536 && d->ch[2].reload - 1 < 65536 ? true : snap_bad(s, "the 8254's reload values");
}
