/*
 * The PC board: which device sits at which port, and how device outputs
 * reach the host (serial to stdout, terminal input to the serial receiver,
 * the exit port to the run's status).
 */
#ifndef BT86_BOARD_H
#define BT86_BOARD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "debug_exit.h"
#include "iobus.h"
#include "uart16550.h"

#define BOARD_COM1_PORT 0x3F8
#define BOARD_EXIT_PORT 0xF4
#define BOARD_POST_PORT 0x80

struct vcpu;

struct board {
	struct iobus io;
	struct uart16550 com1;
	struct debug_exit exit_port;
	struct vcpu *v;
	FILE *serial_out;
	int input_fd;
	pthread_t input_thread;
};

int board_init(struct board *b, struct vcpu *v, FILE *serial_out, char *err, size_t errlen);
/* Feeds bytes read from fd (the host terminal) to COM1 until EOF. */
int board_start_input(struct board *b, int fd);
void board_destroy(struct board *b);

uint32_t board_io_read(struct board *b, uint16_t port, unsigned size);
void board_io_write(struct board *b, uint16_t port, unsigned size, uint32_t val);

#endif
