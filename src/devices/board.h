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

#include <signal.h>
#include <sys/types.h>
#include <time.h>

#include "acpi_pm.h"
#include "ata.h"
#include "debug_exit.h"
#include "disk.h"
#include "hpet.h"
#include "i8042.h"
#include "i8254.h"
#include "i8259.h"
#include "iobus.h"
#include "ioapic.h"
#include "lapic.h"
#include "mc146818.h"
#include "mmiobus.h"
#include "panic_watch.h"
#include "pci.h"
#include "uart16550.h"
#include "vga.h"

#define BOARD_COM1_PORT 0x3F8
#define BOARD_EXIT_PORT 0xF4
#define BOARD_POST_PORT 0x80
#define BOARD_PIC_MASTER_PORT 0x20
#define BOARD_PIC_SLAVE_PORT 0xA0
#define BOARD_PIT_PORT 0x40
#define BOARD_COM1_IRQ 4
#define BOARD_RTC_PORT 0x70
#define BOARD_PORT61 0x61
#define BOARD_PORT92 0x92
#define BOARD_RTC_IRQ 8
#define BOARD_ATA_PORT 0x1F0
#define BOARD_ATA_CONTROL_PORT 0x3F6
#define BOARD_ATA_IRQ 14
/* The host signal that pokes the VCPU thread: a device deadline passed, or
 * terminal input arrived. */
#define BOARD_POKE_SIGNAL (SIGRTMIN + 0)

struct vcpu;

struct board {
	struct iobus io;
	struct mmiobus mmio;
	struct i8259 pic;
	struct i8254 pit;
	struct lapic lapic;
	struct ioapic ioapic;
	struct uart16550 com1;
	struct i8042 kbc;
	struct mc146818 rtc;
	struct ata_channel ide;  /* the primary ATA channel */
	struct disk disks[2];    /* its master and slave images */
	uint8_t port61;         /* system control port B's stored bits */
	uint8_t port92;         /* system control port A */
	struct vga vga;
	struct pci_host pci;
	struct acpi_pm pm;      /* the ACPI PM1 and timer blocks */
	struct hpet hpet;
	struct debug_exit exit_port;
	struct vcpu *v;
	FILE *serial_out;
	struct panic_watch panic; /* Linux's panic report on COM1 */
	int input_fd;
	pthread_t input_thread;
	bool input_open;        /* the terminal may still send bytes */
	/* Where the terminal's input goes while Ctrl-A c has given it to the
	 * monitor (monitor_console; n == 0 announces the switch). */
	void (*monitor_input)(void *ctx, const uint8_t *buf, size_t n);
	void (*monitor_closed)(void *ctx); /* stdin is closed */
	void *monitor_ctx;
	pid_t vcpu_tid;
	timer_t timer;
	bool timer_armed;
	uint64_t armed_deadline;
};

int board_init(struct board *b, struct vcpu *v, FILE *serial_out, char *err, size_t errlen);
/* Opens a raw image as ATA drive `index` (0 master, 1 slave of the primary
 * channel); before the run starts. */
int board_attach_disk(struct board *b, unsigned index, const char *path, char *err, size_t errlen);
/* Creates the host timer aimed at the calling (VCPU) thread. */
int board_start_timer(struct board *b, char *err, size_t errlen);
/* Feeds bytes read from fd (the host terminal) to COM1 until EOF. */
int board_start_input(struct board *b, int fd);
/* VCPU thread: brings every device up to `now`, updates interrupt lines
 * and re-arms the host timer for the next deadline. */
void board_poll(struct board *b, uint64_t now_ns);
/* The next device deadline, or UINT64_MAX. */
uint64_t board_next_deadline(const struct board *b);
/* The CPU's interrupt acknowledge: the vector of the highest-priority
 * deliverable interrupt (local APIC first, then the 8259A through LINT0),
 * or -1. */
int board_acknowledge(struct board *b);
/* Takes a pending NMI; true if there was one. */
bool board_take_nmi(struct board *b);
void board_destroy(struct board *b);
/* The snapshot (snapshot.h): the board's clock and every device's state,
 * on the VCPU thread; after a load the interrupt line follows the restored
 * devices and the clock counts on from its saved value. */
struct snap;
void board_save(const struct board *b, struct snap *s);
bool board_load(struct board *b, struct snap *s);

uint32_t board_io_read(struct board *b, uint16_t port, unsigned size);
void board_io_write(struct board *b, uint16_t port, unsigned size, uint32_t val);
/* rep ins/outs: how many items the device moved at once (0: one at a time). */
unsigned board_io_read_string(struct board *b, uint16_t port, unsigned size, void *buf, unsigned count);
unsigned board_io_write_string(struct board *b, uint16_t port, unsigned size, const void *buf,
			       unsigned count);

#endif
