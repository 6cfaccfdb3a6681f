/*
 * The MC146818 real-time clock and CMOS RAM at ports 0x70/0x71, on ISA
 * IRQ 8: the time of day from the host's clock (UTC, as QEMU's default
 * -rtc base=utc), in BCD or binary and 12- or 24-hour form as register B
 * asks, settable by the guest (kept as an offset from the host clock); the
 * periodic interrupt at the rate register A selects; register C's flags,
 * cleared by reading it; register D's valid-RAM bit; and the CMOS bytes PC
 * firmware fills in (memory sizes, the century).
 *
 * Not modelled: the alarm and update-ended interrupts (their enable bits
 * are stored, their flags never set) and the update-in-progress bit (always
 * clear: a read never waits).
 */
#ifndef BT86_MC146818_H
#define BT86_MC146818_H

#include <stdbool.h>
#include <stdint.h>

#define RTC_REG_A 0x0A
#define RTC_REG_B 0x0B
#define RTC_REG_C 0x0C
#define RTC_REG_D 0x0D
#define RTC_CENTURY 0x32 /* where QEMU and SeaBIOS keep it */

#define RTC_B_SET 0x80
#define RTC_B_PIE 0x40
#define RTC_B_BINARY 0x04
#define RTC_B_24H 0x02
#define RTC_C_IRQF 0x80
#define RTC_C_PF 0x40

struct mc146818 {
	uint8_t index;          /* register selected through port 0x70 */
	uint8_t ram[128];       /* registers A-D and the CMOS bytes; the time registers are computed */
	int64_t offset_s;       /* guest time minus host time, from the guest's writes */
	uint64_t next_periodic; /* deadline of the next periodic interrupt (ns), or UINT64_MAX */
	bool irq;               /* the IRQ output (IRQF) */
	/* Wiring, not state: a snapshot saves the fields above. */
	void (*set_irq)(void *opaque, bool level);
	void *opaque;
};

/* ram_bytes sets the CMOS memory-size bytes. */
void rtc_init(struct mc146818 *r, uint64_t ram_bytes, void (*set_irq)(void *, bool), void *opaque);
uint32_t rtc_read(void *dev, uint16_t offset, unsigned size);
void rtc_write(void *dev, uint16_t offset, unsigned size, uint32_t val);
uint64_t rtc_next_deadline(const struct mc146818 *r);
void rtc_poll(struct mc146818 *r, uint64_t now_ns);

/* The snapshot (snapshot.h): the state fields, and on load the checks of
 * what this device's code relies on. */
struct snap;
void rtc_save(const struct mc146818 *d, struct snap *s);
bool rtc_load(struct mc146818 *d, struct snap *s);

#endif
