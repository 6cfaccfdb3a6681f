#include "uart16550.h"

#include <string.h>

enum { RBR_THR, IER, IIR_FCR, LCR, MCR, LSR, MSR, SCR };

#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xC0

void uart_init(struct uart16550 *u, void (*tx)(void *, uint8_t), void (*set_irq)(void *, bool),
	       void *opaque)
{
	memset(u, 0, sizeof *u);
	pthread_mutex_init(&u->lock, NULL);
	u->tx = tx;
	u->set_irq = set_irq;
	u->opaque = opaque;
	u->msr = 0xB0; /* DCD, DSR, CTS: a terminal is attached */
}

void uart_destroy(struct uart16550 *u)
{
	pthread_mutex_destroy(&u->lock);
}

/* Interrupt identification, highest priority first; called with lock held. */
static uint8_t iir(const struct uart16550 *u)
{
	uint8_t fifo = (u->fcr & 1) ? IIR_FIFO : 0;
	if ((u->ier & IER_RDI) && u->rx_count)
		return IIR_RDI | fifo;
	if ((u->ier & IER_THRI) && u->thr_irq_pending)
		return IIR_THRI | fifo;
	return IIR_NONE | fifo;
}

static void uart_update_irq(struct uart16550 *u)
{
	bool level = !(iir(u) & IIR_NONE) && (u->mcr & 0x08); /* OUT2 gates the line on a PC */
	if (level != u->irq) {
		u->irq = level;
		if (u->set_irq)
			u->set_irq(u->opaque, level);
	}
}

static void rx_push(struct uart16550 *u, uint8_t b)
{
	if (u->rx_count == UART_FIFO) {
		u->lsr_extra |= 0x02; /* overrun */
		return;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO] = b;
	u->rx_count++;
}

uint32_t uart_read(void *dev, uint16_t offset, unsigned size)
{
	struct uart16550 *u = dev;
	uint32_t v = 0xFF;

	(void)size;
	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case RBR_THR:
		if (u->lcr & LCR_DLAB) {
			v = u->dll;
		} else if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART_FIFO;
			u->rx_count--;
		} else {
			v = 0;
		}
		break;
	case IER:
		v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
		break;
	case IIR_FCR:
		v = iir(u);
		if ((v & 0x0F) == IIR_THRI)
			u->thr_irq_pending = false;
		break;
	case LCR:
		v = u->lcr;
		break;
	case MCR:
		v = u->mcr;
		break;
	case LSR:
		v = LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0) | u->lsr_extra;
		u->lsr_extra = 0;
		break;
	case MSR:
		if (u->mcr & MCR_LOOP) /* DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
			v = ((u->mcr & 0x1) << 5) | ((u->mcr & 0x2) << 3) | ((u->mcr & 0x4) << 4) |
			    ((u->mcr & 0x8) << 4);
		else
			v = u->msr;
		break;
	case SCR:
		v = u->scr;
		break;
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return v;
}

void uart_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	struct uart16550 *u = dev;
	uint8_t b = (uint8_t)val;

	(void)size;
	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case RBR_THR:
		if (u->lcr & LCR_DLAB) {
			u->dll = b;
		} else {
			if (u->mcr & MCR_LOOP)
				rx_push(u, b);
			else if (u->tx)
				u->tx(u->opaque, b);
			u->thr_irq_pending = true; /* transmission is instantaneous */
		}
		break;
	case IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = b;
		} else {
			if ((b & IER_THRI) && !(u->ier & IER_THRI))
				u->thr_irq_pending = true;
			u->ier = b & 0x0F;
		}
		break;
	case IIR_FCR:
		u->fcr = b & 0xC9;
		if (b & 0x02) {
			u->rx_head = 0;
			u->rx_count = 0;
		}
		break;
	case LCR:
		u->lcr = b;
		break;
	case MCR:
		u->mcr = b & 0x1F;
		break;
	case SCR:
		u->scr = b;
		break;
	default:
		break;
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

unsigned uart_receive(struct uart16550 *u, const uint8_t *p, unsigned n)
{
	unsigned taken = 0;

	pthread_mutex_lock(&u->lock);
	while (taken < n && u->rx_count < UART_FIFO)
		rx_push(u, p[taken++]);
	pthread_mutex_unlock(&u->lock);
	return taken;
}

void uart_sync(struct uart16550 *u)
{
	pthread_mutex_lock(&u->lock);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}
