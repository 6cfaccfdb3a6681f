#include "uart16550.h"

#include <stddef.h>
#include <string.h>
#include <time.h>

#include "../snapshot/stream.h"

enum { RBR_THR, IER, IIR_FCR, LCR, MCR, LSR, MSR, SCR };

#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS 0x1E /* overrun, parity, framing, break */
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_CTI 0x0C
#define IIR_FIFO 0xC0
#define FCR_ENABLE 0x01
#define FCR_RX_RESET 0x02

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void uart_init(struct uart16550 *u, void (*tx)(void *, uint8_t), void (*set_irq)(void *, bool),
	       void *opaque)
{
	memset(u, 0, sizeof *u);
	pthread_mutex_init(&u->lock, NULL);
	u->tx = tx;
	u->set_irq = set_irq;
	u->opaque = opaque;
	u->msr = 0xB0; /* DCD, DSR, CTS: a terminal is attached */
	u->timeout_at = UINT64_MAX;
	u->now_ns = monotonic_ns;
}

void uart_destroy(struct uart16550 *u)
{
	pthread_mutex_destroy(&u->lock);
}

static unsigned rx_capacity(const struct uart16550 *u)
{
	return (u->fcr & FCR_ENABLE) ? UART_FIFO : 1;
}

static unsigned rx_trigger(const struct uart16550 *u)
{
	static const unsigned level[4] = {1, 4, 8, 14};
	return (u->fcr & FCR_ENABLE) ? level[u->fcr >> 6] : 1;
}

/* Four character times at the programmed rate (115200 / divisor) and
 * frame (start, data, parity and stop bits), as QEMU's 16550 counts them;
 * with no divisor yet, 9600 baud and ten bits. */
static uint64_t timeout_ns(const struct uart16550 *u)
{
	unsigned divisor = (unsigned)u->dlm << 8 | u->dll;
	unsigned bits = 1 + 5 + (u->lcr & 3) + ((u->lcr & 0x08) ? 1 : 0) + ((u->lcr & 0x04) ? 2 : 1);
	if (!divisor)
		return 4ull * (1000000000u / 9600) * 10;
	return 4ull * (1000000000u / (115200 / divisor)) * bits;
}

/* Restarts the timeout: a byte arrived or the guest read one. */
static void rx_activity(struct uart16550 *u)
{
	uint64_t at = (u->fcr & FCR_ENABLE) && u->rx_count ? u->now_ns() + timeout_ns(u) : UINT64_MAX;
	__atomic_store_n(&u->timeout_at, at, __ATOMIC_RELAXED);
}

static void rx_reset(struct uart16550 *u)
{
	u->rx_head = 0;
	u->rx_count = 0;
	u->timeout_pending = false;
	__atomic_store_n(&u->timeout_at, UINT64_MAX, __ATOMIC_RELAXED);
}

/* Interrupt identification, highest priority first (the timeout before
 * data at the trigger level, as in QEMU); called with lock held. */
static uint8_t iir(const struct uart16550 *u)
{
	uint8_t fifo = (u->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
	if ((u->ier & IER_RLSI) && (u->lsr_extra & LSR_ERRORS))
		return IIR_RLSI | fifo;
	if ((u->ier & IER_RDI) && u->timeout_pending)
		return IIR_CTI | fifo;
	if ((u->ier & IER_RDI) && u->rx_count && u->rx_count >= rx_trigger(u))
		return IIR_RDI | fifo;
	if ((u->ier & IER_THRI) && u->thr_irq_pending)
		return IIR_THRI | fifo;
	return IIR_NONE | fifo;
}

static void uart_update_irq(struct uart16550 *u)
{
	/* On a PC board OUT2 gates the line; QEMU wires it straight, and
	 * kernels (xv6) that clear MCR rely on that, so bt86 does too. */
	bool level = !(iir(u) & IIR_NONE);
	if (level != u->irq) {
		u->irq = level;
		if (u->set_irq)
			u->set_irq(u->opaque, level);
	}
}

/* A received byte; with the FIFO full it is lost (overrun), without FIFOs
 * it replaces the unread one (overrun too), as on the chip. */
static void rx_push(struct uart16550 *u, uint8_t b)
{
	if (u->rx_count == rx_capacity(u)) {
		u->lsr_extra |= 0x02;
		if (u->fcr & FCR_ENABLE)
			return;
		u->rx_count = 0;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO] = b;
	u->rx_count++;
	rx_activity(u);
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
		} else {
			v = 0;
			if (u->rx_count) {
				v = u->rx[u->rx_head];
				u->rx_head = (u->rx_head + 1) % UART_FIFO;
				u->rx_count--;
			}
			u->timeout_pending = false;
			rx_activity(u);
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
		/* Turning the FIFOs on or off empties them. */
		if ((b ^ u->fcr) & FCR_ENABLE)
			b |= FCR_RX_RESET;
		u->fcr = b & 0xC9;
		if (b & FCR_RX_RESET)
			rx_reset(u);
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
	while (taken < n && u->rx_count < rx_capacity(u))
		rx_push(u, p[taken++]);
	pthread_mutex_unlock(&u->lock);
	return taken;
}

void uart_poll(struct uart16550 *u)
{
	pthread_mutex_lock(&u->lock);
	if (u->now_ns() >= u->timeout_at) {
		u->timeout_at = UINT64_MAX;
		u->timeout_pending = u->rx_count != 0;
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

uint64_t uart_next_deadline(const struct uart16550 *u)
{
	return __atomic_load_n(&u->timeout_at, __ATOMIC_RELAXED);
}

void uart_save(const struct uart16550 *d, struct snap *s)
{
	snap_put(s, d, offsetof(struct uart16550, lock));
}

bool uart_load(struct uart16550 *d, struct snap *s)
{
	if (!snap_get(s, d, offsetof(struct uart16550, lock)))
		return false;
	return d->rx_head < UART_FIFO && d->rx_count <= UART_FIFO ? true : snap_bad(s, "the 16550's receive FIFO");
}
