/*
 * The runner: bt86 [options] KERNEL.  Option spellings follow QEMU's where
 * QEMU has one (-kernel, -m, -append, -initrd), so that a guest's command
 * line carries over.  Guest serial output goes to stdout; the statistics and
 * every diagnostic go to stderr.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/stats.h"
#include "cache/tc.h"
#include "cpu/compat32.h"
#include "cpu/contain.h"
#include "cpu/emulate.h"
#include "cpu/ring3.h"
#include "cpu/segment.h"
#include "cpu/run.h"
#include "cpu/trace.h"
#include "debug/gdbstub.h"
#include "debug/monitor.h"
#include "snapshot/snapshot.h"
#include "devices/board.h"
#include "devices/console.h"
#include "exit_status.h"
#include "loader/bda.h"
#include "loader/linux.h"
#include "loader/multiboot.h"
#include "loader/acpi.h"
#include "loader/mptable.h"
#include "loader/symbols.h"
#include "mem/gmem.h"
#include "mem/shadow.h"
#include "translator/translate.h"

#define BT86_VERSION "0.1.0"

static struct vcpu *running;

static void on_terminate(int sig)
{
	(void)sig;
	if (running)
		vcpu_request_stop(running);
}

struct options {
	const char *kernel, *append, *initrd, *stats_json, *vga_log;
	const char *log_file;  /* -D: the -d log, stderr by default */
	const char *gdb;       /* -gdb, -s: the GDB stub's socket */
	const char *monitor;   /* -monitor: the monitor's socket */
	const char *loadvm;    /* -loadvm: the snapshot to start from */
	bool allow_changed_disks;
	bool mem_given;        /* -m */
	bool gdb_wait;         /* -S */
	unsigned log_items;    /* -d: TRACE_* */
	uint64_t mem_bytes;
	bool stats;
	unsigned hot;
	uint64_t tc_bytes;
	const char *disk[2];   /* primary ATA master and slave images */
	enum { RING3_AUTO, RING3_TRANSLATED, RING3_DIRECT } ring3; /* --ring3= */
	char drive_file[2][PATH_MAX]; /* -drive's file=, unescaped */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bt86 [options] KERNEL\n"
		"Runs a 32-bit x86 kernel (Multiboot ELF or Linux bzImage) by binary translation.\n\n"
		"  -kernel FILE        the kernel: a Multiboot ELF, or a Linux bzImage (or give it last)\n"
		"  -m SIZE             guest memory, in MiB unless suffixed K, M or G (default 128M)\n"
		"  -append STRING      kernel command line\n"
		"  -initrd FILE[,FILE] Linux: the initrd; Multiboot: modules, each may carry arguments\n"
		"  -drive file=FILE,index=N,format=raw\n"
		"                      a raw disk image as ATA drive N of the primary channel\n"
		"                      (0 master, 1 slave); writes go to the file\n"
		"  -hda FILE, -hdb FILE  the same for index 0 and 1\n"
		"  --stats             print translation statistics to stderr on exit; counts\n"
		"                      block executions (a few instructions per block: not for timing)\n"
		"  --stats-json FILE   write the statistics as JSON (counts executions too)\n"
		"  --stats-hot N       include the N hottest blocks, with their guest code and\n"
		"                      its translation (both disassembled)\n"
		"  --tc-size SIZE      translation cache size (default 64M, at least 4M)\n"
		"  --ring3=MODE        guest ring 3: translated, direct (run natively; needs a host\n"
		"                      that runs 32-bit code) or auto (the default: direct where the\n"
		"                      host can, each address space sent back to translation while\n"
		"                      it enters the kernel often); --stats says which was used\n"
		"                      and whether this host could run ring 3 directly\n"
		"  --vga-log FILE      write the VGA text screen (80x25) to FILE when the run ends\n"
		"  -d ITEMS            log guest events, in QEMU's layout: int (interrupts and\n"
		"                      exceptions with the registers), exec, cpu, nochain (block\n"
		"                      entries, slow); -d help lists the items\n"
		"  -D FILE             write the -d log to FILE instead of stderr\n"
		"  -gdb tcp:[HOST]:PORT  a GDB remote stub on PORT (HOST: localhost if empty)\n"
		"  -s                  the same as -gdb tcp::1234\n"
		"  -S                  stop before the first instruction: for GDB with -gdb or -s,\n"
		"                      else for the monitor's cont\n"
		"  -monitor unix:PATH,server,nowait  the monitor on a Unix socket (also Ctrl-A c)\n"
		"  -loadvm FILE        start from a snapshot the monitor's savevm wrote (the kernel,\n"
		"                      memory size and disks come from it)\n"
		"  --allow-changed-disks  with -loadvm: resume over disk images changed since\n"
		"                      the snapshot was taken\n"
		"  -nographic, -no-reboot  accepted for QEMU compatibility (bt86 always behaves so)\n"
		"  --help, --version\n\n"
		"Guest serial (COM1) is on stdin/stdout; a terminal is put in raw mode\n"
		"while the guest runs (^C goes to the guest).  Ctrl-A x ends the run,\n"
		"Ctrl-A Ctrl-A sends Ctrl-A, Ctrl-A h lists the keys.  Writing V to port\n"
		"0xf4 ends the run with exit status (V << 1) | 1, as QEMU's isa-debug-exit does.\n");
}

/* QEMU's -drive: comma-separated key=value pairs, ",," a literal comma.
 * bt86 has raw images on the primary IDE channel, and says so for any
 * other request. */
static int parse_drive(const char *spec, struct options *o)
{
	char buf[PATH_MAX + 64], *file = NULL, *p = buf;
	long index = -1;
	size_t n = strlen(spec);

	if (n >= sizeof buf) {
		fprintf(stderr, "bt86: -drive %s: too long\n", spec);
		return -1;
	}
	memcpy(buf, spec, n + 1);
	while (*p) {
		char *key = p, *w = p, *val;
		for (; *p; p++) {
			if (*p == ',' && p[1] == ',')
				p++;
			else if (*p == ',')
				break;
			*w++ = *p;
		}
		if (*p)
			p++;
		*w = 0;
		if (!(val = strchr(key, '='))) {
			fprintf(stderr, "bt86: -drive: '%s' is not key=value\n", key);
			return -1;
		}
		*val++ = 0;
		if (!strcmp(key, "file")) {
			file = val;
		} else if (!strcmp(key, "index")) {
			char *end;
			index = strtol(val, &end, 10);
			if (*end || end == val || index < 0) {
				fprintf(stderr, "bt86: -drive: index=%s is not a drive number\n", val);
				return -1;
			}
		} else if (!strcmp(key, "format") && strcmp(val, "raw")) {
			fprintf(stderr, "bt86: -drive: format=%s: bt86 reads raw images only\n", val);
			return -1;
		} else if (!strcmp(key, "if") && strcmp(val, "ide")) {
			fprintf(stderr, "bt86: -drive: if=%s: bt86 has IDE (ATA) disks only\n", val);
			return -1;
		} else if (!strcmp(key, "media") && strcmp(val, "disk")) {
			fprintf(stderr, "bt86: -drive: media=%s: bt86 has hard disks only\n", val);
			return -1;
		} else if (strcmp(key, "format") && strcmp(key, "if") && strcmp(key, "media")) {
			fprintf(stderr, "bt86: -drive: unsupported key %s\n", key);
			return -1;
		}
	}
	if (!file || !*file) {
		fprintf(stderr, "bt86: -drive %s: no file=\n", spec);
		return -1;
	}
	if (index < 0) /* QEMU's rule: the first free position */
		index = o->disk[0] ? 1 : 0;
	if (index > 1) {
		fprintf(stderr, "bt86: -drive index=%ld: bt86 has the primary ATA channel only (index 0 and 1)\n",
			index);
		return -1;
	}
	if (o->disk[index]) {
		fprintf(stderr, "bt86: drive index %ld is given twice\n", index);
		return -1;
	}
	snprintf(o->drive_file[index], sizeof o->drive_file[index], "%s", file);
	o->disk[index] = o->drive_file[index];
	return 0;
}

/* QEMU's size syntax: a number with an optional K/M/G suffix, MiB by default. */
static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t unit = 1ull << 20;

	if (errno || end == s)
		return false;
	switch (*end) {
	case 'k': case 'K': unit = 1ull << 10; end++; break;
	case 'm': case 'M': unit = 1ull << 20; end++; break;
	case 'g': case 'G': unit = 1ull << 30; end++; break;
	case 0: break;
	default: return false;
	}
	if (*end || v == 0 || v > (1ull << 40) / unit)
		return false;
	*out = v * unit;
	return true;
}

static int parse(int argc, char **argv, struct options *o)
{
	memset(o, 0, sizeof *o);
	o->mem_bytes = 128ull << 20;
	o->tc_bytes = 64ull << 20;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = !strcmp(a, "-kernel") || !strcmp(a, "-m") || !strcmp(a, "-append") ||
			     !strcmp(a, "-initrd") || !strcmp(a, "--stats-json") ||
			     !strcmp(a, "--vga-log") || !strcmp(a, "-d") || !strcmp(a, "-D") || !strcmp(a, "-gdb") ||
			     !strcmp(a, "-monitor") || !strcmp(a, "-loadvm") ||
			     !strcmp(a, "--stats-hot") || !strcmp(a, "--tc-size") || !strcmp(a, "-drive") ||
			     !strcmp(a, "-hda") || !strcmp(a, "-hdb");
		if (takes && !val) {
			fprintf(stderr, "bt86: option %s needs a value\n", a);
			return -1;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--version")) {
			printf("bt86 %s\n", BT86_VERSION);
			exit(0);
		} else if (!strcmp(a, "-kernel")) {
			o->kernel = val;
		} else if (!strcmp(a, "-m")) {
			o->mem_given = true;
			if (!parse_size(val, &o->mem_bytes) || o->mem_bytes % 4096 ||
			    o->mem_bytes < (2ull << 20) || o->mem_bytes > (3840ull << 20)) {
				fprintf(stderr, "bt86: -m %s: guest memory must be 2M to 3840M, in whole pages\n", val);
				return -1;
			}
		} else if (!strcmp(a, "-append")) {
			o->append = val;
		} else if (!strcmp(a, "-initrd")) {
			o->initrd = val;
		} else if (!strcmp(a, "-drive")) {
			if (parse_drive(val, o))
				return -1;
		} else if (!strcmp(a, "-hda") || !strcmp(a, "-hdb")) {
			unsigned unit = a[3] == 'b';
			if (o->disk[unit]) {
				fprintf(stderr, "bt86: drive index %u is given twice\n", unit);
				return -1;
			}
			o->disk[unit] = val;
		} else if (!strcmp(a, "-hdc") || !strcmp(a, "-hdd")) {
			fprintf(stderr, "bt86: %s: bt86 has the primary ATA channel only (-hda, -hdb)\n", a);
			return -1;
		} else if (!strcmp(a, "--stats")) {
			o->stats = true;
		} else if (!strcmp(a, "--stats-json")) {
			o->stats_json = val;
		} else if (!strcmp(a, "--vga-log")) {
			o->vga_log = val;
		} else if (!strcmp(a, "-d")) {
			char err[320];
			if (trace_parse_items(val, &o->log_items, stdout, err, sizeof err)) {
				fprintf(stderr, "bt86: %s\n", err);
				return -1;
			}
			if (!o->log_items) /* -d help */
				exit(0);
		} else if (!strcmp(a, "-D")) {
			o->log_file = val;
		} else if (!strcmp(a, "-gdb")) {
			o->gdb = val;
		} else if (!strcmp(a, "-monitor")) {
			o->monitor = val;
		} else if (!strcmp(a, "-loadvm")) {
			o->loadvm = val;
		} else if (!strcmp(a, "--allow-changed-disks")) {
			o->allow_changed_disks = true;
		} else if (!strcmp(a, "-s")) {
			o->gdb = "tcp::1234";
		} else if (!strcmp(a, "-S")) {
			o->gdb_wait = true;
		} else if (!strcmp(a, "--stats-hot")) {
			char *end;
			unsigned long n = strtoul(val, &end, 10);
			if (*end || end == val || n > 1000) {
				fprintf(stderr, "bt86: --stats-hot %s: expected a count from 0 to 1000\n", val);
				return -1;
			}
			o->hot = (unsigned)n;
			o->stats = true;
		} else if (!strcmp(a, "--tc-size")) {
			if (!parse_size(val, &o->tc_bytes) || o->tc_bytes < TC_MIN_SIZE || o->tc_bytes > (1ull << 30)) {
				fprintf(stderr, "bt86: --tc-size %s: expected %uM to 1G\n", val,
					(TC_MIN_SIZE + (1u << 20) - 1) >> 20);
				return -1;
			}
		} else if (!strncmp(a, "--ring3=", 8)) {
			const char *m = a + 8;
			if (!strcmp(m, "auto"))
				o->ring3 = RING3_AUTO;
			else if (!strcmp(m, "translated"))
				o->ring3 = RING3_TRANSLATED;
			else if (!strcmp(m, "direct"))
				o->ring3 = RING3_DIRECT;
			else {
				fprintf(stderr, "bt86: --ring3=%s: expected auto, translated or direct\n", m);
				return -1;
			}
		} else if (!strcmp(a, "-nographic") || !strcmp(a, "-no-reboot")) {
			continue;
		} else if (a[0] == '-') {
			fprintf(stderr, "bt86: unknown option %s (see bt86 --help)\n", a);
			return -1;
		} else if (!o->kernel) {
			o->kernel = a;
			continue;
		} else {
			fprintf(stderr, "bt86: unexpected argument %s (kernel is already %s)\n", a, o->kernel);
			return -1;
		}
		if (takes)
			i++;
	}
	if (o->loadvm && (o->kernel || o->initrd || o->append || o->disk[0] || o->disk[1])) {
		fprintf(stderr, "bt86: -loadvm restores the whole machine: its kernel, initrd, command line and "
				"disks come from the snapshot\n");
		return -1;
	}
	if (o->allow_changed_disks && !o->loadvm) {
		fprintf(stderr, "bt86: --allow-changed-disks goes with -loadvm\n");
		return -1;
	}
	if (!o->kernel && !o->loadvm) {
		fprintf(stderr, "bt86: no kernel given (see bt86 --help)\n");
		return -1;
	}
	return 0;
}

/* The BIOS data area, the MP and ACPI tables, and the entry registers. */
static int boot_tables(struct gmem *mem, struct vcpu *v, const struct boot_state *boot, char *err, size_t errlen)
{
	uint32_t id[4];
	bda_write(mem, BOARD_COM1_PORT);
	cpu_cpuid(1, 0, id);
	if (mptable_write(mem, LAPIC_DEFAULT_BASE, IOAPIC_DEFAULT_BASE, id[0], id[3])) {
		snprintf(err, errlen, "no room for the MP table below 1 MiB");
		return -1;
	}
	if (acpi_write(mem, LAPIC_DEFAULT_BASE, IOAPIC_DEFAULT_BASE)) {
		snprintf(err, errlen, "no room for the ACPI tables below 1 MiB");
		return -1;
	}
	v->hot->eip = boot->entry;
	if (boot->eax == MULTIBOOT_BOOTLOADER_MAGIC) {
		v->hot->gpr[R_EAX] = boot->eax;
		v->hot->gpr[R_EBX] = boot->ebx;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct gmem mem;
	static struct shadow shadow;
	static struct tc tc;
	static struct stats stats;
	static struct vcpu vcpu;
	static struct board board;
	static struct ring3 ring3;
	struct xlate x;
	struct options o;
	struct boot_state boot;
	char err[512];
	int status;

	direct_stub_main(argc, argv); /* when this process is to be the ring-3 host process */

	FILE *json = NULL, *vga_log = NULL, *log = NULL;
	struct symbols syms = {0};
	struct gdb *gdb = NULL;
	struct monitor *monitor = NULL;
	struct snapshot_reader *snap = NULL;
	static struct snapshot_disk snap_disks[SNAPSHOT_DISKS];

	if (parse(argc, argv, &o))
		return BT86_EXIT_USAGE;
	if (o.loadvm) {
		/* The machine the snapshot was taken of: its RAM size and disks. */
		uint32_t ram;
		if (!(snap = snapshot_open(o.loadvm, &ram, snap_disks, err, sizeof err))) {
			fprintf(stderr, "bt86: -loadvm %s\n", err);
			return BT86_EXIT_BAD_INPUT;
		}
		if (o.mem_given && o.mem_bytes != ram) {
			fprintf(stderr, "bt86: -loadvm %s holds %u MiB of RAM, not the %u MiB of -m\n", o.loadvm,
				ram >> 20, (unsigned)(o.mem_bytes >> 20));
			snapshot_close(snap);
			return BT86_EXIT_USAGE;
		}
		o.mem_bytes = ram;
		for (unsigned i = 0; i < SNAPSHOT_DISKS; i++) {
			if (!snap_disks[i].present)
				continue;
			if (!o.allow_changed_disks && !snapshot_disk_unchanged(&snap_disks[i], err, sizeof err)) {
				fprintf(stderr, "bt86: -loadvm %s: %s (--allow-changed-disks resumes anyway)\n", o.loadvm,
					err);
				snapshot_close(snap);
				return BT86_EXIT_BAD_INPUT;
			}
			o.disk[i] = snap_disks[i].path;
		}
	}
	/* Opened now: once contained, the monitor opens nothing. */
	if (o.stats_json && !(json = fopen(o.stats_json, "w"))) {
		fprintf(stderr, "bt86: cannot write %s: %s\n", o.stats_json, strerror(errno));
		return BT86_EXIT_BAD_INPUT;
	}
	if (o.vga_log && !(vga_log = fopen(o.vga_log, "w"))) {
		fprintf(stderr, "bt86: cannot write %s: %s\n", o.vga_log, strerror(errno));
		return BT86_EXIT_BAD_INPUT;
	}
	/* The -d log is fully buffered (written when the run ends or the
	 * buffer fills), so that logging costs no system call per event. */
	if (o.log_file && !(log = fopen(o.log_file, "w"))) {
		fprintf(stderr, "bt86: cannot write %s: %s\n", o.log_file, strerror(errno));
		return BT86_EXIT_BAD_INPUT;
	}
	if (!log && o.log_items && !(log = fdopen(dup(STDERR_FILENO), "w"))) {
		fprintf(stderr, "bt86: cannot log to stderr: %s\n", strerror(errno));
		return BT86_EXIT_BAD_INPUT;
	}
	/* Ring 3's form (issue 14): the probe runs before any large mapping
	 * (it forks). */
	stats.direct_possible = compat32_probe(stats.direct_why, sizeof stats.direct_why);
	if (o.ring3 == RING3_DIRECT && !stats.direct_possible) {
		fprintf(stderr, "bt86: --ring3=direct: this host cannot run guest ring 3 directly: %s\n",
			stats.direct_why);
		return BT86_EXIT_UNSUPPORTED;
	}
	stats.ring3 = o.ring3 == RING3_AUTO ? "translated (auto)" : "translated";
	if (gmem_init(&mem, (uint32_t)o.mem_bytes, err, sizeof err))
		goto fail;
	if (shadow_init(&shadow, &mem, &stats, err, sizeof err))
		goto free_mem;
	if (tc_init(&tc, &mem, &stats, o.tc_bytes, o.stats || o.stats_json, err, sizeof err))
		goto free_shadow;
	if (vcpu_init(&vcpu, &mem, &shadow, &tc, &stats, &board, err, sizeof err))
		goto free_tc;
	if (o.ring3 != RING3_TRANSLATED && stats.direct_possible) {
		/* Before containment: it starts a process. */
		char why[sizeof stats.direct_why];
		if (ring3_start(&ring3, &vcpu, o.ring3 == RING3_AUTO, why, sizeof why) == 0) {
			stats.ring3 = o.ring3 == RING3_AUTO ? "direct (auto)" : "direct";
		} else if (o.ring3 == RING3_DIRECT) {
			snprintf(err, sizeof err, "--ring3=direct: %s", why);
			goto free_vcpu;
		} else {
			stats.direct_possible = false;
			snprintf(stats.direct_why, sizeof stats.direct_why, "%s", why);
		}
	}
	if (board_init(&board, &vcpu, stdout, err, sizeof err))
		goto free_vcpu;
	vcpu.trace = (struct trace){.log = log, .items = o.log_items, .syms = &syms};
	for (unsigned i = 0; i < 2; i++)
		if (o.disk[i] && board_attach_disk(&board, i, o.disk[i], err, sizeof err))
			goto free_board;
	if (snap) {
		char why[sizeof err - 16];
		int rc = snapshot_load(snap, &vcpu, &board, why, sizeof why);
		snap = NULL; /* closed */
		if (rc) {
			snprintf(err, sizeof err, "-loadvm %s", why);
			goto free_board;
		}
	} else if (linux_is_bzimage(o.kernel)) {
		/* The Linux boot protocol: ESI = boot_params, flat __BOOT_CS and
		 * __BOOT_DS from a GDT in guest memory, interrupts off. */
		struct linux_boot lb;
		if (linux_load(&mem, o.kernel, o.append, o.initrd, &lb, err, sizeof err))
			goto free_board;
		boot = (struct boot_state){.entry = lb.entry};
		vcpu.gdtr = (struct dtr){.base = lb.gdt_base, .limit = lb.gdt_limit};
		seg_set_flat(&vcpu, S_CS, LINUX_BOOT_CS, true);
		for (enum sreg s = S_ES; s < S_COUNT; s++)
			if (s != S_CS)
				seg_set_flat(&vcpu, s, LINUX_BOOT_DS, false);
		vcpu.hot->gpr[R_ESI] = lb.boot_params;
	} else if (multiboot_load(&mem, o.kernel, o.append, o.initrd, &boot, err, sizeof err) ||
		   ((o.log_items & TRACE_EXEC) && symbols_load(&syms, o.kernel, err, sizeof err))) {
		goto free_board;
	}
	/* What firmware leaves in memory and the loader in the registers; a
	 * snapshot's RAM and CPU hold them already. */
	if (!o.loadvm && boot_tables(&mem, &vcpu, &boot, err, sizeof err))
		goto free_board;
	xlate_init(&x, &tc, &mem, &stats);
	if (o.gdb) {
		if (!(gdb = gdb_open(o.gdb, o.gdb_wait, err, sizeof err)))
			goto free_board;
		x.stop_before = gdb_stops_before;
		x.stop_ctx = gdb;
	}
	if (!(monitor = monitor_open(o.monitor, err, sizeof err)))
		goto free_board;
	vcpu.monitor = monitor;
	board.monitor_input = monitor_console;
	board.monitor_closed = monitor_console_closed;
	board.monitor_ctx = monitor;
	if (vcpu_signals_install(&vcpu, err, sizeof err))
		goto free_board;
	if (board_start_timer(&board, err, sizeof err))
		goto free_board;
	if (gdb && gdb_start(gdb, &vcpu, board.vcpu_tid, err, sizeof err))
		goto free_board;
	if (monitor_start(monitor, &vcpu, board.vcpu_tid, o.gdb_wait && !gdb, err, sizeof err))
		goto free_board;
	console_raw_begin(STDIN_FILENO);
	if (board_start_input(&board, STDIN_FILENO)) {
		snprintf(err, sizeof err, "cannot start the terminal input thread");
		goto free_board;
	}
	if (contain_install(&tc, err, sizeof err))
		goto free_board;
	struct sigaction sa = {.sa_handler = on_terminate, .sa_flags = SA_ONSTACK};
	sigemptyset(&sa.sa_mask);
	running = &vcpu;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	vcpu_run(&vcpu, &x);
	vcpu_signals_quiesce();
	running = NULL;
	console_restore();

	ring3_stop(&ring3); /* its counts are the statistics' */
	fflush(stdout);
	status = vcpu.exit_status;
	if (vcpu.stop_reason[0])
		fprintf(stderr, "bt86: %s\n", vcpu.stop_reason);
	if (o.stats)
		stats_print(&stats, &tc, o.hot, stderr);
	if (json && stats_write_json(&stats, &tc, o.hot, json))
		fprintf(stderr, "bt86: cannot write %s: %s\n", o.stats_json, strerror(errno));
	if (log && fclose(log))
		fprintf(stderr, "bt86: cannot write %s: %s\n", o.log_file ? o.log_file : "the log",
			strerror(errno));
	if (vga_log && (vga_dump_text(&board.vga, &mem, vga_log) || fclose(vga_log)))
		fprintf(stderr, "bt86: cannot write %s: %s\n", o.vga_log, strerror(errno));
	gdb_close(gdb);
	monitor_close(monitor);
	symbols_free(&syms);
	board_destroy(&board);
	vcpu_destroy(&vcpu);
	tc_destroy(&tc);
	shadow_destroy(&shadow);
	gmem_destroy(&mem);
	return status;

free_board:
	vcpu_signals_quiesce();
	gdb_close(gdb);
	monitor_close(monitor);
	symbols_free(&syms);
	board_destroy(&board);
free_vcpu:
	ring3_stop(&ring3);
	vcpu_destroy(&vcpu);
free_tc:
	tc_destroy(&tc);
free_shadow:
	shadow_destroy(&shadow);
free_mem:
	gmem_destroy(&mem);
fail:
	snapshot_close(snap);
	fprintf(stderr, "bt86: %s\n", err);
	return BT86_EXIT_BAD_INPUT;
}
