/*
 * The ACPI fixed hardware the FADT points at (ACPI 6.5 ch. 4.8), at the
 * ports QEMU's PIIX4 power management uses: the PM1a event block at 0x600
 * (status, enable), the PM1a control block at 0x604 and the PM timer at
 * 0x608, a 24-bit counter at 3.579545 MHz with TMR_STS set each time its
 * bit 23 changes.  SCI_EN reads as set: the FADT has no SMI command port,
 * so the machine is always in ACPI mode.  Writing SLP_EN with SLP_TYP = 5
 * (the DSDT's \_S5) powers the machine off.  No event raises the SCI:
 * the only event sources here are the timer's carry and the power button,
 * which nothing presses.
 */
#ifndef BT86_ACPI_PM_H
#define BT86_ACPI_PM_H

#include <stdbool.h>
#include <stdint.h>

#define ACPI_PM_PORT 0x600
#define ACPI_PM_PORT_COUNT 12
#define ACPI_PM1_EVT 0x600
#define ACPI_PM1_CNT 0x604
#define ACPI_PM_TMR 0x608
#define ACPI_SLP_TYP_S5 5u
#define ACPI_PM_TIMER_HZ 3579545u

struct acpi_pm {
	uint16_t status, enable, control;
	uint64_t tmr_carry;              /* the timer's bit-23 periods seen when TMR_STS was last cleared */
	/* Wiring, not state: a snapshot saves the fields above. */
	uint64_t (*now_ns)(void);
	void (*power_off)(void *opaque);
	void *opaque;
};

void acpi_pm_init(struct acpi_pm *pm, uint64_t (*now_ns)(void), void (*power_off)(void *), void *opaque);
uint32_t acpi_pm_read(void *dev, uint16_t offset, unsigned size);
void acpi_pm_write(void *dev, uint16_t offset, unsigned size, uint32_t val);

/* The snapshot (snapshot.h): the state fields, and on load the checks of
 * what this device's code relies on. */
struct snap;
void acpi_pm_save(const struct acpi_pm *d, struct snap *s);
bool acpi_pm_load(struct acpi_pm *d, struct snap *s);

#endif
