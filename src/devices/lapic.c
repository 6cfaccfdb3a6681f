#include "lapic.h"

#include <stddef.h>
#include <string.h>

#include "i8254.h"
#include "../snapshot/stream.h"

#define LVT_MASKED 0x10000u
#define LVT_TIMER_PERIODIC 0x20000u
#define SVR_ENABLED 0x100u

enum { LVT_TIMER, LVT_THERMAL, LVT_PMC, LVT_LINT0, LVT_LINT1, LVT_ERROR };

static void reset_lvts(struct lapic *l)
{
	for (int i = 0; i < 6; i++)
		l->lvt[i] = LVT_MASKED;
}

void lapic_init(struct lapic *l, void (*update)(void *), void (*eoi_level)(void *, unsigned), void *opaque)
{
	memset(l, 0, sizeof *l);
	l->dfr = 0xFFFFFFFFu;
	l->svr = 0xFF;
	l->global_enable = true;
	reset_lvts(l);
	l->update = update;
	l->eoi_level = eoi_level;
	l->opaque = opaque;
}

static bool enabled(const struct lapic *l)
{
	return l->global_enable && (l->svr & SVR_ENABLED);
}

static int highest(const uint32_t *bits)
{
	for (int i = 7; i >= 0; i--)
		if (bits[i])
			return i * 32 + 31 - __builtin_clz(bits[i]);
	return -1;
}

static uint32_t ppr(const struct lapic *l)
{
	int isrv = highest(l->isr);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xF0;
	return (l->tpr & 0xF0) >= isr_class ? l->tpr & 0xFF : isr_class;
}

int lapic_pending(const struct lapic *l)
{
	if (!enabled(l))
		return -1;
	int v = highest(l->irr);
	if (v < 0 || ((uint32_t)v & 0xF0) <= (ppr(l) & 0xF0))
		return -1;
	return v;
}

int lapic_acknowledge(struct lapic *l)
{
	int v = lapic_pending(l);
	if (v < 0)
		return -1;
	l->irr[v / 32] &= ~(1u << (v % 32));
	l->isr[v / 32] |= 1u << (v % 32);
	l->update(l->opaque);
	return v;
}

bool lapic_passes_extint(const struct lapic *l)
{
	if (!enabled(l))
		return true;
	uint32_t lint0 = l->lvt[LVT_LINT0];
	return !(lint0 & LVT_MASKED) && ((lint0 >> 8) & 7) == 7;
}

void lapic_accept(struct lapic *l, unsigned vector, bool level)
{
	if (vector < 16)
		return; /* illegal vector: an error the ESR would record */
	l->irr[vector / 32] |= 1u << (vector % 32);
	if (level)
		l->tmr[vector / 32] |= 1u << (vector % 32);
	else
		l->tmr[vector / 32] &= ~(1u << (vector % 32));
	l->update(l->opaque);
}

static unsigned divide_shift(const struct lapic *l)
{
	unsigned v = (l->timer_divide_reg & 3) | ((l->timer_divide_reg >> 1) & 4);
	return v == 7 ? 0 : v + 1; /* divide by 2^(v+1), 0b111 divides by 1 */
}

static uint64_t timer_ticks(const struct lapic *l, uint64_t now)
{
	return (now - l->timer_start_ns) >> divide_shift(l); /* 1 GHz base */
}

static uint32_t current_count(const struct lapic *l)
{
	if (!l->timer_initial)
		return 0;
	uint64_t t = timer_ticks(l, pit_now_ns());
	if (l->lvt[LVT_TIMER] & LVT_TIMER_PERIODIC)
		return l->timer_initial - (uint32_t)(t % l->timer_initial);
	return t >= l->timer_initial ? 0 : l->timer_initial - (uint32_t)t;
}

void lapic_poll(struct lapic *l, uint64_t now)
{
	if (!l->timer_initial)
		return;
	uint64_t t = timer_ticks(l, now), n;
	bool periodic = l->lvt[LVT_TIMER] & LVT_TIMER_PERIODIC;
	n = periodic ? t / l->timer_initial : (t >= l->timer_initial ? 1 : 0);
	if (n > l->timer_fired) {
		l->timer_fired = n; /* late periods coalesce into one interrupt */
		if (!(l->lvt[LVT_TIMER] & LVT_MASKED))
			lapic_accept(l, l->lvt[LVT_TIMER] & 0xFF, false);
	}
}

uint64_t lapic_next_deadline(const struct lapic *l)
{
	if (!l->timer_initial)
		return UINT64_MAX;
	bool periodic = l->lvt[LVT_TIMER] & LVT_TIMER_PERIODIC;
	if (!periodic && l->timer_fired)
		return UINT64_MAX;
	uint64_t ticks = (l->timer_fired + 1) * (uint64_t)l->timer_initial;
	return l->timer_start_ns + (ticks << divide_shift(l));
}

static void eoi(struct lapic *l)
{
	int v = highest(l->isr);
	if (v < 0)
		return;
	l->isr[v / 32] &= ~(1u << (v % 32));
	if (l->tmr[v / 32] & (1u << (v % 32)))
		l->eoi_level(l->opaque, (unsigned)v);
	l->update(l->opaque);
}

static void send_ipi(struct lapic *l, uint32_t lo)
{
	unsigned shorthand = (lo >> 18) & 3, mode = (lo >> 8) & 7, dest = l->icr_hi >> 24;
	bool to_self = shorthand == 1 || shorthand == 2 ||
		       (shorthand == 0 && (dest == l->id || dest == 0xFF));
	if (!to_self)
		return; /* there is no other processor */
	if (mode == 0)
		lapic_accept(l, lo & 0xFF, false);
	else if (mode == 4) {
		l->nmi_pending = true;
		l->update(l->opaque);
	}
}

uint32_t lapic_read(void *dev, uint32_t offset, unsigned size)
{
	struct lapic *l = dev;
	(void)size;
	if (offset >= 0x100 && offset < 0x280) {
		unsigned i = (offset & 0x7F) >> 4;
		return offset < 0x180 ? l->isr[i] : offset < 0x200 ? l->tmr[i] : l->irr[i];
	}
	switch (offset) {
	case 0x20: return l->id << 24;
	case 0x30: return 0x00050014u; /* version 0x14, six LVT entries */
	case 0x80: return l->tpr;
	case 0x90: return 0;
	case 0xA0: return ppr(l);
	case 0xD0: return l->ldr;
	case 0xE0: return l->dfr;
	case 0xF0: return l->svr;
	case 0x280: return 0;
	case 0x300: return 0; /* ICR low: delivery is immediate */
	case 0x310: return l->icr_hi;
	case 0x320: case 0x330: case 0x340: case 0x350: case 0x360: case 0x370:
		return l->lvt[(offset - 0x320) >> 4];
	case 0x380: return l->timer_initial;
	case 0x390: return current_count(l);
	case 0x3E0: return l->timer_divide_reg;
	default: return 0;
	}
}

void lapic_write(void *dev, uint32_t offset, unsigned size, uint32_t val)
{
	struct lapic *l = dev;
	(void)size;
	switch (offset) {
	case 0x20: l->id = val >> 24; break;
	case 0x80: l->tpr = val & 0xFF; break;
	case 0xB0: eoi(l); break;
	case 0xD0: l->ldr = val & 0xFF000000u; break;
	case 0xE0: l->dfr = val | 0x0FFFFFFFu; break;
	case 0xF0:
		l->svr = val & 0x3FF;
		if (!(l->svr & SVR_ENABLED))
			for (int i = 0; i < 6; i++)
				l->lvt[i] |= LVT_MASKED; /* software disable masks every LVT */
		break;
	case 0x280: break;
	case 0x300: send_ipi(l, val); break;
	case 0x310: l->icr_hi = val & 0xFF000000u; break;
	case 0x320: case 0x330: case 0x340: case 0x350: case 0x360: case 0x370: {
		uint32_t v = val & 0x0007A7FFu; /* delivery status and remote IRR read as 0 */
		if (!(l->svr & SVR_ENABLED))
			v |= LVT_MASKED;
		l->lvt[(offset - 0x320) >> 4] = v;
		break;
	}
	case 0x380:
		l->timer_initial = val;
		l->timer_start_ns = pit_now_ns();
		l->timer_fired = 0;
		break;
	case 0x3E0: l->timer_divide_reg = val & 0xB; break;
	default: break;
	}
	l->update(l->opaque);
}

void lapic_save(const struct lapic *d, struct snap *s)
{
	snap_put(s, d, offsetof(struct lapic, update));
}

bool lapic_load(struct lapic *d, struct snap *s)
{
	return snap_get(s, d, offsetof(struct lapic, update));
}
