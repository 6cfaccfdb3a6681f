/*
 * The HPET (IA-PC HPET specification 1.0a) as QEMU's pc machine has it: at
 * 0xFED00000, a 64-bit main counter at 100 MHz, three timers each with a
 * 64-bit comparator (32-bit mode too), timer 0 periodic-capable; edge or
 * level interrupts, routed to an I/O APIC pin (INT_ROUTE, pins 2 and 8 and
 * 20-23 allowed) or, in legacy replacement mode, timer 0 to ISA IRQ 0 and
 * timer 1 to IRQ 8, where the 8254's and the RTC's lines are then cut off.
 * No FSB (MSI) delivery.  The counter is read from the host clock, so
 * nothing ticks: the board polls the device at its next deadline.
 */
#ifndef BT86_HPET_H
#define BT86_HPET_H

#include <stdbool.h>
#include <stdint.h>

#define HPET_BASE 0xFED00000u
#define HPET_SIZE 0x400u
#define HPET_TIMERS 3
#define HPET_PERIOD_FS 10000000u /* femtoseconds a tick: 100 MHz */
#define HPET_CAP_LOW (0x8086A001u | (HPET_TIMERS - 1u) << 8) /* vendor, LEG_RT, 64-bit counter, rev 1 */

struct hpet_timer {
	uint64_t config;  /* the software-set bits of the configuration register */
	uint64_t cmp, period;
	uint64_t armed_at; /* the counter when the comparator was last set, for the crossing */
	bool armed;        /* it fires when the counter crosses cmp */
	bool line;         /* its interrupt line as last driven */
};

struct hpet {
	uint64_t config, isr;
	uint64_t counter;  /* while disabled; else the value at enabled_ns */
	uint64_t enabled_ns;
	struct hpet_timer t[HPET_TIMERS];
	/* Wiring, not state: a snapshot saves the fields above. */
	uint64_t (*now_ns)(void);
	/* Drives an interrupt line: ISA IRQ `n` when `isa`, else I/O APIC pin n. */
	void (*set_irq)(void *opaque, bool isa, unsigned n, bool level);
	/* A register write may have moved the next deadline. */
	void (*changed)(void *opaque);
	void *opaque;
};

void hpet_init(struct hpet *h, uint64_t (*now_ns)(void), void (*set_irq)(void *, bool, unsigned, bool),
	       void (*changed)(void *), void *opaque);
uint32_t hpet_read(void *dev, uint32_t offset, unsigned size);
void hpet_write(void *dev, uint32_t offset, unsigned size, uint32_t val);
/* Fires every timer whose comparator the counter has reached by now. */
void hpet_poll(struct hpet *h, uint64_t now_ns);
/* When the next timer fires, or UINT64_MAX. */
uint64_t hpet_next_deadline(const struct hpet *h);
/* Enabled in legacy replacement mode: IRQ 0 and 8 are the HPET's. */
bool hpet_legacy(const struct hpet *h);

/* The snapshot (snapshot.h): the state fields, and on load the checks of
 * what this device's code relies on. */
struct snap;
void hpet_save(const struct hpet *d, struct snap *s);
bool hpet_load(struct hpet *d, struct snap *s);

#endif
