/*
 * The 8254 programmable interval timer: three channels counting at
 * 1.193182 MHz, access modes lobyte/hibyte/both, counter latch and
 * read-back, modes 0 (interrupt on terminal count), 2 (rate generator) and 3
 * (square wave); modes 1, 4 and 5 count like 0.  Channel 0's output is
 * IRQ 0; channel 2's gate and output are bits 0 and 5 of port 0x61 (the
 * board's), which is how Linux calibrates its TSC.  A low gate holds the
 * count; raising it resumes counting in modes 0 and 4 and restarts the
 * period in the others.  Time is the host's monotonic clock: the counters are computed from
 * it when read, and pit_poll raises IRQ 0 for periods that have ended (one
 * edge however many ended, as a late interrupt on hardware coalesces).
 */
#ifndef BT86_I8254_H
#define BT86_I8254_H

#include <stdbool.h>
#include <stdint.h>

#define PIT_HZ 1193182u

struct pit_channel {
	uint32_t reload;        /* 1..65536 */
	uint8_t mode, access;   /* access: 1 lo, 2 hi, 3 lo then hi */
	bool loaded, write_hi, read_hi;
	uint8_t pending_lo;
	bool latched;
	uint16_t latch;
	bool gate;
	uint64_t held;          /* ticks counted when the gate fell */
	uint64_t start_ns;      /* when counting began from reload */
	uint64_t fired;         /* periods already signalled */
};

struct i8254 {
	struct pit_channel ch[3];
	/* Wiring, not state: a snapshot saves the fields above. */
	void (*pulse_irq0)(void *opaque);
	void *opaque;
};

void pit_init(struct i8254 *p, void (*pulse_irq0)(void *), void *opaque);
uint32_t pit_read(void *dev, uint16_t offset, unsigned size);
void pit_write(void *dev, uint16_t offset, unsigned size, uint32_t val);
/* Signals IRQ 0 if channel 0's output rose since the last poll. */
void pit_poll(struct i8254 *p, uint64_t now_ns);
/* When channel 0 next raises IRQ 0, or UINT64_MAX. */
uint64_t pit_next_deadline(const struct i8254 *p);

/* Channel i's gate input, and its output level at `now`. */
void pit_set_gate(struct i8254 *p, unsigned i, bool level);
bool pit_output(const struct i8254 *p, unsigned i, uint64_t now);

/* The board's one clock, in ns: the host's monotonic clock, shifted by a
 * restored snapshot so that the guest's time continues from where it was
 * saved.  Every device deadline is on this clock. */
uint64_t pit_now_ns(void);
/* From now on pit_now_ns() counts on from `now` (a snapshot's load, before
 * the run). */
void pit_clock_continue(uint64_t now);
/* The host's monotonic time at which the board's clock reads `board_ns`
 * (for the host timer). */
uint64_t pit_host_ns(uint64_t board_ns);

/* The snapshot (snapshot.h): the state fields, and on load the checks of
 * what this device's code relies on. */
struct snap;
void pit_save(const struct i8254 *d, struct snap *s);
bool pit_load(struct i8254 *d, struct snap *s);

#endif
