/*
 * A 16550A UART: transmit, receive FIFO with the line-status bits guests
 * poll, modem control with loopback, scratch register, and the interrupt
 * identification logic (the line it drives is derived in one place,
 * uart_update_irq, after every register access).  The chip knows nothing of
 * COM1: the board places it and wires its output and interrupt line.
 */
#ifndef BT86_UART16550_H
#define BT86_UART16550_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define UART_FIFO 64u

struct uart16550 {
	uint8_t ier, lcr, mcr, lsr_extra, msr, scr, dll, dlm, fcr;
	bool thr_irq_pending;   /* THRE interrupt armed until IIR is read or THR written */
	uint8_t rx[UART_FIFO];
	unsigned rx_head, rx_count;
	pthread_mutex_t lock;   /* rx is filled by the host input thread */
	bool irq;               /* the interrupt line as last derived */
	void (*tx)(void *opaque, uint8_t byte);
	void (*set_irq)(void *opaque, bool level);
	void *opaque;
};

void uart_init(struct uart16550 *u, void (*tx)(void *, uint8_t), void (*set_irq)(void *, bool),
	       void *opaque);
void uart_destroy(struct uart16550 *u);
uint32_t uart_read(void *dev, uint16_t offset, unsigned size);
void uart_write(void *dev, uint16_t offset, unsigned size, uint32_t val);
/* Host side, any thread: bytes typed on the terminal.  Returns how many
 * were taken.  The interrupt line follows at the next uart_sync. */
unsigned uart_receive(struct uart16550 *u, const uint8_t *p, unsigned n);
/* VCPU thread: brings the interrupt line up to date with received bytes. */
void uart_sync(struct uart16550 *u);

#endif
