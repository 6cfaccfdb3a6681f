#include "board.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../cache/stats.h"
#include "../cpu/run.h"
#include "../cpu/vcpu.h"
#include "../mem/gmem.h"
#include "../snapshot/stream.h"
#include "console.h"

static void serial_tx(void *opaque, uint8_t byte)
{
	struct board *b = opaque;
	fputc(byte, b->serial_out);
	if (byte == '\n')
		fflush(b->serial_out);
	if (panic_watch_byte(&b->panic, (char)byte))
		vcpu_stop(b->v, PANIC_EXIT_STATUS, "the guest kernel panicked: %s", b->panic.reason);
}

static void exit_run(void *opaque, int status)
{
	struct board *b = opaque;
	vcpu_stop(b->v, status, NULL);
}

/* The CPU's INTR line: the local APIC's deliverable vector, an NMI, or the
 * 8259A's output when LINT0 passes it. */
static void update_line(struct board *b)
{
	bool level = lapic_pending(&b->lapic) >= 0 || b->lapic.nmi_pending ||
		     (b->pic.output && lapic_passes_extint(&b->lapic));
	vcpu_set_irq_line(b->v, level);
}

static void rearm(struct board *b)
{
	uint64_t next = board_next_deadline(b);
	if (!b->timer_armed || next == b->armed_deadline)
		return;
	struct itimerspec its = {{0, 0}, {0, 0}};
	if (next != UINT64_MAX) {
		uint64_t host = pit_host_ns(next);
		its.it_value.tv_sec = (time_t)(host / 1000000000u);
		its.it_value.tv_nsec = (long)(host % 1000000000u);
	}
	timer_settime(b->timer, TIMER_ABSTIME, &its, NULL);
	b->v->stats->timer_arms++;
	b->armed_deadline = next;
}

static void pic_output(void *opaque, bool level)
{
	(void)level;
	update_line(opaque);
}

/* A timer device's registers changed: its interrupt line and its next
 * deadline may have. */
static void timer_changed(void *opaque)
{
	struct board *b = opaque;
	update_line(b);
	rearm(b);
}

static void lapic_eoi_level(void *opaque, unsigned vector)
{
	struct board *b = opaque;
	ioapic_eoi(&b->ioapic, vector);
}

/* An ISA interrupt line reaches both the 8259A and the I/O APIC, IRQ 0 on
 * pin 2 (the MP table says so too). */
static void isa_irq(struct board *b, unsigned irq, bool level)
{
	pic_set_irq(&b->pic, irq, level);
	ioapic_set_irq(&b->ioapic, irq == 0 ? 2 : irq, level);
}

/* In the HPET's legacy replacement mode the 8254 and the RTC no longer
 * reach IRQ 0 and IRQ 8. */
static void pit_irq0(void *opaque)
{
	struct board *b = opaque;
	if (hpet_legacy(&b->hpet))
		return;
	isa_irq(b, 0, true);
	isa_irq(b, 0, false);
}

static void hpet_irq(void *opaque, bool isa, unsigned n, bool level)
{
	struct board *b = opaque;
	if (isa)
		isa_irq(b, n, level);
	else
		ioapic_set_irq(&b->ioapic, n, level);
}

/* The I/O APIC's window, whose redirection entries decide whether IRQ 0
 * needs its deadline (irq0_inert). */
static uint32_t ioapic_read_board(void *opaque, uint32_t offset, unsigned size)
{
	return ioapic_read(&((struct board *)opaque)->ioapic, offset, size);
}

static void ioapic_write_board(void *opaque, uint32_t offset, unsigned size, uint32_t val)
{
	struct board *b = opaque;
	ioapic_write(&b->ioapic, offset, size, val);
	rearm(b);
}

static void com1_irq(void *opaque, bool level)
{
	isa_irq(opaque, BOARD_COM1_IRQ, level);
}

static void rtc_irq(void *opaque, bool level)
{
	struct board *b = opaque;
	if (!hpet_legacy(&b->hpet))
		isa_irq(b, BOARD_RTC_IRQ, level);
}

static void ata_irq(void *opaque, bool level)
{
	isa_irq(opaque, BOARD_ATA_IRQ, level);
}

static void kbc_irq(void *opaque, unsigned irq, bool level)
{
	isa_irq(opaque, irq, level);
}

/* A reset (the i8042's line or port 0x92): a PC reboots; bt86, like QEMU
 * with -no-reboot, ends the run, cleanly unless the reset is a panicked
 * Linux's (panic=N). */
static void board_reset(struct board *b, const char *source)
{
	if (b->panic.panicked)
		vcpu_stop(b->v, PANIC_EXIT_STATUS, "the guest kernel panicked: %s (it then reset the machine)",
			  b->panic.reason);
	else
		vcpu_stop(b->v, BT86_EXIT_HALTED, "the guest reset the machine (%s)", source);
}

/* \_S5 through PM1a_CNT: the machine is off; the run ends cleanly. */
static void power_off(void *opaque)
{
	struct board *b = opaque;
	vcpu_stop(b->v, BT86_EXIT_HALTED, "the guest powered off");
}

static void kbc_reset(void *opaque)
{
	board_reset(opaque, "i8042 reset line");
}

/* System control port A (0x92): bit 0 resets the machine on a rising edge,
 * bit 1 is the A20 gate (stored and read back; bt86 never masks A20), the
 * rest are stored. */
static uint32_t port92_read(void *dev, uint16_t offset, unsigned size)
{
	struct board *b = dev;
	(void)offset;
	(void)size;
	return b->port92;
}

static void port92_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	struct board *b = dev;
	bool reset = (val & 1) && !(b->port92 & 1);
	(void)offset;
	(void)size;
	b->port92 = (uint8_t)val;
	if (reset)
		board_reset(b, "system control port A");
}

/* System control port B (0x61): bit 0 gates PIT channel 2, bit 1 enables
 * the speaker (stored; there is no sound), bits 2-3 are stored, bit 4
 * toggles with the DRAM refresh every 15.085 us, bit 5 is channel 2's
 * output. */
static uint32_t port61_read(void *dev, uint16_t offset, unsigned size)
{
	struct board *b = dev;
	uint64_t now = pit_now_ns();
	(void)offset;
	(void)size;
	return (b->port61 & 0x0F) | ((now / 15085) & 1 ? 0x10 : 0) | (pit_output(&b->pit, 2, now) ? 0x20 : 0);
}

static void port61_write(void *dev, uint16_t offset, unsigned size, uint32_t val)
{
	struct board *b = dev;
	(void)offset;
	(void)size;
	b->port61 = (uint8_t)(val & 0x0F);
	pit_set_gate(&b->pit, 2, val & 1);
}

int board_init(struct board *b, struct vcpu *v, FILE *serial_out, char *err, size_t errlen)
{
	memset(b, 0, sizeof *b);
	b->v = v;
	b->serial_out = serial_out;
	b->input_fd = -1;
	pic_init(&b->pic, pic_output, b);
	pit_init(&b->pit, pit_irq0, b);
	lapic_init(&b->lapic, timer_changed, lapic_eoi_level, b);
	ioapic_init(&b->ioapic, &b->lapic);
	b->ioapic.id = 1;
	/* The state PC firmware (SeaBIOS, under QEMU) leaves: IRQ 0, 1, 2 and 6
	 * open on the master, 8, 12, 13 and 14 on the slave, and channel 0
	 * counting 65536 in mode 2 (18.2 Hz) on IRQ 0, at vector 8. */
	b->pic.chip[0].imr = 0xB8;
	b->pic.chip[1].imr = 0x8E;
	/* and the local APIC enabled in virtual wire mode: LINT0 passes the
	 * 8259A (ExtINT), LINT1 is NMI, both level-triggered. */
	b->lapic.svr = 0x1FF;
	b->lapic.lvt[3] = 0x8700;
	b->lapic.lvt[4] = 0x8400;
	pit_write(&b->pit, 3, 1, 0x34);
	pit_write(&b->pit, 0, 1, 0);
	pit_write(&b->pit, 0, 1, 0);
	uart_init(&b->com1, serial_tx, com1_irq, b);
	b->com1.mcr = 0x08; /* OUT2 set, as SeaBIOS leaves it */
	b->com1.now_ns = pit_now_ns; /* its timeout on the board's clock */
	b->port92 = 0x02;   /* A20 on */
	vga_init(&b->vga, v->mem);
	pci_init(&b->pci);
	acpi_pm_init(&b->pm, pit_now_ns, power_off, b);
	hpet_init(&b->hpet, pit_now_ns, hpet_irq, timer_changed, b);
	i8042_init(&b->kbc, kbc_irq, kbc_reset, b);
	rtc_init(&b->rtc, v->mem->size, rtc_irq, b);
	ata_init(&b->ide, ata_irq, b);
	b->disks[0].fd = b->disks[1].fd = -1;
	b->exit_port = (struct debug_exit){.exit = exit_run, .opaque = b};
	if (iobus_register(&b->io, BOARD_PIC_MASTER_PORT, 2, "i8259 (master)", &b->pic.chip[0], pic_read,
			   pic_write, err, errlen) ||
	    iobus_register(&b->io, BOARD_PIC_SLAVE_PORT, 2, "i8259 (slave)", &b->pic.chip[1], pic_read,
			   pic_write, err, errlen) ||
	    iobus_register(&b->io, BOARD_PIT_PORT, 4, "i8254", &b->pit, pit_read, pit_write, err, errlen) ||
	    iobus_register(&b->io, BOARD_COM1_PORT, 8, "uart16550 (COM1)", &b->com1, uart_read,
			   uart_write, err, errlen) ||
	    iobus_register(&b->io, BOARD_EXIT_PORT, 4, "debug-exit", &b->exit_port, NULL,
			   debug_exit_write, err, errlen) ||
	    iobus_register(&b->io, BOARD_POST_PORT, 1, "post-code", NULL, NULL, NULL, err, errlen) ||
	    iobus_register(&b->io, BOARD_PORT92, 1, "system control port A", b, port92_read, port92_write,
			   err, errlen) ||
	    iobus_register(&b->io, VGA_PORT_BASE, VGA_PORT_COUNT, "vga", &b->vga, vga_read, vga_write, err,
			   errlen) ||
	    iobus_register(&b->io, ACPI_PM_PORT, ACPI_PM_PORT_COUNT, "acpi (PM1a and PM timer)", &b->pm,
			   acpi_pm_read, acpi_pm_write, err, errlen) ||
	    iobus_register(&b->io, PCI_PORT, PCI_PORT_COUNT, "pci (configuration mechanism #1)", &b->pci, pci_read,
			   pci_write, err, errlen) ||
	    iobus_register(&b->io, BOARD_PORT61, 1, "system control port B", b, port61_read, port61_write,
			   err, errlen) ||
	    iobus_register(&b->io, BOARD_RTC_PORT, 2, "mc146818 (RTC/CMOS)", &b->rtc, rtc_read, rtc_write, err,
			   errlen) ||
	    iobus_register(&b->io, 0x60, 1, "i8042 data", &b->kbc, i8042_data_read, i8042_data_write, err,
			   errlen) ||
	    iobus_register(&b->io, 0x64, 1, "i8042 status/command", &b->kbc, i8042_status_read,
			   i8042_command_write, err, errlen) ||
	    iobus_register(&b->io, BOARD_ATA_PORT, 8, "ata (primary channel)", &b->ide, ata_read, ata_write,
			   err, errlen) ||
	    iobus_register(&b->io, BOARD_ATA_CONTROL_PORT, 1, "ata (primary control)", &b->ide,
			   ata_control_read, ata_control_write, err, errlen) ||
	    mmio_register(&b->mmio, LAPIC_DEFAULT_BASE, 0x1000, "local APIC", &b->lapic, lapic_read,
			  lapic_write, err, errlen) ||
	    mmio_register(&b->mmio, IOAPIC_DEFAULT_BASE, 0x20, "I/O APIC", b, ioapic_read_board,
			  ioapic_write_board, err, errlen) ||
	    mmio_register(&b->mmio, HPET_BASE, HPET_SIZE, "hpet", &b->hpet, hpet_read, hpet_write, err, errlen)) {
		uart_destroy(&b->com1);
		return -1;
	}
	iobus_set_string(&b->io, BOARD_ATA_PORT, ata_read_string, ata_write_string);
	return 0;
}

int board_attach_disk(struct board *b, unsigned index, const char *path, char *err, size_t errlen)
{
	if (index >= 2) {
		snprintf(err, errlen, "disk index %u: bt86 has the primary ATA channel only (index 0 and 1)", index);
		return -1;
	}
	if (b->disks[index].fd >= 0) {
		snprintf(err, errlen, "disk index %u is given twice (%s and %s)", index, b->disks[index].path, path);
		return -1;
	}
	if (disk_open(&b->disks[index], path, err, errlen))
		return -1;
	ata_attach(&b->ide, index, &b->disks[index]);
	return 0;
}

/* Hands terminal bytes to COM1, as fast as its FIFO drains. */
static void feed_serial(struct board *b, const uint8_t *buf, size_t n)
{
	for (size_t done = 0; done < n;) {
		done += uart_receive(&b->com1, buf + done, (unsigned)(n - done));
		syscall(SYS_tgkill, getpid(), b->vcpu_tid, BOARD_POKE_SIGNAL);
		if (done < n)
			poll(NULL, 0, 1); /* FIFO full: let the guest drain it */
	}
}

static void *input_main(void *p)
{
	struct board *b = p;
	uint8_t buf[256];
	struct console_escape esc = {0};

	for (;;) {
		ssize_t got = read(b->input_fd, buf, sizeof buf);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			__atomic_store_n(&b->input_open, false, __ATOMIC_RELEASE);
			if (b->monitor_closed)
				b->monitor_closed(b->monitor_ctx);
			syscall(SYS_tgkill, getpid(), b->vcpu_tid, BOARD_POKE_SIGNAL);
			return NULL;
		}
		for (size_t off = 0; off < (size_t)got;) {
			bool quit = false, monitor = esc.monitor;
			size_t used;
			uint8_t *at = buf + off;
			size_t n = console_escape(&esc, at, (size_t)got - off, &quit, &used);
			off += used;
			if (monitor && b->monitor_input) {
				if (n)
					b->monitor_input(b->monitor_ctx, at, n);
			} else {
				feed_serial(b, at, n);
			}
			if (quit) {
				vcpu_request_quit(b->v);
				syscall(SYS_tgkill, getpid(), b->vcpu_tid, BOARD_POKE_SIGNAL);
				return NULL;
			}
			if (esc.monitor && !monitor && b->monitor_input)
				b->monitor_input(b->monitor_ctx, NULL, 0); /* its prompt */
		}
	}
}

int board_start_timer(struct board *b, char *err, size_t errlen)
{
	struct sigevent sev;

	memset(&sev, 0, sizeof sev);
	b->vcpu_tid = (pid_t)syscall(SYS_gettid);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = BOARD_POKE_SIGNAL;
	sev._sigev_un._tid = b->vcpu_tid;
	if (timer_create(CLOCK_MONOTONIC, &sev, &b->timer) != 0) {
		snprintf(err, errlen, "cannot create the host timer: %s", strerror(errno));
		return -1;
	}
	b->timer_armed = true;
	b->armed_deadline = 0;
	board_poll(b, pit_now_ns());
	return 0;
}

/* A pulse of IRQ 0 (the 8254's channel 0) that could change nothing: the
 * HPET's legacy replacement holds the line, or the 8259A masks it with a
 * request already latched and the I/O APIC masks pin 2.  Such a channel
 * needs no host timer (a kernel that masks the PIT and runs on another
 * timer would otherwise leave its code 100 times a second): it counts on
 * from the clock anyway, and the first poll after the line opens (the
 * PIC's ports, the I/O APIC's window, the HPET's registers re-arm) pulses
 * once. */
static bool irq0_inert(const struct board *b)
{
	const struct pic_chip *m = &b->pic.chip[0];
	return hpet_legacy(&b->hpet) || ((m->imr & 1) && (m->irr & 1) && ioapic_masked(&b->ioapic, 2));
}

uint64_t board_next_deadline(const struct board *b)
{
	uint64_t p = irq0_inert(b) ? UINT64_MAX : pit_next_deadline(&b->pit), l = lapic_next_deadline(&b->lapic);
	uint64_t r = rtc_next_deadline(&b->rtc), u = uart_next_deadline(&b->com1), h = hpet_next_deadline(&b->hpet);
	uint64_t first = p < l ? p : l;
	first = r < first ? r : first;
	first = h < first ? h : first;
	return u < first ? u : first;
}

void board_poll(struct board *b, uint64_t now_ns)
{
	pit_poll(&b->pit, now_ns);
	lapic_poll(&b->lapic, now_ns);
	rtc_poll(&b->rtc, now_ns);
	hpet_poll(&b->hpet, now_ns);
	uart_poll(&b->com1);
	rearm(b);
}

int board_acknowledge(struct board *b)
{
	int vec = lapic_acknowledge(&b->lapic);
	if (vec < 0 && b->pic.output && lapic_passes_extint(&b->lapic))
		vec = pic_acknowledge(&b->pic);
	update_line(b);
	return vec;
}

bool board_take_nmi(struct board *b)
{
	if (!b->lapic.nmi_pending)
		return false;
	b->lapic.nmi_pending = false;
	update_line(b);
	return true;
}

int board_start_input(struct board *b, int fd)
{
	b->input_fd = fd;
	b->input_open = true;
	if (pthread_create(&b->input_thread, NULL, input_main, b) != 0)
		return -1;
	pthread_detach(b->input_thread);
	return 0;
}

void board_destroy(struct board *b)
{
	fflush(b->serial_out);
	if (b->timer_armed)
		timer_delete(b->timer);
	b->timer_armed = false;
	for (unsigned i = 0; i < 2; i++)
		disk_close(&b->disks[i]);
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
	/* Programming the PIT or the RTC moves the next deadline: re-arm the
	 * host timer.  A byte looped back into the UART's FIFO starts its
	 * character timeout; a write to the master PIC may open IRQ 0 (a
	 * deadline that lagged fires at once). */
	if ((port >= BOARD_PIT_PORT && port < BOARD_PIT_PORT + 4) || port == BOARD_RTC_PORT + 1)
		board_poll(b, pit_now_ns());
	else if ((port >= BOARD_COM1_PORT && port < BOARD_COM1_PORT + 8) || port == BOARD_PIC_MASTER_PORT ||
		 port == BOARD_PIC_MASTER_PORT + 1)
		rearm(b); /* the PIC's mask and ICW1 decide irq0_inert */
}

unsigned board_io_read_string(struct board *b, uint16_t port, unsigned size, void *buf, unsigned count)
{
	return iobus_read_string(&b->io, port, size, buf, count);
}

unsigned board_io_write_string(struct board *b, uint16_t port, unsigned size, const void *buf,
			       unsigned count)
{
	return iobus_write_string(&b->io, port, size, buf, count);
}

void board_save(const struct board *b, struct snap *s)
{
	uint64_t now = pit_now_ns();
	snap_put(s, &now, sizeof now);
	pic_save(&b->pic, s);
	pit_save(&b->pit, s);
	lapic_save(&b->lapic, s);
	ioapic_save(&b->ioapic, s);
	uart_save(&b->com1, s);
	kbc_save(&b->kbc, s);
	rtc_save(&b->rtc, s);
	ata_save(&b->ide, s);
	vga_save(&b->vga, s);
	pci_save(&b->pci, s);
	acpi_pm_save(&b->pm, s);
	hpet_save(&b->hpet, s);
	snap_put(s, &b->port61, sizeof b->port61);
	snap_put(s, &b->port92, sizeof b->port92);
	snap_put(s, &b->panic, sizeof b->panic);
}

bool board_load(struct board *b, struct snap *s)
{
	uint64_t now;
	if (!snap_get(s, &now, sizeof now) || !pic_load(&b->pic, s) || !pit_load(&b->pit, s) ||
	    !lapic_load(&b->lapic, s) || !ioapic_load(&b->ioapic, s) || !uart_load(&b->com1, s) ||
	    !kbc_load(&b->kbc, s) || !rtc_load(&b->rtc, s) || !ata_load(&b->ide, s) || !vga_load(&b->vga, s) ||
	    !pci_load(&b->pci, s) || !acpi_pm_load(&b->pm, s) || !hpet_load(&b->hpet, s) ||
	    !snap_get(s, &b->port61, sizeof b->port61) || !snap_get(s, &b->port92, sizeof b->port92) ||
	    !snap_get(s, &b->panic, sizeof b->panic))
		return false;
	if (b->panic.len >= sizeof b->panic.line)
		return snap_bad(s, "the panic watch's line");
	b->panic.line[sizeof b->panic.line - 1] = b->panic.reason[sizeof b->panic.reason - 1] = 0;
	pit_clock_continue(now);
	update_line(b);
	return true;
}
