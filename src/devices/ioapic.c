#include "ioapic.h"

#include <stddef.h>
#include <string.h>

#include "lapic.h"
#include "../snapshot/stream.h"

#define RTE_MASKED (1ull << 16)
#define RTE_LEVEL (1ull << 15)
#define RTE_REMOTE_IRR (1ull << 14)
#define RTE_LOGICAL (1ull << 11)

void ioapic_init(struct ioapic *io, struct lapic *lapic)
{
	memset(io, 0, sizeof *io);
	for (int i = 0; i < IOAPIC_PINS; i++)
		io->redir[i] = RTE_MASKED;
	io->lapic = lapic;
}

static bool reaches_cpu(const struct ioapic *io, uint64_t rte)
{
	uint32_t dest = (uint32_t)(rte >> 56);
	if (rte & RTE_LOGICAL)
		return (dest & (io->lapic->ldr >> 24)) != 0 || dest == 0xFF;
	return dest == io->lapic->id || dest == 0xFF;
}

/* Delivers pin `pin` if its line and entry allow. */
static void service(struct ioapic *io, unsigned pin)
{
	uint64_t *rte = &io->redir[pin];
	bool high = io->level & (1u << pin);

	if (!high || (*rte & RTE_MASKED) || !reaches_cpu(io, *rte))
		return;
	if ((*rte & RTE_LEVEL) && (*rte & RTE_REMOTE_IRR))
		return;
	unsigned mode = (unsigned)(*rte >> 8) & 7;
	if (mode == 4) {
		io->lapic->nmi_pending = true;
		io->lapic->update(io->lapic->opaque);
	} else if (mode == 0 || mode == 1) {
		if (*rte & RTE_LEVEL)
			*rte |= RTE_REMOTE_IRR;
		lapic_accept(io->lapic, (unsigned)(*rte & 0xFF), *rte & RTE_LEVEL);
	}
}

void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level)
{
	uint32_t bit = 1u << pin;
	bool was = io->level & bit;

	if (pin >= IOAPIC_PINS)
		return;
	if (level)
		io->level |= bit;
	else
		io->level &= ~bit;
	if (level && (!was || (io->redir[pin] & RTE_LEVEL)))
		service(io, pin);
}

bool ioapic_masked(const struct ioapic *io, unsigned pin)
{
	return io->redir[pin] & RTE_MASKED;
}

void ioapic_eoi(struct ioapic *io, unsigned vector)
{
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t *rte = &io->redir[pin];
		if ((*rte & RTE_LEVEL) && (*rte & RTE_REMOTE_IRR) && (*rte & 0xFF) == vector) {
			*rte &= ~RTE_REMOTE_IRR;
			service(io, pin); /* still asserted: deliver again */
		}
	}
}

static uint32_t reg_read(const struct ioapic *io, uint32_t reg)
{
	switch (reg) {
	case 0x00: return io->id << 24;
	case 0x01: return ((IOAPIC_PINS - 1) << 16) | 0x20;
	case 0x02: return io->id << 24;
	default:
		if (reg >= 0x10 && reg < 0x10 + 2 * IOAPIC_PINS) {
			uint64_t rte = io->redir[(reg - 0x10) / 2];
			return reg & 1 ? (uint32_t)(rte >> 32) : (uint32_t)rte;
		}
		return 0;
	}
}

static void reg_write(struct ioapic *io, uint32_t reg, uint32_t val)
{
	if (reg == 0x00) {
		io->id = (val >> 24) & 0xF;
		return;
	}
	if (reg < 0x10 || reg >= 0x10 + 2 * IOAPIC_PINS)
		return;
	unsigned pin = (reg - 0x10) / 2;
	uint64_t *rte = &io->redir[pin];
	if (reg & 1) {
		*rte = (*rte & 0xFFFFFFFFull) | ((uint64_t)(val & 0xFF000000u) << 32);
	} else {
		/* delivery status (12) and remote IRR (14) are read-only */
		uint64_t keep = *rte & (0xFFFFFFFF00000000ull | RTE_REMOTE_IRR);
		*rte = keep | (val & ~(uint32_t)(RTE_REMOTE_IRR | (1u << 12)));
	}
	service(io, pin); /* an unmasked pin that is high delivers now */
}

uint32_t ioapic_read(void *dev, uint32_t offset, unsigned size)
{
	struct ioapic *io = dev;
	(void)size;
	if (offset == 0x00)
		return io->regsel;
	if (offset == 0x10)
		return reg_read(io, io->regsel);
	return 0;
}

void ioapic_write(void *dev, uint32_t offset, unsigned size, uint32_t val)
{
	struct ioapic *io = dev;
	(void)size;
	if (offset == 0x00)
		io->regsel = val & 0xFF;
	else if (offset == 0x10)
		reg_write(io, io->regsel, val);
}

void ioapic_save(const struct ioapic *d, struct snap *s)
{
	snap_put(s, d, offsetof(struct ioapic, lapic));
}

bool ioapic_load(struct ioapic *d, struct snap *s)
{
	return snap_get(s, d, offsetof(struct ioapic, lapic));
}
