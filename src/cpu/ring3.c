/*
 * Direct execution of guest ring 3: handing the VCPU to the ring-3 host
 * process, its view of the address space, and its events (ring3.h).
 */
#include "ring3.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <x86intrin.h>

#include "../cache/stats.h"
#include "../cache/tc.h"
#include "../mem/gmem.h"
#include "../mem/layout.h"
#include "../mem/pagewalk.h"
#include "../mem/shadow.h"
#include "../mem/vmem.h"
#include "emulate.h"
#include "exception.h"
#include "segment.h"
#include "vcpu.h"

#define R3_MAPPED 0x1u
#define R3_WRITE 0x2u
#define R3_EXEC 0x4u
#define R3_GLOBAL 0x8u
#define R3_LARGE 0x10u  /* from a large guest page: invlpg anywhere in it drops it */
#define R3_UNSAFE 0x20u /* holds bytes the host would run as its own (host_only_bytes): never executable in the stub */
#define R3_PAGES (1u << 20)
#define LOW_END 0x100000000ull
#define RING3_AROUND 8u

static uint32_t prot_of(uint32_t e)
{
	return DIRECT_PROT_READ | (e & R3_WRITE ? DIRECT_PROT_WRITE : 0) | (e & R3_EXEC ? DIRECT_PROT_EXEC : 0);
}

static void list_remove(struct ring3 *r, uint32_t page)
{
	uint32_t i = r->pos[page], last = r->list[--r->n];
	r->list[i] = last;
	r->pos[last] = i;
}

/* Linear page `page` leaves the stub. */
static void drop(struct ring3 *r, uint32_t page)
{
	uint32_t e = r->ent[page];
	if (!(e & R3_MAPPED))
		return;
	direct_map(&r->d, page << PAGE_SHIFT_4K, PAGE_SIZE_4K, 0, 0);
	r->frame_refs[e >> PAGE_SHIFT_4K]--;
	if (e & R3_LARGE)
		r->n_large--;
	r->ent[page] = 0;
	list_remove(r, page);
}

/* Empties the stub's view but for, with keep_global, its global pages:
 * one reservation of the whole range, and the kept pages mapped again. */
static void flush_now(struct ring3 *r, bool keep_global)
{
	if (r->n == 0)
		return;
	r->v->stats->direct_flushes++;
	direct_map(&r->d, r->low, (uint32_t)(LOW_END - r->low), 0, 0);
	uint32_t kept = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		uint32_t page = r->list[i], e = r->ent[page];
		if (keep_global && (e & R3_GLOBAL)) {
			direct_map(&r->d, page << PAGE_SHIFT_4K, PAGE_SIZE_4K, e & ~0xFFFu, prot_of(e));
			r->pos[page] = kept;
			r->list[kept++] = page;
			continue;
		}
		r->frame_refs[e >> PAGE_SHIFT_4K]--;
		if (e & R3_LARGE)
			r->n_large--;
		r->ent[page] = 0;
	}
	r->n = kept;
}

/* The shadow's flush: a CR3 load (keep_global) only marks the view
 * stale, for the next run to keep or empty (ring3.h); a change of paging
 * mode or of the debugger's watches empties it now. */
static void flush(void *ctx, bool keep_global)
{
	struct ring3 *r = ctx;
	if (keep_global)
		r->stale = true;
	else
		flush_now(r, false);
}

static void follow_invlpg(void *ctx, uint32_t page)
{
	struct ring3 *r = ctx;
	drop(r, page);
	if (r->n_large) {
		/* invlpg drops a large page's whole translation (SDM vol. 3 4.10.4.1) */
		uint32_t first = page & ~0x3FFu;
		for (uint32_t p = first; p < first + 0x400 && r->n_large; p++)
			if (r->ent[p] & R3_LARGE)
				drop(r, p);
	}
}

/* Frame `phys` begins or ceases to hold translated code: whatever the
 * stub maps of it goes (it may be executable, or writable, no longer). */
static void follow_frame(void *ctx, uint32_t phys)
{
	struct ring3 *r = ctx;
	for (uint32_t i = 0; i < r->n && r->frame_refs[phys];) {
		uint32_t page = r->list[i];
		if (r->ent[page] >> PAGE_SHIFT_4K == phys)
			drop(r, page); /* moves the last page to i */
		else
			i++;
	}
}

static void map(struct ring3 *r, uint32_t page, uint32_t frame, uint32_t flags)
{
	drop(r, page);
	if (r->n == RING3_MAX_PAGES)
		flush_now(r, false);
	uint32_t e = frame << PAGE_SHIFT_4K | flags | R3_MAPPED;
	direct_map(&r->d, page << PAGE_SHIFT_4K, PAGE_SIZE_4K, frame << PAGE_SHIFT_4K, prot_of(e));
	r->ent[page] = e;
	r->pos[page] = r->n;
	r->list[r->n++] = page;
	r->frame_refs[frame]++;
	if (flags & R3_LARGE)
		r->n_large++;
}

/* A host GDT selector compatibility-mode code can far-jump or call to:
 * Linux's 32-bit and 64-bit user code segments, any RPL. */
static bool host_code_selector(const uint8_t *sel)
{
	return sel[1] == 0 && ((sel[0] & ~3u) == 0x20 || (sel[0] & ~3u) == 0x30);
}

/* Whether the page could hold (part of) an instruction the host would run
 * as its own rather than the guest's: syscall (0F 05) or sysenter
 * (0F 34), its fast system calls, which lose the guest's EIP; or a far
 * jump or call with an immediate selector of the host's code segments
 * (EA/9A, ptr16:32 or, after 66, ptr16:16), which would leave
 * compatibility mode (a far transfer through memory or the stack cannot
 * be seen here: the monitor stops the guest if one does).  One that runs
 * onto the next page counts for this one, where it starts (0F, EA, 9A),
 * so that the translator runs it whole.  (The system instructions that
 * read host state at CPL 3 without faulting, sgdt to rdtscp, are left to
 * run: their bytes, 0F 00 to 0F 03, are in half of a real program's pages;
 * architecture.md lists them.)  With `cpuid`, cpuid (0F A2) too: the host
 * cannot make it fault. */
static bool host_only_bytes(const uint8_t *p, bool cpuid)
{
	if (p[PAGE_SIZE_4K - 1] == 0x0F)
		return true;
	for (unsigned i = 0; i < PAGE_SIZE_4K; i++) {
		if (p[i] == 0x0F && i + 1 < PAGE_SIZE_4K && (p[i + 1] == 0x05 || p[i + 1] == 0x34 || (cpuid && p[i + 1] == 0xA2)))
			return true;
		if (p[i] == 0xEA || p[i] == 0x9A) {
			if (i + 7 > PAGE_SIZE_4K)
				return true;
			if (host_code_selector(p + i + 5) || host_code_selector(p + i + 3))
				return true;
		}
	}
	return false;
}

/* The bytes of the per-page tables (ent, pos, list over the linear space,
 * frame_refs over RAM), one anonymous mapping touched only where used. */
static size_t tables_bytes(const struct gmem *mem)
{
	return R3_PAGES * 3 * sizeof(uint32_t) + ((size_t)mem->size >> PAGE_SHIFT_4K) * sizeof(uint16_t);
}

/* Counts the stub's retired user instructions where the host lets an
 * unprivileged process count another's (perf_event_paranoid <= 2). */
static int open_counter(pid_t pid)
{
	struct perf_event_attr a = {.type = PERF_TYPE_HARDWARE, .size = sizeof a,
				    .config = PERF_COUNT_HW_INSTRUCTIONS, .exclude_kernel = 1, .exclude_hv = 1};
	return (int)syscall(SYS_perf_event_open, &a, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

int ring3_start(struct ring3 *r, struct vcpu *v, bool adaptive, char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	r->v = v;
	r->adaptive = adaptive;
	r->low = v->mem->low_hole;
	r->counter_fd = -1;
	size_t bytes = tables_bytes(v->mem);
	void *t = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (t == MAP_FAILED) {
		snprintf(err, errlen, "ring 3: cannot allocate its tables: %s", strerror(errno));
		return -1;
	}
	r->ent = t;
	r->pos = r->ent + R3_PAGES;
	r->list = r->pos + R3_PAGES;
	r->frame_refs = (uint16_t *)(r->list + R3_PAGES);
	if (direct_start(&r->d, v->mem, err, errlen)) {
		munmap(t, bytes);
		return -1;
	}
	/* Where cpuid cannot be made to fault (QEMU's TCG, older AMD CPUs),
	 * pages holding its bytes run translated: guest code must get the
	 * VCPU's answer, not the host's. */
	r->cpuid_runs_here = !r->d.ctl->cpuid_faults;
	r->counter_fd = open_counter(r->d.pid);
	v->stats->direct_counted = r->counter_fd >= 0;
	v->shadow->follow = (struct shadow_follower){.ctx = r, .invlpg = follow_invlpg, .flush = flush,
						     .frame = follow_frame};
	v->ring3 = r;
	return 0;
}

void ring3_stop(struct ring3 *r)
{
	if (!r->ent)
		return;
	if (r->counter_fd >= 0) {
		uint64_t n;
		if (read(r->counter_fd, &n, sizeof n) == sizeof n)
			r->v->stats->direct_instructions = n;
		close(r->counter_fd);
	}
	r->v->shadow->follow = (struct shadow_follower){0};
	r->v->ring3 = NULL;
	direct_stop(&r->d);
	munmap(r->ent, tables_bytes(r->v->mem));
	r->ent = NULL;
}

/* A segment register as the stub's LDT can hold it, or false when it
 * cannot (a 16-bit code or stack segment). */
static bool seg_for(const struct seg_cache *c, unsigned n, struct direct_seg *out)
{
	*out = (struct direct_seg){.base = c->base, .limit = c->limit};
	if (n == S_CS) {
		if (!(c->type & 0x2))
			out->flags = DIRECT_SEG_RO; /* execute-only */
		return c->valid && c->db && (c->type & 0x8);
	}
	if (!c->valid) {
		out->flags = DIRECT_SEG_NULL;
		return n != S_SS;
	}
	if (n == S_SS && !c->db)
		return false;
	if (c->type & 0x8) /* a readable code segment in a data register */
		out->flags = DIRECT_SEG_RO;
	else
		out->flags = (c->type & 0x2 ? 0 : DIRECT_SEG_RO) | (c->type & 0x4 ? DIRECT_SEG_DOWN : 0);
	/* An expand-down segment's upper bound is 64 KiB without B: the
	 * stub's are 32-bit. */
	return !(out->flags & DIRECT_SEG_DOWN) || c->db;
}

static void wait_translated(struct ring3_space *sp, uint32_t turns, uint64_t now)
{
	sp->wait = sp->turns = turns;
	sp->since = now;
}

/* The address space's entry, taken over (as a space never seen) when
 * another space had it. */
static struct ring3_space *space_of(struct ring3 *r, uint32_t cr3)
{
	struct ring3_space *sp = &r->space[(cr3 >> PAGE_SHIFT_4K) % RING3_SPACES];
	if (sp->cr3 != (cr3 | 1)) { /* | 1: a CR3 of 0 is a space too */
		*sp = (struct ring3_space){.cr3 = cr3 | 1};
		wait_translated(sp, RING3_FIRST, __rdtsc());
	}
	return sp;
}

/* The end of a wait: whether its turns were long enough for a direct
 * window (ring3.h); if not, it waits again. */
static bool worth_trying(struct ring3 *r, struct ring3_space *sp)
{
	uint64_t now = __rdtsc();
	if (now - sp->since >= (uint64_t)sp->turns * RING3_MIN_TURN)
		return true;
	r->v->stats->direct_declined++;
	wait_translated(sp, sp->turns, now);
	return false;
}

bool ring3_wanted(struct vcpu *v)
{
	struct ring3 *r = v->ring3;
	const struct vcpu_hot *h = v->hot;
	if (!r || v->cpl != 3 || !(v->cr0 & CR0_PG) || !h->vif || (h->vsys & FL_IOPL) == FL_IOPL || v->tf || v->vm)
		return false;
	if (r->translate_next) {
		r->translate_next = false;
		return false;
	}
	/* A space sent back to translation: its turns cost only this. */
	struct ring3_space *sp = r->adaptive ? space_of(r, v->cr3) : NULL;
	if (sp && sp->wait && (--sp->wait || !worth_trying(r, sp)))
		return false;
	/* What the host cannot give guest code: an FPU that traps, rdtsc
	 * that faults or reads another TSC, alignment checks CR0.AM turns
	 * off, the guest's own breakpoints; and what the monitor must see
	 * each instruction of (the debugger, -d exec). */
	if ((v->cr0 & (CR0_TS | CR0_EM)) || (v->cr4 & 0x4u) || v->tsc_virtual || ((h->vsys & FL_AC) && !(v->cr0 & CR0_AM)) ||
	    (v->dr[7] & 0xFFu) || v->gdb || v->shadow->watch.n || (v->trace.items & (TRACE_EXEC | TRACE_CPU)) ||
	    v->smc_step)
		return false;
	struct direct_seg s;
	for (unsigned i = 0; i < S_COUNT; i++)
		if (!seg_for(&v->seg[i], i, &s))
			return false;
	return !(r->ent[(v->seg[S_CS].base + h->eip) >> PAGE_SHIFT_4K] & R3_UNSAFE);
}

/* A direct run of dt cycles ended: the window's verdict, at its end. */
static void judge(struct ring3 *r, uint32_t cr3, uint64_t dt, uint64_t now)
{
	struct ring3_space *sp = space_of(r, cr3);
	sp->cycles += dt;
	if (++sp->runs < RING3_WINDOW)
		return;
	if (sp->cycles / RING3_WINDOW < RING3_MIN_RUN) {
		wait_translated(sp, RING3_WAIT << sp->backoff, now);
		if (sp->backoff < RING3_BACKOFF)
			sp->backoff++;
		r->v->stats->direct_demotions++;
	} else {
		sp->backoff = 0;
	}
	sp->runs = 0;
	sp->cycles = 0;
}

/* With a data page, its neighbours within RING3_AROUND pages in the same
 * page table that the tables map to RAM for user access with A already
 * set (what a TLB may hold ahead, nothing in guest memory changed), for
 * data: a process's next pages of a file or heap then need no exit of
 * their own.  Each side stops at the first page not so mapped. */
static bool fill_ahead(struct vcpu *v, struct ring3 *r, uint32_t q)
{
	struct pw_result w;
	if (r->ent[q] & R3_MAPPED)
		return true;
	if ((q << PAGE_SHIFT_4K) < r->low ||
	    !pw_walk(v->mem, v->cr0, v->cr3, v->cr4, q << PAGE_SHIFT_4K, PW_PROBE | PF_U | vmem_nxe(v), &w) ||
	    !w.accessed || !gmem_is_ram(v->mem, w.phys & ~0xFFFu, PAGE_SIZE_4K))
		return false;
	uint32_t frame = w.phys >> PAGE_SHIFT_4K;
	bool rw = w.writable && w.dirty && !v->mem->code_page[frame];
	map(r, q, frame, (w.global ? R3_GLOBAL : 0) | (w.large_bytes ? R3_LARGE : 0) | (rw ? R3_WRITE : 0));
	return true;
}

static void fill_around(struct vcpu *v, struct ring3 *r, uint32_t page)
{
	uint32_t first = page & ~0x3FFu, last = page | 0x3FFu;
	for (uint32_t q = page + 1; q <= last && q <= page + RING3_AROUND && fill_ahead(v, r, q); q++)
		;
	for (uint32_t q = page; q > first && q + RING3_AROUND > page && fill_ahead(v, r, q - 1); q--)
		;
}

/* A #PF in the stub at linear address lin, host error code herr. */
static void page_fault(struct vcpu *v, struct ring3 *r, uint32_t lin, uint32_t herr)
{
	bool write = herr & PF_W, fetch = herr & PF_ID;
	uint32_t page = lin >> PAGE_SHIFT_4K, e = r->ent[page];
	struct pw_result w;

	if (!pw_walk(v->mem, v->cr0, v->cr3, v->cr4, lin, PF_U | (write ? PF_W : 0) | (fetch ? PF_ID : 0) | vmem_nxe(v),
		     &w)) {
		v->hot->cr2 = lin;
		v->stats->guest_page_faults++;
		v->stats->direct_guest_pf++;
		vcpu_deliver(v, EXC_PF, true, w.err, false, v->hot->eip);
		return;
	}
	uint32_t frame = w.phys >> PAGE_SHIFT_4K;
	bool has = (e & R3_MAPPED) && e >> PAGE_SHIFT_4K == frame;
	if (fetch && has && (e & R3_UNSAFE)) {
		/* Into a page scanned already (a Linux guest's calls into its
		 * vDSO's sysenter): translated, with no new scan or mapping. */
		v->stats->direct_unsafe++;
		r->translate_next = true;
		return;
	}
	if (lin < r->low || !gmem_is_ram(v->mem, frame << PAGE_SHIFT_4K, PAGE_SIZE_4K) ||
	    (has && (fetch ? e & R3_EXEC : write ? e & R3_WRITE : true))) {
		/* Not RAM, below what the host maps, or the stub had the page
		 * already (the fault was of another kind): the emulator runs
		 * the instruction. */
		v->stats->direct_emulated++;
		emu_step(v);
		return;
	}
	if (write && has && (e & R3_EXEC) && page == (v->seg[S_CS].base + v->hot->eip) >> PAGE_SHIFT_4K) {
		/* A store into the page of its own instruction: made writable,
		 * the page could not run it (W^X), so the emulator stores. */
		v->stats->direct_emulated++;
		emu_step(v);
		return;
	}
	v->stats->direct_fills++;
	uint32_t keep = (w.global ? R3_GLOBAL : 0) | (w.large_bytes ? R3_LARGE : 0);
	if (fetch) {
		if (host_only_bytes(v->mem->ram + (frame << PAGE_SHIFT_4K), r->cpuid_runs_here)) {
			v->stats->direct_unsafe++;
			bool rw = w.writable && w.dirty && !v->mem->code_page[frame];
			map(r, page, frame, keep | R3_UNSAFE | (rw ? R3_WRITE : 0));
			r->translate_next = true; /* the instruction may start on the page before */
			return;
		}
		gmem_protect_code(v->mem, frame); /* drops the frame's other pages in the stub */
		map(r, page, frame, keep | R3_EXEC);
		return;
	}
	if (write && v->mem->code_page[frame])
		tc_invalidate_page(v->tc, frame, INVAL_GUEST_WRITE); /* ... and here too */
	bool rw = w.writable && w.dirty && !v->mem->code_page[frame];
	map(r, page, frame, keep | (rw ? R3_WRITE : 0));
	fill_around(v, r, page);
}

/* Where a trap left EIP after an instruction the emulator is to run
 * instead: int3 (CC or CD 03), into (CE), int1 (F1). */
static void back_up(struct vcpu *v, unsigned trapno)
{
	uint8_t b[2] = {0, 0};
	uint32_t at = v->seg[S_CS].base + v->hot->eip;
	if (trapno == EXC_BP && vmem_debug_access(v, at - 2, b, 2, false) && b[0] == 0xCD && b[1] == 0x03)
		v->hot->eip -= 2;
	else
		v->hot->eip -= 1;
}

/* The guest loaded a segment register from the host's GDT (the stub's
 * selectors are in the LDT, whose other entries all fault): that load
 * again, from the guest's tables.  True when one was. */
static bool reload_segments(struct vcpu *v, const struct direct_seg seg[DIRECT_SEGS], const uint16_t sel[DIRECT_SEGS])
{
	bool any = false;
	for (unsigned i = 0; i < DIRECT_SEGS; i++)
		if (i != S_CS && sel[i] != direct_sel(&seg[i], i)) {
			v->stats->direct_reloads++;
			any = true;
			seg_load(v, (enum sreg)i, sel[i]);
		}
	return any;
}

static void system_call(struct vcpu *v, uint64_t ip)
{
	uint8_t b[2] = {0, 0};
	uint32_t eip = (uint32_t)ip - 2;
	if (ip >= LOW_END || ip < 2 || !vmem_debug_access(v, v->seg[S_CS].base + eip, b, 2, false) ||
	    !((b[0] == 0xCD && b[1] == 0x80) || (b[0] == 0x0F && (b[1] == 0x05 || b[1] == 0x34)))) {
		/* A fast entry the host took on a page the stub was never to
		 * execute: a monitor bug, never the guest's doing. */
		vcpu_stop(v, BT86_EXIT_UNSUPPORTED, "ring 3: a host system call from guest code lost its address (near eip %#x)",
			  v->hot->eip);
		return;
	}
	v->stats->direct_syscalls++;
	v->hot->eip = eip;
	emu_step(v);
}

/* Whether the stub may keep page `page` (entry e) under the current
 * tables: present and accessed for ring 3 (a probe: A and D as the guest
 * left them), the same frame, size and globalness, still executable where
 * it runs code, still writable and dirty where the stub writes it. */
static bool still_mapped(struct vcpu *v, uint32_t page, uint32_t e)
{
	struct pw_result w;
	if (!pw_walk(v->mem, v->cr0, v->cr3, v->cr4, page << PAGE_SHIFT_4K, PW_PROBE | PF_U | vmem_nxe(v), &w) ||
	    !w.accessed || w.phys >> PAGE_SHIFT_4K != e >> PAGE_SHIFT_4K)
		return false;
	if (!w.global != !(e & R3_GLOBAL) || !w.large_bytes != !(e & R3_LARGE) || ((e & R3_EXEC) && w.nx))
		return false;
	return !(e & R3_WRITE) || (w.writable && w.dirty);
}

/* Before a run after CR3 loads: the view of another space empties (but
 * for global pages); one of this space's, small enough to walk, keeps what
 * the tables still give as the stub has it, as a TLB refilled from them
 * would. */
static void view_for_space(struct vcpu *v, struct ring3 *r)
{
	r->stale = false;
	if (r->view_cr3 != v->cr3 || r->n > RING3_KEEP_MAX) {
		r->view_cr3 = v->cr3;
		flush_now(r, true);
		return;
	}
	for (uint32_t i = 0; i < r->n;) {
		uint32_t page = r->list[i];
		if (still_mapped(v, page, r->ent[page])) {
			i++;
			continue;
		}
		drop(r, page); /* moves the last page to i */
	}
	v->stats->direct_kept += r->n;
}

void ring3_run(struct vcpu *v)
{
	struct ring3 *r = v->ring3;
	struct vcpu_hot *h = v->hot;
	struct direct_seg seg[DIRECT_SEGS];
	struct direct_regs regs;
	char err[192];

	if (r->stale || r->view_cr3 != v->cr3)
		view_for_space(v, r);
	for (unsigned i = 0; i < DIRECT_SEGS; i++)
		seg_for(&v->seg[i], i, &seg[i]);
	direct_set_segs(&r->d, seg);
	memcpy(regs.gpr, h->gpr, sizeof regs.gpr);
	regs.eip = h->eip;
	regs.eflags = vcpu_eflags(v);
	vcpu_fx_read(v, (struct vcpu_fx *)r->fx);
	v->stats->direct_runs++;
	/* attn_irq and attn_req, one word: an interrupt or a request kicks. */
	uint64_t t0 = __rdtsc();
	int ev = direct_run(&r->d, &regs, r->fx, (const volatile uint64_t *)&h->attn_irq, err, sizeof err);
	uint64_t t1 = __rdtsc();
	v->stats->cycles_direct += t1 - t0;
	if (r->adaptive)
		judge(r, v->cr3, t1 - t0, t1);
	if (ev < 0) {
		vcpu_stop(v, BT86_EXIT_CONTAINED, "ring 3: %s", err);
		return;
	}
	vcpu_fx_write(v, (const struct vcpu_fx *)r->fx);
	memcpy(h->gpr, regs.gpr, sizeof h->gpr);
	h->eip = regs.eip;
	h->eflags = (h->eflags & ~(FL_STATUS | FL_DF | FL_ID)) | (regs.eflags & (FL_STATUS | FL_DF | FL_ID));
	h->vsys = (h->vsys & ~FL_AC) | (regs.eflags & FL_AC);
	const struct direct_ctl *c = r->d.ctl;
	if (ev == DIRECT_EV_ESCAPE) {
		vcpu_stop(v, BT86_EXIT_CONTAINED,
			  "guest ring 3 left compatibility mode (host code selector %#x at %#llx): stopped", c->ev_cs,
			  (unsigned long long)c->ev_ip);
		return;
	}
	bool reloaded = reload_segments(v, seg, regs.sel);
	switch (ev) {
	case DIRECT_EV_KICK:
		v->stats->direct_kicks++;
		return; /* the run loop takes the interrupt or the request */
	case DIRECT_EV_SYSCALL32:
		system_call(v, c->ev_nr == DIRECT_NR_UNKNOWN ? LOW_END : c->ev_ip);
		return;
	case DIRECT_EV_FAULT:
		break;
	default:
		vcpu_stop(v, BT86_EXIT_CONTAINED, "ring 3: unexpected event %d from the ring-3 host process", ev);
		return;
	}
	if (reloaded)
		return; /* the fault may have been the host segment's: run again with the guest's */
	switch (c->ev_trapno) {
	case EXC_PF:
		page_fault(v, r, c->ev_cr2, c->ev_err);
		return;
	case EXC_AC: /* guest CR0.AM and AC are set (ring3_wanted) */
		vcpu_deliver(v, EXC_AC, true, 0, false, h->eip);
		return;
	case EXC_DB:
	case EXC_BP:
	case EXC_OF: /* traps: EIP is past the instruction */
		back_up(v, c->ev_trapno);
		break;
	default: /* faults: #GP, #UD, #DE, #MF, #XM, #NP, #SS, #BR at the instruction */
		break;
	}
	v->stats->direct_emulated++;
	emu_step(v);
}
