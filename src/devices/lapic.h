/*
 * The local APIC of the one VCPU (xAPIC, MMIO at APIC_BASE): ID, version,
 * TPR/PPR, EOI, SVR, ESR, the LVT entries, IRR/ISR/TMR, the timer in one-shot
 * and periodic modes (its clock is 1 GHz divided by the divide register, as
 * QEMU's), and the ICR for IPIs to itself (fixed and NMI).  The board asks it
 * for the highest deliverable vector and whether LINT0 passes the 8259A's
 * ExtINT through (virtual wire mode).
 */
#ifndef BT86_LAPIC_H
#define BT86_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

#define LAPIC_DEFAULT_BASE 0xFEE00000u

struct lapic {
	uint32_t id, tpr, ldr, dfr, svr, icr_hi;
	uint32_t lvt[6];          /* timer, thermal, PMC, LINT0, LINT1, error */
	uint32_t irr[8], isr[8], tmr[8];
	uint32_t timer_initial, timer_divide_reg;
	uint64_t timer_start_ns, timer_fired;
	bool nmi_pending;
	bool global_enable;       /* APIC_BASE MSR bit 11 */
	/* Wiring, not state: a snapshot saves the fields above. */
	void (*update)(void *opaque);   /* deliverable state may have changed */
	void (*eoi_level)(void *opaque, unsigned vector); /* EOI of a level-triggered vector */
	void *opaque;
};

void lapic_init(struct lapic *l, void (*update)(void *), void (*eoi_level)(void *, unsigned), void *opaque);
uint32_t lapic_read(void *dev, uint32_t offset, unsigned size);
void lapic_write(void *dev, uint32_t offset, unsigned size, uint32_t val);

/* A fixed interrupt for `vector` (from the I/O APIC or an IPI). */
void lapic_accept(struct lapic *l, unsigned vector, bool level);
/* Highest vector deliverable now (above the processor priority), or -1. */
int lapic_pending(const struct lapic *l);
/* The CPU takes it: IRR -> ISR; returns the vector. */
int lapic_acknowledge(struct lapic *l);
/* Whether the 8259A's interrupts reach the CPU (LINT0 as ExtINT, or the
 * APIC disabled). */
bool lapic_passes_extint(const struct lapic *l);
void lapic_poll(struct lapic *l, uint64_t now_ns);
uint64_t lapic_next_deadline(const struct lapic *l);

/* The snapshot (snapshot.h): the state fields, and on load the checks of
 * what this device's code relies on. */
struct snap;
void lapic_save(const struct lapic *d, struct snap *s);
bool lapic_load(struct lapic *d, struct snap *s);

#endif
