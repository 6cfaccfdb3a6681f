#include "acpi_pm.h"

#include <stddef.h>

#include "../snapshot/stream.h"

#define TMR_STS 0x0001u
#define SCI_EN 0x0001u
#define SLP_TYP_SHIFT 10
#define SLP_EN 0x2000u
/* Writable: status's W1C bits (timer, bus master, global, power and sleep
 * button, RTC, wake), enable's matching bits, control's BM_RLD, GBL_RLS
 * and SLP_TYP. */
#define STATUS_BITS 0x8731u
#define ENABLE_BITS 0x0721u
#define CONTROL_BITS 0x1C06u

static uint64_t ticks(const struct acpi_pm *pm)
{
	uint64_t ns = pm->now_ns();
	return ns / 1000000000u * ACPI_PM_TIMER_HZ + ns % 1000000000u * ACPI_PM_TIMER_HZ / 1000000000u;
}

static uint16_t status(const struct acpi_pm *pm)
{
	return (uint16_t)(pm->status | ((ticks(pm) >> 23) != pm->tmr_carry ? TMR_STS : 0));
}

void acpi_pm_init(struct acpi_pm *pm, uint64_t (*now_ns)(void), void (*power_off)(void *), void *opaque)
{
	*pm = (struct acpi_pm){.control = SCI_EN, .now_ns = now_ns, .power_off = power_off, .opaque = opaque};
	pm->tmr_carry = ticks(pm) >> 23;
}

/* The block as bytes: PM1a_STS, PM1a_EN, PM1a_CNT, 2 reserved, PM_TMR. */
uint32_t acpi_pm_read(void *dev, uint16_t offset, unsigned size)
{
	struct acpi_pm *pm = dev;
	uint8_t img[ACPI_PM_PORT_COUNT + 3] = {0};
	uint16_t st = status(pm);
	uint32_t tmr = (uint32_t)(ticks(pm) & 0xFFFFFF);
	img[0] = (uint8_t)st, img[1] = (uint8_t)(st >> 8);
	img[2] = (uint8_t)pm->enable, img[3] = (uint8_t)(pm->enable >> 8);
	img[4] = (uint8_t)pm->control, img[5] = (uint8_t)(pm->control >> 8);
	for (unsigned i = 0; i < 4; i++)
		img[8 + i] = (uint8_t)(tmr >> 8 * i);
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)img[offset + i] << 8 * i;
	return v;
}

void acpi_pm_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	struct acpi_pm *pm = dev;
	for (unsigned i = 0; i < size; i++) {
		unsigned at = offset + i, shift = 8 * (at & 1);
		uint16_t b = (uint16_t)(((val >> 8 * i) & 0xFF) << shift), mask = (uint16_t)(0xFF << shift);
		if (at < 2) {
			uint16_t clear = b & STATUS_BITS;
			if (clear & TMR_STS)
				pm->tmr_carry = ticks(pm) >> 23;
			pm->status &= (uint16_t)~(clear & ~TMR_STS);
		} else if (at < 4) {
			pm->enable = (uint16_t)((pm->enable & ~(mask & ENABLE_BITS)) | (b & ENABLE_BITS));
		} else if (at < 6) {
			pm->control = (uint16_t)((pm->control & ~(mask & CONTROL_BITS)) | (b & CONTROL_BITS));
			if ((b & SLP_EN) && (pm->control >> SLP_TYP_SHIFT & 7) == ACPI_SLP_TYP_S5)
				pm->power_off(pm->opaque);
		}
	}
}

void acpi_pm_save(const struct acpi_pm *d, struct snap *s)
{
	snap_put(s, d, offsetof(struct acpi_pm, now_ns));
}

bool acpi_pm_load(struct acpi_pm *d, struct snap *s)
{
	return snap_get(s, d, offsetof(struct acpi_pm, now_ns));
}
