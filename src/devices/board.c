#include "board.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "../cpu/vcpu.h"

static void serial_tx(void *opaque, uint8_t byte)
{
	struct board *b = opaque;
	fputc(byte, b->serial_out);
	if (byte == '\n')
		fflush(b->serial_out);
}

static void exit_run(void *opaque, int status)
{
	struct board *b = opaque;
	vcpu_stop(b->v, status, NULL);
}

int board_init(struct board *b, struct vcpu *v, FILE *serial_out, char *err, size_t errlen)
{
	memset(b, 0, sizeof *b);
	b->v = v;
	b->serial_out = serial_out;
	b->input_fd = -1;
	uart_init(&b->com1, serial_tx, NULL, b);
	b->exit_port = (struct debug_exit){.exit = exit_run, .opaque = b};
	if (iobus_register(&b->io, BOARD_COM1_PORT, 8, "uart16550 (COM1)", &b->com1, uart_read,
			   uart_write, err, errlen) ||
	    iobus_register(&b->io, BOARD_EXIT_PORT, 4, "debug-exit", &b->exit_port, NULL,
			   debug_exit_write, err, errlen) ||
	    iobus_register(&b->io, BOARD_POST_PORT, 1, "post-code", NULL, NULL, NULL, err, errlen)) {
		uart_destroy(&b->com1);
		return -1;
	}
	return 0;
}

static void *input_main(void *p)
{
	struct board *b = p;
	uint8_t buf[256];

	for (;;) {
		ssize_t n = read(b->input_fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		for (ssize_t done = 0; done < n;) {
			done += uart_receive(&b->com1, buf + done, (unsigned)(n - done));
			if (done < n)
				poll(NULL, 0, 1); /* FIFO full: let the guest drain it */
		}
	}
}

int board_start_input(struct board *b, int fd)
{
	b->input_fd = fd;
	if (pthread_create(&b->input_thread, NULL, input_main, b) != 0)
		return -1;
	pthread_detach(b->input_thread);
	return 0;
}

void board_destroy(struct board *b)
{
	fflush(b->serial_out);
	/* The detached input thread may still sit in read(); it touches only
	 * the UART, which stays valid until the process exits. */
}

uint32_t board_io_read(struct board *b, uint16_t port, unsigned size)
{
	return iobus_read(&b->io, port, size);
}

void board_io_write(struct board *b, uint16_t port, unsigned size, uint32_t val)
{
	iobus_write(&b->io, port, size, val);
}
