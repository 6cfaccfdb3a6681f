/*
 * A 16550A UART: transmit, the receiver (a 16-byte FIFO, or the 16450's
 * single holding register while FIFOs are off) with the line-status bits
 * guests poll, modem control with loopback, scratch register, and the
 * interrupt identification logic: line status, received data at the FIFO's
 * trigger level (1, 4, 8 or 14 bytes), the character timeout (bytes waiting
 * below the trigger level, none received or read for four character times
 * at the programmed baud rate and frame), transmitter empty.  The line it
 * drives is derived in one place, uart_update_irq, after every register
 * access.  The chip knows nothing of COM1: the board places it and wires
 * its output and interrupt line.
 *
 * Time comes from now_ns (the host's monotonic clock; tests replace it).
 * The board polls the chip at uart_next_deadline for the timeout.
 */
#ifndef BT86_UART16550_H
#define BT86_UART16550_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define UART_FIFO 16u

struct uart16550 {
	uint8_t ier, lcr, mcr, lsr_extra, msr, scr, dll, dlm, fcr;
	bool thr_irq_pending;   /* THRE interrupt armed until IIR is read or THR written */
	bool timeout_pending;   /* character timeout indicated, until RBR is read */
	uint64_t timeout_at;    /* when the timeout falls due (ns), or UINT64_MAX */
	uint8_t rx[UART_FIFO];
	unsigned rx_head, rx_count;
	bool irq;               /* the interrupt line as last derived */
	/* Wiring, not state: a snapshot saves the fields above. */
	pthread_mutex_t lock;   /* rx is filled by the host input thread */
	void (*tx)(void *opaque, uint8_t byte);
	void (*set_irq)(void *opaque, bool level);
	void *opaque;
	uint64_t (*now_ns)(void);
};

void uart_init(struct uart16550 *u, void (*tx)(void *, uint8_t), void (*set_irq)(void *, bool),
	       void *opaque);
void uart_destroy(struct uart16550 *u);
uint32_t uart_read(void *dev, uint16_t offset, unsigned size);
void uart_write(void *dev, uint16_t offset, unsigned size, uint32_t val);
/* Host side, any thread: bytes typed on the terminal.  Returns how many
 * the receiver had room for (the caller keeps the rest: nothing is lost).
 * The interrupt line follows at the next uart_poll. */
unsigned uart_receive(struct uart16550 *u, const uint8_t *p, unsigned n);
/* VCPU thread: indicates a due character timeout and brings the interrupt
 * line up to date with received bytes. */
void uart_poll(struct uart16550 *u);
/* When the character timeout falls due, or UINT64_MAX; any thread. */
uint64_t uart_next_deadline(const struct uart16550 *u);

/* The snapshot (snapshot.h): the state fields, and on load the checks of
 * what this device's code relies on. */
struct snap;
void uart_save(const struct uart16550 *d, struct snap *s);
bool uart_load(struct uart16550 *d, struct snap *s);

#endif
