#include "hpet.h"

#include <stddef.h>
#include <string.h>

#include "../snapshot/stream.h"

#define CFG_ENABLE 0x1u
#define CFG_LEGACY 0x2u
#define TN_LEVEL 0x2u
#define TN_INT_ENB 0x4u
#define TN_PERIODIC 0x8u
#define TN_PER_CAP 0x10u
#define TN_SIZE_CAP 0x20u
#define TN_SETVAL 0x40u
#define TN_32BIT 0x100u
#define TN_ROUTE_SHIFT 9
#define TN_WRITABLE (TN_LEVEL | TN_INT_ENB | TN_PERIODIC | TN_32BIT | 0x1Fu << TN_ROUTE_SHIFT)
#define ROUTE_CAP 0x00F00104u /* I/O APIC pins 2, 8 and 20-23 */

static uint64_t ticks_at(const struct hpet *h, uint64_t now)
{
	if (!(h->config & CFG_ENABLE))
		return h->counter;
	return h->counter + (now - h->enabled_ns) / (HPET_PERIOD_FS / 1000000u);
}

static bool is32(const struct hpet_timer *t)
{
	return t->config & TN_32BIT;
}

/* How many ticks from `now` (a counter value) until the timer's comparator,
 * modulo the comparator's width. */
static uint64_t ticks_until(const struct hpet_timer *t, uint64_t counter)
{
	uint64_t d = t->cmp - counter;
	return is32(t) ? (uint32_t)d : d;
}

static bool crossed(const struct hpet_timer *t, uint64_t counter)
{
	uint64_t run = counter - t->armed_at, to = t->cmp - t->armed_at;
	if (is32(t))
		run = (uint32_t)run, to = (uint32_t)to;
	return run >= to;
}

bool hpet_legacy(const struct hpet *h)
{
	return (h->config & (CFG_ENABLE | CFG_LEGACY)) == (CFG_ENABLE | CFG_LEGACY);
}

/* Timer i's line: ISA IRQ 0 or 8 in legacy mode (timers 0 and 1), else
 * its routed I/O APIC pin. */
static void drive(struct hpet *h, unsigned i, bool level)
{
	struct hpet_timer *t = &h->t[i];
	if (hpet_legacy(h) && i < 2)
		h->set_irq(h->opaque, true, i == 0 ? 0 : 8, level);
	else
		h->set_irq(h->opaque, false, (unsigned)(t->config >> TN_ROUTE_SHIFT & 0x1F), level);
	t->line = level;
}

/* A level-triggered timer holds its line while its ISR bit is set. */
static void update_level(struct hpet *h, unsigned i)
{
	struct hpet_timer *t = &h->t[i];
	bool level = (t->config & TN_LEVEL) && (t->config & TN_INT_ENB) && (h->config & CFG_ENABLE) &&
		     (h->isr >> i & 1);
	if (level != t->line)
		drive(h, i, level);
}

/* A comparator match: an interrupt only when the timer's is enabled (the
 * ISR bit of a level-triggered one too, as QEMU has it). */
static void fire(struct hpet *h, unsigned i)
{
	struct hpet_timer *t = &h->t[i];
	if (!(t->config & TN_INT_ENB))
		return;
	if (t->config & TN_LEVEL) {
		h->isr |= 1u << i;
		update_level(h, i);
	} else {
		drive(h, i, true);
		drive(h, i, false);
	}
}

void hpet_poll(struct hpet *h, uint64_t now_ns)
{
	if (!(h->config & CFG_ENABLE))
		return;
	uint64_t c = ticks_at(h, now_ns);
	for (unsigned i = 0; i < HPET_TIMERS; i++) {
		struct hpet_timer *t = &h->t[i];
		if (!t->armed || !crossed(t, c))
			continue;
		fire(h, i);
		if ((t->config & TN_PERIODIC) && t->period) {
			/* The next period after now: missed ones are not replayed. */
			uint64_t late = c - t->cmp;
			if (is32(t))
				late = (uint32_t)late;
			t->cmp += t->period * (late / t->period + 1);
			if (is32(t))
				t->cmp = (uint32_t)t->cmp;
			t->armed_at = c;
		} else {
			t->armed = false;
		}
	}
}

uint64_t hpet_next_deadline(const struct hpet *h)
{
	if (!(h->config & CFG_ENABLE))
		return UINT64_MAX;
	/* The host time of the tick a comparator matches, not now plus the
	 * ticks to go: the same deadline from every call until the guest
	 * changes a comparator, so the board re-arms its host timer only
	 * then (now + ticks would move with now's fraction of a tick). */
	uint64_t c = ticks_at(h, h->now_ns()), first = UINT64_MAX;
	for (unsigned i = 0; i < HPET_TIMERS; i++) {
		const struct hpet_timer *t = &h->t[i];
		if (!t->armed)
			continue;
		uint64_t d = crossed(t, c) ? 0 : ticks_until(t, c);
		unsigned __int128 at = h->enabled_ns + (unsigned __int128)(c - h->counter + d) * (HPET_PERIOD_FS / 1000000u);
		if (at < first) /* a 64-bit comparator ahead by centuries gives none */
			first = (uint64_t)at;
	}
	return first;
}

void hpet_init(struct hpet *h, uint64_t (*now_ns)(void), void (*set_irq)(void *, bool, unsigned, bool),
	       void (*changed)(void *), void *opaque)
{
	memset(h, 0, sizeof *h);
	h->now_ns = now_ns;
	h->set_irq = set_irq;
	h->changed = changed;
	h->opaque = opaque;
	for (unsigned i = 0; i < HPET_TIMERS; i++)
		h->t[i].cmp = UINT64_MAX;
}

static uint64_t timer_config(const struct hpet_timer *t, unsigned i)
{
	return t->config | TN_SIZE_CAP | (i == 0 ? TN_PER_CAP : 0) | (uint64_t)ROUTE_CAP << 32;
}

/* The 64-bit register at `reg` (8-byte aligned). */
static uint64_t reg_read(struct hpet *h, uint32_t reg)
{
	if (reg == 0x000)
		return HPET_CAP_LOW | (uint64_t)HPET_PERIOD_FS << 32;
	if (reg == 0x010)
		return h->config;
	if (reg == 0x020)
		return h->isr;
	if (reg == 0x0F0)
		return ticks_at(h, h->now_ns());
	if (reg >= 0x100 && reg < 0x100 + 0x20 * HPET_TIMERS) {
		unsigned i = (reg - 0x100) / 0x20;
		const struct hpet_timer *t = &h->t[i];
		switch (reg & 0x1F) {
		case 0x00:
			return timer_config(t, i);
		case 0x08:
			return is32(t) ? (uint32_t)t->cmp : t->cmp;
		}
	}
	return 0;
}

uint32_t hpet_read(void *dev, uint32_t offset, unsigned size)
{
	uint64_t v = reg_read(dev, offset & ~7u) >> 8 * (offset & 7);
	return size == 4 ? (uint32_t)v : (uint32_t)v & ((1u << 8 * size) - 1);
}

static void arm(struct hpet *h, struct hpet_timer *t)
{
	t->armed_at = ticks_at(h, h->now_ns());
	t->armed = true;
}

static void write_reg(struct hpet *h, uint32_t offset, unsigned size, uint32_t val)
{
	uint32_t reg = offset & ~7u;
	unsigned shift = 8 * (offset & 7);
	uint64_t mask = (size == 4 ? 0xFFFFFFFFull : (1ull << 8 * size) - 1) << shift, v = (uint64_t)val << shift;
	uint64_t now = h->now_ns();

	if (reg == 0x010) {
		uint64_t old = h->config;
		h->counter = ticks_at(h, now);
		h->enabled_ns = now;
		h->config = ((h->config & ~mask) | (v & mask)) & (CFG_ENABLE | CFG_LEGACY);
		if ((h->config ^ old) & (CFG_ENABLE | CFG_LEGACY)) {
			for (unsigned i = 0; i < HPET_TIMERS; i++) {
				if (h->t[i].line)
					drive(h, i, false); /* off the old routing */
				if (!(old & CFG_ENABLE) && (h->config & CFG_ENABLE) && h->t[i].armed)
					h->t[i].armed_at = h->counter;
				update_level(h, i);
			}
		}
	} else if (reg == 0x020) {
		h->isr &= ~(v & mask); /* write 1 to clear */
		for (unsigned i = 0; i < HPET_TIMERS; i++)
			update_level(h, i);
	} else if (reg == 0x0F0) {
		if (!(h->config & CFG_ENABLE))
			h->counter = (h->counter & ~mask) | (v & mask);
	} else if (reg >= 0x100 && reg < 0x100 + 0x20 * HPET_TIMERS) {
		unsigned i = (reg - 0x100) / 0x20;
		struct hpet_timer *t = &h->t[i];
		if ((reg & 0x1F) == 0x00) {
			bool line = t->line;
			if (line)
				drive(h, i, false);
			uint64_t set = (t->config & ~mask) | (v & mask);
			t->config = set & TN_WRITABLE & ~(i == 0 ? 0 : TN_PERIODIC);
			if (i == 0 && (set & TN_SETVAL))
				t->config |= TN_SETVAL;
			if (is32(t))
				t->cmp = (uint32_t)t->cmp;
			update_level(h, i);
		} else if ((reg & 0x1F) == 0x08) {
			if (is32(t) && shift)
				return; /* the high half of a 32-bit comparator */
			uint64_t nv = (t->cmp & ~mask) | (v & mask);
			if (!(t->config & TN_PERIODIC) || (t->config & TN_SETVAL))
				t->cmp = is32(t) ? (uint32_t)nv : nv;
			t->period = (t->period & ~mask) | (v & mask);
			if (is32(t))
				t->period = (uint32_t)t->period;
			t->config &= ~(uint64_t)TN_SETVAL;
			arm(h, t);
		}
	}
}

void hpet_write(void *dev, uint32_t offset, unsigned size, uint32_t val)
{
	struct hpet *h = dev;
	write_reg(h, offset, size, val);
	h->changed(h->opaque);
}

void hpet_save(const struct hpet *d, struct snap *s)
{
	snap_put(s, d, offsetof(struct hpet, now_ns));
}

bool hpet_load(struct hpet *d, struct snap *s)
{
	return snap_get(s, d, offsetof(struct hpet, now_ns));
}
