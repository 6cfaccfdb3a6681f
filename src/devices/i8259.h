/*
 * The 8259A programmable interrupt controller, as the master/slave pair of a
 * PC (the slave cascades into the master's IRQ 2).  Edge-triggered mode with
 * fully nested priority, specific and non-specific EOI, auto-EOI, IRR/ISR
 * reads through OCW3, and the ELCR-less ISA behaviour.  The pair's output
 * (an interrupt is deliverable) is derived in one place, pic_update_irq,
 * after every change.
 */
#ifndef BT86_I8259_H
#define BT86_I8259_H

#include <stdbool.h>
#include <stdint.h>

struct i8259;

struct pic_chip {
	uint8_t irr, isr, imr;
	uint8_t last_level;     /* input lines, for edge detection */
	uint8_t vector_base;
	uint8_t init_step;      /* 0: ready; 2..4: expecting ICW2..ICW4 */
	bool icw4_needed, single, auto_eoi, read_isr;
	uint8_t priority_add;   /* rotation: lowest-priority IRQ + 1 */
	/* Wiring, not state: a snapshot saves the fields above. */
	struct i8259 *pair;     /* for the shared output after a register write */
};

struct i8259 {
	struct pic_chip chip[2];
	bool output;
	/* Wiring, not state: a snapshot saves the fields above. */
	void (*set_output)(void *opaque, bool level);
	void *opaque;
};

void pic_init(struct i8259 *p, void (*set_output)(void *, bool), void *opaque);
/* Raises (level true) or lowers an ISA IRQ line 0-15. */
void pic_set_irq(struct i8259 *p, unsigned irq, bool level);
/* The CPU's interrupt acknowledge: returns the vector and moves the request
 * in service; -1 when nothing is pending. */
int pic_acknowledge(struct i8259 *p);
/* Port handlers; dev is one chip, &pair->chip[0] or [1] (the board places
 * them at 0x20 and 0xA0). */
uint32_t pic_read(void *dev, uint16_t offset, unsigned size);
void pic_write(void *dev, uint16_t offset, unsigned size, uint32_t val);

/* The snapshot (snapshot.h): the state fields, and on load the checks of
 * what this device's code relies on. */
struct snap;
void pic_save(const struct i8259 *p, struct snap *s);
bool pic_load(struct i8259 *p, struct snap *s);

#endif
