#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>
#include <zstd.h>

#include "../cache/tc.h"
#include "../cpu/emulate.h"
#include "../cpu/run.h"
#include "../cpu/segment.h"
#include "../cpu/vcpu.h"
#include "../devices/board.h"
#include "../mem/gmem.h"
#include "../mem/shadow.h"
#include "../mem/vmem.h"
#include "stream.h"

#define MAGIC "BT86SNAP"
/* Bumped whenever what a section holds changes in a way its size does not
 * show (the layout signature below covers the sizes). */
#define SNAPSHOT_FORMAT 1u
#define PAGE 4096u
#define RUN_PAGES 256u /* pages per RAM run at most: 1 MiB */
#define IO_BYTES (1u << 17)

struct header {
	char magic[8];
	uint32_t format;
	uint32_t layout;
	uint32_t ram_bytes;
	uint32_t reserved;
};

/* The VCPU as saved: what the guest can see, nothing derived. */
struct snap_cpu {
	struct vcpu_fx fx;
	uint32_t gpr[8], eip, eflags;
	uint32_t cr0, cr2, cr3, cr4, efer;
	uint32_t dr[8];
	struct dtr gdtr, idtr;
	struct seg_cache seg[S_COUNT], ldtr, tr;
	uint32_t cpl;
	uint8_t halted, nmi_blocked;
	uint16_t sysenter_cs;
	uint32_t sysenter_esp, sysenter_eip, tsc_aux;
	uint64_t tsc;
};

struct snap {
	int fd;
	const char *path;
	bool writing;
	bool failed;
	char err[512];
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	uint8_t *buf;           /* compressed bytes on their way to or from fd */
	ZSTD_inBuffer in;       /* reading: what buf holds */
	bool frame_done;        /* reading: the frame (and its checksum) ended */
	uint64_t file_bytes;
};

struct snapshot_reader {
	struct snap s;
};

/* FNV-1a over the sizes of everything saved. */
static uint32_t layout_signature(void)
{
	const uint64_t sizes[] = {
		sizeof(struct header), sizeof(struct snap_cpu), offsetof(struct pic_chip, pair),
		offsetof(struct i8254, pulse_irq0), offsetof(struct lapic, update), offsetof(struct ioapic, lapic),
		offsetof(struct uart16550, lock), offsetof(struct i8042, set_irq), offsetof(struct mc146818, set_irq),
		offsetof(struct ata_drive, disk), offsetof(struct ata_channel, set_irq) - offsetof(struct ata_channel, selected),
		sizeof(struct vga), sizeof(struct pci_host), offsetof(struct acpi_pm, now_ns),
		offsetof(struct hpet, now_ns), sizeof(struct panic_watch), sizeof(struct snapshot_disk),
	};
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		for (unsigned k = 0; k < 8; k++)
			h = (h ^ (uint8_t)(sizes[i] >> (8 * k))) * 16777619u;
	return h;
}

static bool fail(struct snap *s, const char *fmt, ...)
{
	if (s->failed)
		return false;
	s->failed = true;
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(s->err, sizeof s->err, "%s: ", s->path);
	vsnprintf(s->err + n, sizeof s->err - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

bool snap_bad(struct snap *s, const char *what)
{
	return fail(s, "damaged: %s is out of range", what);
}

static bool write_all(struct snap *s, const void *p, size_t n)
{
	for (size_t done = 0; done < n;) {
		ssize_t k = write(s->fd, (const uint8_t *)p + done, n - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return fail(s, "write failed: %s", k < 0 ? strerror(errno) : "no space");
		done += (size_t)k;
	}
	s->file_bytes += n;
	return true;
}

/* Compresses p (mode ZSTD_e_continue) or ends the frame (ZSTD_e_end). */
static void compress(struct snap *s, const void *p, size_t n, ZSTD_EndDirective mode)
{
	ZSTD_inBuffer in = {p, n, 0};
	for (;;) {
		ZSTD_outBuffer out = {s->buf, IO_BYTES, 0};
		size_t left = ZSTD_compressStream2(s->cctx, &out, &in, mode);
		if (ZSTD_isError(left)) {
			fail(s, "zstd: %s", ZSTD_getErrorName(left));
			return;
		}
		if (out.pos && !write_all(s, s->buf, out.pos))
			return;
		if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
			return;
	}
}

void snap_put(struct snap *s, const void *p, size_t n)
{
	if (!s->failed && n)
		compress(s, p, n, ZSTD_e_continue);
}

bool snap_get(struct snap *s, void *p, size_t n)
{
	ZSTD_outBuffer out = {p, n, 0};
	while (!s->failed && out.pos < n) {
		if (s->frame_done)
			return fail(s, "truncated");
		if (s->in.pos == s->in.size) {
			ssize_t k = read(s->fd, s->buf, IO_BYTES);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return fail(s, "%s", strerror(errno));
			if (k == 0)
				return fail(s, "truncated");
			s->in = (ZSTD_inBuffer){s->buf, (size_t)k, 0};
		}
		size_t r = ZSTD_decompressStream(s->dctx, &out, &s->in);
		if (ZSTD_isError(r))
			return fail(s, "damaged (zstd: %s)", ZSTD_getErrorName(r));
		if (r == 0)
			s->frame_done = true;
	}
	return !s->failed;
}

static void put_tag(struct snap *s, const char tag[4])
{
	snap_put(s, tag, 4);
}

static bool get_tag(struct snap *s, const char tag[4])
{
	char got[4];
	if (!snap_get(s, got, 4))
		return false;
	if (memcmp(got, tag, 4))
		return fail(s, "damaged: no section '%.4s' where it belongs", tag);
	return true;
}

/* --- saving -------------------------------------------------------------- */

static void save_disks(struct snap *s, const struct board *b)
{
	for (unsigned i = 0; i < SNAPSHOT_DISKS; i++) {
		struct snapshot_disk d = {0};
		struct stat st;
		const struct disk *k = &b->disks[i];
		if (k->fd >= 0 && fstat(k->fd, &st) == 0) {
			d.present = true;
			d.size = (uint64_t)st.st_size;
			d.mtime_s = st.st_mtim.tv_sec;
			d.mtime_ns = st.st_mtim.tv_nsec;
			snprintf(d.path, sizeof d.path, "%s", k->real_path ? k->real_path : k->path);
		}
		snap_put(s, &d, sizeof d);
	}
}

static void save_cpu(struct snap *s, struct vcpu *v)
{
	struct snap_cpu c;
	memset(&c, 0, sizeof c); /* padding too: the same machine, the same file */
	seg_sync_reloads(v);
	vcpu_fx_read(v, &c.fx);
	memcpy(c.gpr, v->hot->gpr, sizeof c.gpr);
	c.eip = v->hot->eip;
	c.eflags = vcpu_eflags(v);
	c.cr0 = v->cr0;
	c.cr2 = v->hot->cr2;
	c.cr3 = v->cr3;
	c.cr4 = v->cr4;
	c.efer = v->efer;
	memcpy(c.dr, v->dr, sizeof c.dr);
	c.gdtr = v->gdtr;
	c.idtr = v->idtr;
	memcpy(c.seg, v->seg, sizeof c.seg);
	c.ldtr = v->ldtr;
	c.tr = v->tr;
	c.cpl = v->cpl;
	c.halted = v->halted;
	c.nmi_blocked = v->nmi_blocked;
	c.sysenter_cs = v->sysenter_cs;
	c.sysenter_esp = v->sysenter_esp;
	c.sysenter_eip = v->sysenter_eip;
	c.tsc_aux = v->hot->tsc_aux;
	c.tsc = cpu_rdtsc(v);
	snap_put(s, &c, sizeof c);
}

static bool page_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE];
	return !memcmp(p, zero, PAGE);
}

/* RAM as runs of nonzero pages: (first page, count, bytes), ended by a
 * run of count 0.  Returns the pages saved. */
static uint32_t save_ram(struct snap *s, const struct gmem *m)
{
	uint32_t pages = m->size / PAGE, saved = 0;
	for (uint32_t p = 0; p < pages;) {
		if (page_zero(m->ram + (size_t)p * PAGE)) {
			p++;
			continue;
		}
		uint32_t n = 1;
		while (p + n < pages && n < RUN_PAGES && !page_zero(m->ram + (size_t)(p + n) * PAGE))
			n++;
		uint32_t run[2] = {p, n};
		snap_put(s, run, sizeof run);
		snap_put(s, m->ram + (size_t)p * PAGE, (size_t)n * PAGE);
		saved += n;
		p += n;
	}
	uint32_t end[2] = {0, 0};
	snap_put(s, end, sizeof end);
	return saved;
}

int snapshot_save(const char *path, struct vcpu *v, struct board *b, char *done, size_t donelen, char *err,
		  size_t errlen)
{
	struct snap s = {.path = path, .writing = true};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* The flags containment allows for this open alone (contain.c). */
	s.fd = open(path, SNAPSHOT_OPEN_FLAGS, 0644);
	if (s.fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	s.cctx = ZSTD_createCCtx();
	s.buf = malloc(IO_BYTES);
	if (!s.cctx || !s.buf) {
		fail(&s, "out of memory");
	} else {
		ZSTD_CCtx_setParameter(s.cctx, ZSTD_c_compressionLevel, 3);
		ZSTD_CCtx_setParameter(s.cctx, ZSTD_c_checksumFlag, 1);
	}
	struct header h = {.format = SNAPSHOT_FORMAT, .layout = layout_signature(), .ram_bytes = v->mem->size};
	memcpy(h.magic, MAGIC, 8);
	if (!s.failed)
		write_all(&s, &h, sizeof h);
	fflush(b->serial_out); /* what the guest printed before this point is out */
	put_tag(&s, "disk");
	save_disks(&s, b);
	put_tag(&s, "cpu ");
	save_cpu(&s, v);
	put_tag(&s, "brd ");
	board_save(b, &s);
	put_tag(&s, "ram ");
	uint32_t pages = save_ram(&s, v->mem);
	put_tag(&s, "end ");
	if (!s.failed)
		compress(&s, NULL, 0, ZSTD_e_end);
	if (!s.failed && fdatasync(s.fd) != 0)
		fail(&s, "%s", strerror(errno));
	if (close(s.fd) != 0)
		fail(&s, "%s", strerror(errno));
	ZSTD_freeCCtx(s.cctx);
	free(s.buf);
	if (s.failed) {
		snprintf(err, errlen, "%s", s.err);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	snprintf(done, donelen, "%s: %u MiB of RAM (%u pages not zero), %.1f MiB written in %.2f s", path,
		 v->mem->size >> 20, pages, (double)s.file_bytes / (1 << 20), secs);
	return 0;
}

/* --- loading ------------------------------------------------------------- */

void snapshot_close(struct snapshot_reader *r)
{
	if (!r)
		return;
	if (r->s.fd >= 0)
		close(r->s.fd);
	ZSTD_freeDCtx(r->s.dctx);
	free(r->s.buf);
	free(r);
}

struct snapshot_reader *snapshot_open(const char *path, uint32_t *ram_bytes,
				      struct snapshot_disk disks[SNAPSHOT_DISKS], char *err, size_t errlen)
{
	struct snapshot_reader *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct snap *s = &r->s;
	s->path = path;
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	struct header h;
	ssize_t got = s->fd < 0 ? -1 : read(s->fd, &h, sizeof h);
	if (s->fd < 0) {
		fail(s, "%s", strerror(errno));
	} else if (got != (ssize_t)sizeof h || memcmp(h.magic, MAGIC, 8)) {
		fail(s, "not a bt86 snapshot");
	} else if (h.format != SNAPSHOT_FORMAT || h.layout != layout_signature()) {
		fail(s, "a snapshot of another bt86 build (format %" PRIu32 ", layout %08" PRIx32
		     "); this bt86 reads format %u, layout %08" PRIx32,
		     h.format, h.layout, SNAPSHOT_FORMAT, layout_signature());
	} else if (h.ram_bytes % PAGE || h.ram_bytes == 0) {
		fail(s, "damaged: a RAM size of %" PRIu32 " bytes", h.ram_bytes);
	} else if (!(s->dctx = ZSTD_createDCtx()) || !(s->buf = malloc(IO_BYTES))) {
		fail(s, "out of memory");
	}
	s->in = (ZSTD_inBuffer){s->buf, 0, 0};
	if (!s->failed && get_tag(s, "disk"))
		for (unsigned i = 0; i < SNAPSHOT_DISKS && snap_get(s, &disks[i], sizeof disks[i]); i++)
			disks[i].path[sizeof disks[i].path - 1] = 0;
	if (s->failed) {
		snprintf(err, errlen, "%s", s->err);
		snapshot_close(r);
		return NULL;
	}
	*ram_bytes = h.ram_bytes;
	return r;
}

bool snapshot_disk_unchanged(const struct snapshot_disk *d, char *err, size_t errlen)
{
	struct stat st;
	if (stat(d->path, &st) != 0) {
		snprintf(err, errlen, "disk image %s: %s", d->path, strerror(errno));
		return false;
	}
	if ((uint64_t)st.st_size != d->size) {
		snprintf(err, errlen, "disk image %s changed since the snapshot: %" PRIu64 " bytes, then %" PRIu64,
			 d->path, (uint64_t)st.st_size, d->size);
		return false;
	}
	if (st.st_mtim.tv_sec != d->mtime_s || st.st_mtim.tv_nsec != d->mtime_ns) {
		snprintf(err, errlen, "disk image %s was modified after the snapshot was taken", d->path);
		return false;
	}
	return true;
}

static bool load_cpu(struct snap *s, struct vcpu *v)
{
	struct snap_cpu c;
	if (!snap_get(s, &c, sizeof c))
		return false;
	/* What fxrstor and the run loop would fault or stop on. */
	if (c.cpl > 3 || !(c.cr0 & CR0_PE) || (c.cr4 & ~(0xFFFu | CR4_SMEP | CR4_SMAP)) || (c.efer & ~EFER_NXE) ||
	    (c.fx.mxcsr & 0xFFFF0000u))
		return fail(s, "damaged: the CPU's state is out of range");
	memcpy(v->hot->gpr, c.gpr, sizeof c.gpr);
	v->hot->eip = c.eip;
	vcpu_set_eflags(v, c.eflags);
	v->cr0 = c.cr0;
	v->hot->cr2 = c.cr2;
	v->cr3 = c.cr3;
	v->cr4 = c.cr4;
	v->efer = c.efer;
	v->shadow->nxe = vmem_nxe(v);
	memcpy(v->dr, c.dr, sizeof v->dr);
	v->gdtr = c.gdtr;
	v->idtr = c.idtr;
	v->cpl = c.cpl;
	for (enum sreg r = S_ES; r < S_COUNT; r++)
		seg_set(v, r, c.seg[r].sel, &c.seg[r]);
	seg_reload_disarm(v);
	v->ldtr = c.ldtr;
	v->tr = c.tr;
	v->halted = c.halted;
	v->nmi_blocked = c.nmi_blocked;
	v->sysenter_cs = c.sysenter_cs;
	v->sysenter_esp = c.sysenter_esp;
	v->sysenter_eip = c.sysenter_eip;
	v->hot->tsc_aux = c.tsc_aux;
	v->tsc_virtual = c.tsc - __rdtsc(); /* the TSC counts on from its saved value */
	/* The x87 part lives in this thread's FPU (switch.S), MXCSR and XMM in
	 * fx_guest; the monitor keeps its own MXCSR. */
	uint32_t mon_mxcsr = _mm_getcsr();
	__asm__ volatile("fxrstor %0" : : "m"(c.fx));
	_mm_setcsr(mon_mxcsr);
	memcpy(v->hot->fx_guest + FX_MXCSR, &c.fx.mxcsr, sizeof c.fx.mxcsr);
	memcpy(v->hot->fx_guest + FX_XMM, c.fx.xmm, sizeof c.fx.xmm);
	/* The derived views follow the restored control registers. */
	vmem_tlb_flush(v);
	if (v->cr0 & CR0_PG) {
		shadow_set_paging(v->shadow, true);
		shadow_switch_cr3(v->shadow, v->cr0, v->cr3, v->cr4);
		tc_jtab_clear(v->tc);
	}
	vcpu_follow_windows(v);
	if (v->stopped) /* a segment bt86 cannot run (segment.c said why) */
		return fail(s, "%s", v->stop_reason);
	return true;
}

static bool load_ram(struct snap *s, struct gmem *m)
{
	uint32_t pages = m->size / PAGE;
	for (;;) {
		uint32_t run[2];
		if (!snap_get(s, run, sizeof run))
			return false;
		if (run[1] == 0)
			return true;
		if (run[1] > RUN_PAGES || run[0] >= pages || run[1] > pages - run[0])
			return fail(s, "damaged: RAM pages %" PRIu32 "+%" PRIu32 " of %" PRIu32, run[0], run[1], pages);
		if (!snap_get(s, m->ram + (size_t)run[0] * PAGE, (size_t)run[1] * PAGE))
			return false;
	}
}

/* After the end mark the frame must end, its checksum matching. */
static bool finish_frame(struct snap *s)
{
	while (!s->failed && !s->frame_done) {
		if (s->in.pos == s->in.size) {
			ssize_t k = read(s->fd, s->buf, IO_BYTES);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return fail(s, "truncated");
			s->in = (ZSTD_inBuffer){s->buf, (size_t)k, 0};
		}
		uint8_t extra;
		ZSTD_outBuffer out = {&extra, 1, 0};
		size_t r = ZSTD_decompressStream(s->dctx, &out, &s->in);
		if (ZSTD_isError(r))
			return fail(s, "damaged (zstd: %s)", ZSTD_getErrorName(r));
		if (out.pos)
			return fail(s, "damaged: data after the end mark");
		s->frame_done = r == 0;
	}
	return !s->failed;
}

int snapshot_load(struct snapshot_reader *r, struct vcpu *v, struct board *b, char *err, size_t errlen)
{
	struct snap *s = &r->s;
	bool ok = get_tag(s, "cpu ") && load_cpu(s, v) && get_tag(s, "brd ") && board_load(b, s) &&
		  get_tag(s, "ram ") && load_ram(s, v->mem) && get_tag(s, "end ") && finish_frame(s);
	if (!ok)
		snprintf(err, errlen, "%s", s->err);
	snapshot_close(r);
	return ok ? 0 : -1;
}
