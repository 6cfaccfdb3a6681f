/*
 * The execution loop and the host-signal side of translated code.
 *
 * Invariants:
 *  - Between blocks, the VCPU holds the whole guest state; hot->eip is the
 *    next guest instruction to execute.
 *  - A signal in translated code is mapped to a guest instruction through
 *    the block's instruction map; the translator guarantees that guest
 *    registers and flags are still those before that instruction (see
 *    translate.h), so the handler stores them and redirects the host thread
 *    to the exit path as if the block had exited there.
 *  - A guest store into a page holding translated code invalidates that
 *    page's blocks, re-enables writes and retries; if the running block was
 *    among them it is single-stepped (TF) to the next instruction boundary
 *    and left, so stale code never runs past the store.
 */
#include "run.h"

#include <asm/prctl.h>
#include <dlfcn.h>
#include <sys/syscall.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>
#include <ucontext.h>
#include <unistd.h>

#include "../cache/stats.h"
#include "../devices/board.h"
#include "../devices/console.h"
#include "../cache/tc.h"
#include "../debug/gdbstub.h"
#include "../debug/monitor.h"
#include "../mem/gmem.h"
#include "../mem/layout.h"
#include "../mem/pagewalk.h"
#include "../mem/shadow.h"
#include "../mem/stlb.h"
#include "../mem/vmem.h"
#include "../translator/translate.h"
#include "../util.h"
#include "contain.h"
#include "emulate.h"
#include "exception.h"
#include "ring3.h"
#include "segment.h"

_Static_assert(EXIT_INT + EMU_SYS_SYSEXIT == EXIT_SYSEXIT && EXIT_INT + EMU_SYS_IRET == EXIT_IRET,
	       "exit reasons in enum emu_sys's order");

enum sig_action { SIGACT_EXCEPTION, SIGACT_EMULATE, SIGACT_RESUME };

static struct vcpu *sig_vcpu;
static struct {
	enum sig_action action;
	unsigned vec;
	uint32_t err;
} sig_result;

static void die_in_monitor(int sig, uint64_t rip)
{
	char msg[256];
	Dl_info info;
	bool named = dladdr((void *)(uintptr_t)rip, &info) && info.dli_fname;
	int n = snprintf(msg, sizeof msg, "bt86: internal error: signal %d at %#lx (%s+%#lx) in the monitor\n",
			 sig, (unsigned long)rip, named && info.dli_sname ? info.dli_sname : named ? info.dli_fname : "?",
			 named ? (unsigned long)(rip - (uintptr_t)(info.dli_sname ? info.dli_saddr : info.dli_fbase)) : 0ul);
	console_restore();
	if (write(2, msg, (size_t)n) < 0)
		_exit(70);
	signal(sig, SIG_DFL); /* re-fault with the default action: a core dump */
}

static bool in_tc(const struct tc *tc, uint64_t rip)
{
	uint64_t base = (uint64_t)(uintptr_t)tc->base;
	return rip >= base + JTAB_ENTRIES * 8u && rip < base + tc->size;
}

static void to_monitor(struct vcpu *v, ucontext_t *uc, uint32_t guest_eip, enum sig_action a,
		       unsigned vec, uint32_t err)
{
	greg_t *g = uc->uc_mcontext.gregs;
	struct vcpu_hot *h = v->hot;

	h->gpr[R_EAX] = (uint32_t)g[REG_RAX];
	h->gpr[R_ECX] = (uint32_t)g[REG_RCX];
	h->gpr[R_EDX] = (uint32_t)g[REG_RDX];
	h->gpr[R_EBX] = (uint32_t)g[REG_RBX];
	h->gpr[R_ESP] = (uint32_t)g[REG_RSP];
	h->gpr[R_EBP] = (uint32_t)g[REG_RBP];
	h->gpr[R_ESI] = (uint32_t)g[REG_RSI];
	h->gpr[R_EDI] = (uint32_t)g[REG_RDI];
	h->eflags = (uint32_t)g[REG_EFL] & ~FL_TF;
	h->eip = guest_eip;
	h->lookup_hits = (uint64_t)g[REG_R13];
	h->exit_arg = EXIT_ARG_SIGNAL;
	sig_result.action = a;
	sig_result.vec = vec;
	sig_result.err = err;
	g[REG_R15] = (greg_t)(uintptr_t)h;
	g[REG_RSP] = (greg_t)h->host_rsp;
	g[REG_RIP] = (greg_t)(uintptr_t)vcpu_exit_common;
	g[REG_EFL] = 0x202;
}

/* A store to a page holding translated code: invalidate, retry, and if the
 * running block died, single-step to the next instruction boundary. */
static void smc_write(struct vcpu *v, ucontext_t *uc, const struct tc_block *b, uint32_t page)
{
	tc_invalidate_page(v->tc, page, INVAL_GUEST_WRITE);
	if (!b->valid) {
		uc->uc_mcontext.gregs[REG_EFL] |= FL_TF;
		v->smc_step = true;
	}
}

/* Maps the page of a successful walk into a window: a large page whose
 * frames are all RAM as one run, else the one 4 KiB page. */
static void shadow_fill(struct vcpu *v, unsigned window, uint32_t lin, const struct pw_result *r)
{
	uint32_t mask = ~(r->large_bytes - 1);
	uint32_t base_phys = (r->phys & mask) >> PAGE_SHIFT_4K, base_lin = (lin & mask) >> PAGE_SHIFT_4K;
	if (r->large_bytes && gmem_is_ram(v->mem, base_phys << PAGE_SHIFT_4K, r->large_bytes))
		shadow_map_run(v->shadow, window, base_lin, base_phys, r->large_bytes >> PAGE_SHIFT_4K,
			       r->writable && r->dirty, r->global);
	else
		shadow_map(v->shadow, window, lin >> PAGE_SHIFT_4K, r->phys >> PAGE_SHIFT_4K, r->writable && r->dirty,
			   r->global);
}

/* A ring-0 instruction touched a user page in the kernel window: when it
 * did under another CR3 before, it is one of the kernel's copies to and
 * from user memory, which the kernel views serve without remapping (an
 * instruction that only ever works in one address space gains nothing). */
static void uaccess_seen(struct vcpu *v, const struct tc_block *b, uint32_t eip)
{
	unsigned k = (eip * 0x9E3779B1u) >> 26;
	_Static_assert(sizeof v->uaccess.cand_eip / sizeof v->uaccess.cand_eip[0] == 64, "a 6-bit hash");
	if (v->uaccess.cand_eip[k] == eip && v->uaccess.cand_cr3[k] != v->cr3) {
		v->uaccess.eip = eip;
		v->uaccess.page = b->phys >> PAGE_SHIFT_4K; /* a block's instructions start on its first page */
		v->uaccess.kind = XLATE_SITE_UACCESS;
		v->uaccess.pending = true;
	}
	v->uaccess.cand_eip[k] = eip;
	v->uaccess.cand_cr3[k] = v->cr3;
}

/* The soft TLB's entry for a miss at linear page `page`, and for its
 * neighbours within SOFT_AROUND pages (in the same page table) that the
 * tables map to RAM for user access with A already set: what a TLB could
 * hold ahead without a change to guest memory.  Linux maps a file's pages
 * around the one that faulted, young, so an exec'd program's next pages
 * need no signal of their own.  Each side is scanned outward and stops at
 * the first page the tables do not so map: a run is found whole, and an
 * anonymous first touch (one page mapped a fault) costs two probes, not
 * sixteen. */
#define SOFT_AROUND 8u
static bool soft_fill_ahead(struct vcpu *v, uint32_t q)
{
	struct stlb *st = &v->shadow->soft;
	struct pw_result r;
	if (stlb_has(st, q))
		return true;
	if (!pw_walk(v->mem, v->cr0, v->cr3, v->cr4, q << PAGE_SHIFT_4K, PW_PROBE | PF_U | vmem_nxe(v), &r) || !r.accessed ||
	    r.global || !gmem_is_ram(v->mem, r.phys, PAGE_SIZE_4K))
		return false;
	stlb_fill(st, q, r.phys >> PAGE_SHIFT_4K, r.writable && r.dirty);
	return true;
}

static void soft_fill(struct vcpu *v, uint32_t page, uint32_t frame, bool rw)
{
	stlb_fill(&v->shadow->soft, page, frame, rw);
	uint32_t first = page - (page & 0x3FF) + ((page & 0x3FF) < SOFT_AROUND ? 0 : (page & 0x3FF) - SOFT_AROUND);
	uint32_t last = page | 0x3FF;
	if (last > page + SOFT_AROUND)
		last = page + SOFT_AROUND;
	for (uint32_t q = page + 1; q <= last && soft_fill_ahead(v, q); q++)
		;
	for (uint32_t q = page; q > first && soft_fill_ahead(v, q - 1); q--)
		;
}

/* Under CR4.SMAP the kernel window maps no user page (supervisor data
 * accesses to one fault unless an explicit access has EFLAGS.AC set, and
 * AC changes with a byte store): what a walk found for it there. */
static bool smap_keeps_out(const struct vcpu *v, unsigned window, const struct pw_result *r)
{
	return (v->cr4 & CR4_SMAP) && window == SHADOW_KERNEL && r->user;
}

/* A fault in the window with paging on: a hidden fault (fill the shadow and
 * retry), a dirty-bit or code-page write, or the guest's own #PF. */
static void shadow_fault(struct vcpu *v, ucontext_t *uc, const struct tc_block *b, uint32_t eip,
			 unsigned window, uint32_t lin, bool write)
{
	struct pw_result r;
	/* A user view only ever serves user accesses. */
	bool user = shadow_is_user(window) || v->cpl == 3;
	unsigned access = (write ? PF_W : 0) | (user ? PF_U : 0);

	if (!pw_walk(v->mem, v->cr0, v->cr3, v->cr4, lin, access | vmem_nxe(v), &r)) {
		v->hot->cr2 = lin;
		v->stats->guest_page_faults++;
		v->pf_retry.lin = lin;
		v->pf_retry.window = (uint8_t)window;
		v->pf_retry.write = write;
		v->pf_retry.soft = false;
		v->pf_retry.pending = true;
		to_monitor(v, uc, eip, SIGACT_EXCEPTION, EXC_PF, r.err);
		return;
	}
	uint32_t page = r.phys >> PAGE_SHIFT_4K;
	if (smap_keeps_out(v, window, &r)) {
		if (!(v->hot->vsys & FL_AC)) {
			/* An SMAP violation: the guest's #PF, a supervisor one. */
			v->hot->cr2 = lin;
			v->stats->guest_page_faults++;
			to_monitor(v, uc, eip, SIGACT_EXCEPTION, EXC_PF, PF_P | (write ? PF_W : 0));
			return;
		}
		/* Allowed with AC: one of the kernel's accesses to user memory,
		 * which runs again retranslated to go through the kernel view
		 * (after its AC check). */
		v->uaccess.eip = eip;
		v->uaccess.page = b->phys >> PAGE_SHIFT_4K;
		v->uaccess.kind = XLATE_SITE_UACCESS;
		v->uaccess.pending = v->uaccess.smap = true;
		to_monitor(v, uc, eip, SIGACT_RESUME, 0, 0);
		return;
	}
	if (window == SHADOW_KERNEL && r.user && !r.global)
		uaccess_seen(v, b, eip);
	if (window == SHADOW_KERNEL && !v->uaccess.pending && shadow_churning(v->shadow, lin >> PAGE_SHIFT_4K)) {
		/* Mapped this once; its next translation uses ring 0's soft TLB. */
		v->uaccess.eip = eip;
		v->uaccess.page = b->phys >> PAGE_SHIFT_4K;
		v->uaccess.kind = XLATE_SITE_KSOFT;
		v->uaccess.pending = true;
	}
	unsigned watched = shadow_watched(v->shadow, lin >> PAGE_SHIFT_4K);
	if (!gmem_is_ram(v->mem, r.phys, 1) || !shadow_mappable(v->shadow, window, lin >> PAGE_SHIFT_4K) ||
	    (watched & WATCH_READ) || (write && (watched & WATCH_WRITE))) {
		/* not RAM, host page 0, the guard, or a page the debugger watches */
		to_monitor(v, uc, eip, SIGACT_EMULATE, 0, 0);
		return;
	}
	if (write && v->mem->code_page[page])
		smc_write(v, uc, b, page);
	v->stats->hidden_faults++;
	shadow_fill(v, window, lin, &r);
	if (v->shadow->soft.outgrown) /* leave the direct-form blocks at the next block entry */
		__atomic_or_fetch(&v->hot->attn_req, ATTN_REQ_REFORM, __ATOMIC_RELAXED);
}

void vcpu_prefault_retry(struct vcpu *v)
{
	struct pw_result r;
	uint32_t lin = v->pf_retry.lin;
	unsigned window = v->pf_retry.window;
	bool user = shadow_is_user(window) || v->cpl == 3;

	if (!v->pf_retry.pending)
		return;
	v->pf_retry.pending = false;
	if (!(v->cr0 & CR0_PG) ||
	    !pw_walk(v->mem, v->cr0, v->cr3, v->cr4, lin, (v->pf_retry.write ? PF_W : 0) | (user ? PF_U : 0) | vmem_nxe(v), &r))
		return;
	if (!gmem_is_ram(v->mem, r.phys, 1) || !shadow_mappable(v->shadow, window, lin >> PAGE_SHIFT_4K) ||
	    (v->pf_retry.write && v->mem->code_page[r.phys >> PAGE_SHIFT_4K]) || smap_keeps_out(v, window, &r))
		return; /* left to the fault path */
	if (!v->pf_retry.soft && !r.large_bytes &&
	    shadow_holds(v->shadow, window, lin >> PAGE_SHIFT_4K, r.phys >> PAGE_SHIFT_4K, r.writable && r.dirty))
		return; /* the handler's invlpg mapped it ahead */
	v->stats->prefaults++;
	if (v->pf_retry.soft)
		soft_fill(v, lin >> PAGE_SHIFT_4K, r.phys >> PAGE_SHIFT_4K, r.writable && r.dirty);
	else
		shadow_fill(v, window, lin, &r);
}

/* A ring-3 access through the soft TLB found no entry for linear address
 * `lin` (the write table's when `write`): fills it (and its neighbours), or
 * delivers the guest's #PF (whose handler's iret fills it ahead), or
 * emulates the instruction at hot->eip when the page is not RAM.  True
 * when the instruction is to run again from its code. */
static bool soft_miss(struct vcpu *v, uint32_t lin, bool write)
{
	struct pw_result r;
	if (!pw_walk(v->mem, v->cr0, v->cr3, v->cr4, lin, (write ? PF_W : 0) | PF_U | vmem_nxe(v), &r)) {
		v->hot->cr2 = lin;
		v->stats->guest_page_faults++;
		v->pf_retry.lin = lin;
		v->pf_retry.window = (uint8_t)shadow_uview(v->shadow->cur);
		v->pf_retry.write = write;
		v->pf_retry.soft = true;
		v->pf_retry.pending = true;
		vcpu_deliver(v, EXC_PF, true, r.err, false, v->hot->eip);
		return false;
	}
	if (!gmem_is_ram(v->mem, r.phys, 1)) {
		emu_step(v);
		return false;
	}
	/* A store to a code frame gets the user view's base, which faults. */
	soft_fill(v, lin >> PAGE_SHIFT_4K, r.phys >> PAGE_SHIFT_4K, r.writable && r.dirty);
	return true;
}

/* The same for ring 0's soft TLB (a marked instruction, stlb.h): a
 * supervisor walk, no neighbours (the pages that churn are single), and a
 * guest #PF with no retry to fill ahead. */
static bool kernel_soft_miss(struct vcpu *v, uint32_t lin, bool write)
{
	struct pw_result r;
	if (!pw_walk(v->mem, v->cr0, v->cr3, v->cr4, lin, (write ? PF_W : 0) | vmem_nxe(v), &r)) {
		v->hot->cr2 = lin;
		v->stats->guest_page_faults++;
		vcpu_deliver(v, EXC_PF, true, r.err, false, v->hot->eip);
		return false;
	}
	if (!gmem_is_ram(v->mem, r.phys, 1) || ((v->cr4 & CR4_SMAP) && r.user)) {
		emu_step(v); /* under SMAP the emulator decides on AC */
		return false;
	}
	stlb_kernel_fill(&v->shadow->soft, lin >> PAGE_SHIFT_4K, r.phys >> PAGE_SHIFT_4K, r.writable && r.dirty,
			 r.global);
	return true;
}

static void on_signal(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	uint64_t rip = (uint64_t)g[REG_RIP];
	struct vcpu *v = sig_vcpu;
	unsigned trapno = (unsigned)g[REG_TRAPNO];
	uint32_t err = (uint32_t)g[REG_ERR];

	if (v && emu_in_bounce(v, rip) && sig != SIGTRAP) {
		/* The emulator's native run of a guest instruction faulted. */
		emu_bounce_fault(sig == SIGFPE ? (trapno == 16 ? EXC_MF : trapno == 19 ? EXC_XM : EXC_DE)
				 : sig == SIGILL ? EXC_UD : EXC_GP);
	}
	if (!v || !in_tc(v->tc, rip)) {
		if (sig == SIGTRAP && v && v->dbg.stepping && !v->dbg.arrived && !v->smc_step)
			return; /* a debugger's step on its way into the block */
		if (sig == SIGTRAP && v && (v->smc_step || v->dbg.stepping)) {
			/* Single-stepping ran into the exit path: let it finish. */
			g[REG_EFL] &= ~(greg_t)FL_TF;
			v->smc_step = false;
			return;
		}
		die_in_monitor(sig, rip);
		return;
	}
	uint32_t off = (uint32_t)(rip - (uint64_t)(uintptr_t)v->tc->base);
	struct tc_block *b = tc_block_at(v->tc, off);
	bool boundary = false;
	uint32_t eip = b ? tc_guest_eip_at(b, off, &boundary) : 0;

	switch (sig) {
	case SIGSEGV:
		v->stats->signals[SIGK_SEGV]++;
		break;
	case SIGBUS:
		v->stats->signals[SIGK_BUS]++;
		break;
	case SIGFPE:
		v->stats->signals[SIGK_FPE]++;
		break;
	case SIGILL:
		v->stats->signals[SIGK_ILL]++;
		break;
	default:
		v->stats->signals[SIGK_TRAP]++;
		break;
	}
	if (sig == SIGTRAP && v->dbg.stepping && !v->smc_step) {
		/* A debugger's step: the first trap is the arrival at the
		 * block, the next at an instruction boundary ends it.  Code
		 * past the last instruction's (exit stubs, out-of-line paths)
		 * is on the way out: the exit sets the EIP. */
		if (!v->dbg.arrived)
			v->dbg.arrived = true;
		else if (b && boundary && off - b->host < b->map[b->n_insns].host)
			to_monitor(v, uc, eip, SIGACT_RESUME, 0, 0);
		return;
	}
	if (sig == SIGTRAP && v->smc_step) {
		if (b && boundary) {
			v->smc_step = false;
			to_monitor(v, uc, eip, SIGACT_RESUME, 0, 0);
		}
		return; /* keep stepping until an instruction boundary */
	}
	if (!b) {
		die_in_monitor(sig, rip);
		return;
	}
	uint64_t addr = (uint64_t)(uintptr_t)si->si_addr;
	unsigned window;
	bool in_windows = shadow_window_at(addr, &window);
	if (sig == SIGSEGV && trapno == 14 && v->shadow->paging && in_windows) {
		shadow_fault(v, uc, b, eip, window, (uint32_t)addr, err & 2);
		return;
	}
	if (sig == SIGSEGV && trapno == 14 &&
	    ((addr >= SPACE_WINDOWS_BASE - PAGE_SIZE_4K && addr < SPACE_WINDOWS_BASE) ||
	     (addr >= SPACE_WINDOWS_END && addr < SPACE_WINDOWS_END + PAGE_SIZE_4K))) {
		/* A string instruction ran out of the space windows: its guest
		 * addresses wrap there, which the emulator does. */
		to_monitor(v, uc, eip, SIGACT_EMULATE, 0, 0);
		return;
	}
	if (sig == SIGSEGV && trapno == 14) {
		uint32_t page = (uint32_t)addr >> PAGE_SHIFT_4K;
		if (in_windows && (err & 2) && page < v->tc->n_pages && v->mem->code_page[page]) {
			smc_write(v, uc, b, page);
			return; /* retry the store, now writable */
		}
		if (in_windows) {
			/* Guest memory the shadow does not back. */
			to_monitor(v, uc, eip, SIGACT_EMULATE, 0, 0);
			return;
		}
		/* The only 64-bit addresses translated code forms are the
		 * stack slot below ESP of pushf/popf when ESP wraps. */
		to_monitor(v, uc, eip, SIGACT_EXCEPTION, EXC_SS, 0);
		return;
	}
	unsigned vec;
	switch (sig) {
	case SIGFPE:
		vec = trapno == 16 ? EXC_MF : trapno == 19 ? EXC_XM : EXC_DE;
		break;
	case SIGILL:
		vec = EXC_UD;
		break;
	case SIGBUS:
		vec = trapno == 17 ? EXC_AC : trapno == 12 ? EXC_SS : EXC_GP;
		err = 0;
		break;
	case SIGTRAP:
		vec = EXC_DB;
		break;
	default: /* SIGSEGV: #GP, e.g. a misaligned SSE access */
		vec = EXC_GP;
		err = 0;
		break;
	}
	to_monitor(v, uc, eip, SIGACT_EXCEPTION, vec, err);
}

static void on_poke(int sig)
{
	(void)sig;
	if (sig_vcpu)
		__atomic_or_fetch(&sig_vcpu->hot->attn_req, ATTN_REQ_POLL, __ATOMIC_RELAXED);
}

void vcpu_signals_quiesce(void)
{
	signal(BOARD_POKE_SIGNAL, SIG_IGN);
	sig_vcpu = NULL;
}

int vcpu_signals_install(struct vcpu *v, char *err, size_t errlen)
{
	static uint8_t altstack[256 * 1024];
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP};
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
	struct sigaction sa;

	vcpu_follow_windows(v);
	/* Translated code keeps the guest's ESP in rsp: the kernel must
	 * never push a signal frame there. */
	if (sigaltstack(&ss, NULL) != 0) {
		snprintf(err, errlen, "sigaltstack failed");
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (unsigned i = 0; i < ARRAY_SIZE(sigs); i++)
		if (sigaction(sigs[i], &sa, NULL) != 0) {
			snprintf(err, errlen, "sigaction failed");
			return -1;
		}
	sa.sa_handler = on_poke;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	if (sigaction(BOARD_POKE_SIGNAL, &sa, NULL) != 0) {
		snprintf(err, errlen, "sigaction failed");
		return -1;
	}
	sig_vcpu = v;
	return 0;
}

void vcpu_follow_windows(struct vcpu *v)
{
	v->hot->kwin_base = shadow_window_base(shadow_kview(v->shadow->cur));
	v->hot->uwin_base = shadow_window_base(shadow_uview(v->shadow->cur));
}

/* Ring-3 blocks address the user view through %gs: the host GS base
 * follows VC_UWIN_BASE before one runs (a system call, so only then: a
 * CR3 load that never reaches ring 3 costs none). */
static void user_view_on(struct vcpu *v)
{
	uint64_t base = v->hot->uwin_base;
	if (v->gs_base == base)
		return;
	if (contain_wrgsbase())
		__asm__ volatile("wrgsbase %0" : : "r"(base) : "memory");
	else if (syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)base) != 0)
		vcpu_stop(v, BT86_EXIT_UNSUPPORTED, "the host refused the GS base %#lx", (unsigned long)base);
	v->gs_base = base;
}

void vcpu_request_stop(struct vcpu *v)
{
	__atomic_or_fetch(&v->hot->attn_req, ATTN_REQ_STOP, __ATOMIC_RELAXED);
}

void vcpu_request_quit(struct vcpu *v)
{
	__atomic_or_fetch(&v->hot->attn_req, ATTN_REQ_QUIT, __ATOMIC_RELAXED);
}

void vcpu_set_irq_line(struct vcpu *v, bool level)
{
	/* irq_wait follows the line; attn_irq asks for a look at the next
	 * block entry (the loop parks it again while IF = 0). */
	v->hot->irq_wait = level;
	v->hot->attn_irq = level;
}


static uint32_t current_mode(const struct vcpu *v)
{
	bool tsd = (v->cr4 & 0x4) && v->cpl != 0;
	bool paging = v->cr0 & CR0_PG;
	return v->cpl | (paging ? XMODE_PAGING : 0) | (v->tsc_virtual == 0 && !tsd ? XMODE_TSC_NATIVE : 0) |
	       (paging && v->cpl == 3 && stlb_soft(&v->shadow->soft) ? XMODE_SOFT : 0) |
	       (paging && v->cpl < 3 && (v->cr4 & CR4_SMAP) ? XMODE_SMAP : 0) |
	       (v->cr0 & (CR0_TS | CR0_EM) ? XMODE_FPU_TRAP : 0) | (v->tf ? XMODE_STEP : 0);
}

/* Whether blocks may pass control to each other without the run loop
 * (chained exits, inline lookup entries): not under -d nochain, nor while
 * a breakpoint is set, whose check is the run loop's. */
static bool chaining(const struct vcpu *v)
{
	return !(v->trace.items & TRACE_NOCHAIN) && !(v->gdb && gdb_has_breakpoints(v->gdb));
}

/* Code translated code cannot run, which the emulator runs an instruction
 * at a time: real mode, a 16-bit code or stack segment, or CS, DS, ES or
 * SS with a base (translated code addresses them flat). */
static bool interpreted(const struct vcpu *v)
{
	const struct seg_cache *s = v->seg;
	return !(v->cr0 & CR0_PE) || !s[S_CS].db || !s[S_SS].db || s[S_CS].base || s[S_SS].base ||
	       (s[S_DS].valid && s[S_DS].base) || (s[S_ES].valid && s[S_ES].base);
}

static struct tc_block *block_for(struct vcpu *v, struct xlate *x, uint32_t eip)
{
	uint32_t lin = v->seg[S_CS].base + eip;
	bool global;
	uint32_t phys = vmem_translate_fetch(v, lin, &global);
	uint32_t mode = current_mode(v);
	uint32_t phys2 = TC_PHYS2_ANY;
	if ((v->cr0 & CR0_PG) && (lin & 0xFFF) > PAGE_SIZE_4K - ZYDIS_MAX_INSTRUCTION_LENGTH) {
		/* An instruction here may run onto the next page: where that
		 * maps now is part of the key. */
		uint32_t next;
		bool next_global;
		phys2 = TC_PHYS2_UNMAPPED;
		if (vmem_probe_fetch(v, (lin | 0xFFF) + 1, &next, &next_global)) {
			phys2 = next;
			global &= next_global;
		}
	}
	if ((v->cr0 & CR0_PG) && !global)
		tc_jtab_unpark(v->tc, eip, phys >> PAGE_SHIFT_4K | (v->cpl == 3 ? TC_JTAB_USER : 0) |
						   (mode & XMODE_SOFT ? TC_JTAB_SOFT : 0));
	struct tc_block *b = tc_lookup(v->tc, eip, phys, mode, phys2);

	if (!b)
		b = xlate_block(x, eip, phys, mode, phys2);
	if (b && chaining(v) && !(mode & XMODE_STEP))
		tc_jtab_set(v->tc, eip, b, global);
	return b;
}

/* For tc_jtab_switch when the current space goes direct (vcpu_run): its
 * lookup entries for soft-form blocks go (to the victim cache, for young
 * spaces). */
static bool not_soft(void *ctx, uint32_t eip, uint32_t page)
{
	(void)ctx, (void)eip;
	return !(page & TC_JTAB_SOFT);
}

/* For tc_jtab_switch when the current space outgrows the host mappings:
 * its entries for direct-form ring-3 blocks go. */
static bool not_direct_user(void *ctx, uint32_t eip, uint32_t page)
{
	(void)ctx, (void)eip;
	return !(page & TC_JTAB_USER) || (page & TC_JTAB_SOFT);
}

static void handle_attention(struct vcpu *v)
{
	struct vcpu_hot *h = v->hot;

	if (h->attn_req & ATTN_REQ_POLL) {
		__atomic_and_fetch(&h->attn_req, ~ATTN_REQ_POLL, __ATOMIC_RELAXED);
		board_poll(v->board, pit_now_ns());
	}
	if (!v->nmi_blocked && board_take_nmi(v->board)) {
		v->halted = false;
		v->nmi_blocked = true;
		vcpu_deliver(v, EXC_NMI, false, 0, false, h->eip); /* whatever IF says */
	}
	if (h->attn_irq) {
		if (h->vif) {
			int vec = board_acknowledge(v->board);
			if (vec >= 0) {
				v->halted = false;
				trace_external(v, (unsigned)vec);
				vcpu_deliver(v, (unsigned)vec, false, 0, false, h->eip);
			}
		} else {
			/* Masked: park it until sti, popf or iret opens the window. */
			h->attn_irq = 0;
		}
	}
	if (h->attn_req & ATTN_REQ_MONITOR) {
		__atomic_and_fetch(&h->attn_req, ~ATTN_REQ_MONITOR, __ATOMIC_RELAXED);
		monitor_serve(v->monitor);
	}
	if (h->attn_req & ATTN_REQ_DEBUG) {
		__atomic_and_fetch(&h->attn_req, ~ATTN_REQ_DEBUG, __ATOMIC_RELAXED);
		gdb_stop(v->gdb, GDB_SIGINT);
	}
	if (h->attn_req & ATTN_REQ_REFORM) /* vcpu_run has dropped the direct-form entries */
		__atomic_and_fetch(&h->attn_req, ~ATTN_REQ_REFORM, __ATOMIC_RELAXED);
	if (h->attn_req & ATTN_REQ_STOP) {
		__atomic_and_fetch(&h->attn_req, ~ATTN_REQ_STOP, __ATOMIC_RELAXED);
		vcpu_stop(v, BT86_EXIT_SIGNALLED, "stopped by the host at eip %#x", h->eip);
	}
	if (h->attn_req & ATTN_REQ_QUIT) {
		__atomic_and_fetch(&h->attn_req, ~ATTN_REQ_QUIT, __ATOMIC_RELAXED);
		vcpu_stop(v, BT86_EXIT_HALTED, "terminated from the console (Ctrl-A x)");
	}
}

/* hlt: sleep until a device deadline or terminal input, or end the run
 * when nothing can ever wake the guest. */
static void wait_for_interrupt(struct vcpu *v)
{
	struct vcpu_hot *h = v->hot;
	struct board *b = v->board;

	if (!h->vif) {
		vcpu_stop(v, BT86_EXIT_HALTED, "guest halted with interrupts disabled at eip %#x", h->eip);
		return;
	}
	uint64_t deadline = board_next_deadline(b);
	bool input = __atomic_load_n(&b->input_open, __ATOMIC_ACQUIRE);
	if (deadline == UINT64_MAX && !input && !h->irq_wait) {
		vcpu_stop(v, BT86_EXIT_HALTED, "guest halted with no interrupt source left at eip %#x", h->eip);
		return;
	}
	uint64_t now = pit_now_ns();
	v->stats->idle_waits++;
	if (deadline <= now || h->attn_req) {
		v->stats->idle_spins++; /* a deadline that never clears would make these spin */
	} else {
		uint64_t ns = deadline == UINT64_MAX ? 100000000u : deadline - now;
		if (ns > 100000000u)
			ns = 100000000u;
		struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
		nanosleep(&ts, NULL); /* a poke cuts it short */
	}
	board_poll(b, pit_now_ns());
}

void vcpu_run(struct vcpu *v, struct xlate *x)
{
	struct vcpu_hot *h = v->hot;
	struct stats *st = v->stats;
	struct tc_block *volatile next = NULL;
	/* With next, where to enter it: its start, or an instruction whose soft
	 * TLB entry was just filled. */
	volatile uint32_t resume = 0;
	const uint64_t start = __rdtsc();
	/* The split between guest code and monitor costs two rdtsc an exit,
	 * which some hosts trap (25 ns each on this project's PVM host): only
	 * a run that counts for --stats pays for it. */
	const bool timed = v->tc->counting;

	if (setjmp(v->raise_env)) {
		/* A guest exception raised inside the monitor. */
		vcpu_deliver(v, v->pending_vec, v->pending_has_err, v->pending_err, false, h->eip);
		next = NULL;
		resume = 0;
	}
	while (!v->stopped) {
		if (v->dbg.hit) {
			/* An access fired a watchpoint: the debugger hears of it
			 * after the instruction, a step's too. */
			v->dbg.stepping = false;
			gdb_stop(v->gdb, GDB_SIGTRAP);
			v->dbg.hit = false;
			next = NULL;
			resume = 0;
			continue;
		}
		if (v->dbg.stepping) {
			/* The step's instruction ran (or raised an exception, whose
			 * handler is next): report before anything else happens.
			 * Still at its EIP, the block left before it (an attention
			 * check): step again.  So a rep instruction or a jump to
			 * itself steps as a whole (the SDM's TF stops after each
			 * iteration). */
			v->dbg.stepping = false;
			if (h->eip == v->dbg.step_eip) {
				v->dbg.step = true;
				continue;
			}
			gdb_stop(v->gdb, GDB_SIGTRAP);
			next = NULL;
			resume = 0;
			continue;
		}
		if (v->uaccess.pending) {
			bool smap = v->uaccess.smap;
			v->uaccess.pending = v->uaccess.smap = false;
			if (xlate_mark(x, v->uaccess.eip, v->uaccess.kind)) {
				tc_invalidate_page(v->tc, v->uaccess.page,
						   v->uaccess.kind == XLATE_SITE_UACCESS ? INVAL_UACCESS : INVAL_KSOFT);
				next = NULL;
				resume = 0;
			} else if (smap) {
				emu_step(v);
				next = NULL;
				resume = 0;
				continue;
			}
			if (smap)
				v->step_due = false; /* it runs again */
		}
		if (v->step_due) {
			/* The instruction run with TF set ended: the single-step
			 * trap, before any interrupt (SDM vol. 3 6.9). */
			v->dr[6] = (v->dr[6] & ~0xFu) | DR6_BS;
			vcpu_deliver(v, EXC_DB, false, 0, false, h->eip);
			next = NULL;
			resume = 0;
			continue;
		}
		if (v->tf != v->tf_seen) {
			/* TF set: blocks of the other form must not be reached
			 * inline (step blocks never enter the table). */
			if (v->tf)
				tc_jtab_clear(v->tc);
			v->tf_seen = v->tf;
			next = NULL;
			resume = 0;
		}
		if (v->shadow->soft.outgrown) {
			/* The space's working set outgrew the host mappings: its
			 * ring-3 code goes back to the soft form, so the lookup
			 * entries of direct-form ring-3 blocks go. */
			v->shadow->soft.outgrown = false;
			tc_jtab_switch(v->tc, not_direct_user, NULL);
			next = NULL;
			resume = 0;
		}
		if (h->soft_budget == 0) {
			/* The space's soft-form blocks spent its budget: its code
			 * goes direct, and the lookup entries of that form go. */
			if (stlb_spent(&v->shadow->soft)) {
				tc_jtab_switch(v->tc, not_soft, NULL);
				shadow_adopt_runs(v->shadow);
			}
			next = NULL;
			resume = 0;
		}
		if (h->irq_wait && h->vif)
			h->attn_irq = 1; /* the monitor opened the window (iret, emulated popf) */
		bool shadow = v->irq_shadow;
		v->irq_shadow = false;
		if ((h->attn_irq || h->attn_req) && !shadow) {
			handle_attention(v);
			next = NULL;
			resume = 0;
			continue;
		}
		if (v->halted) {
			wait_for_interrupt(v);
			continue;
		}
		bool interp = interpreted(v);
		if (shadow || interp) {
			/* The instruction after an emulated sti or load of SS runs
			 * here too: translated code's attention checks at block
			 * entry would take an interrupt before it. */
			next = NULL;
			resume = 0;
			st->insn_interpreted += interp;
			v->step_due = v->tf != 0; /* vcpu_deliver cancels it */
			v->in_shadow = shadow;
			emu_step(v);
			v->in_shadow = false;
			continue;
		}
		if (!shadow && ring3_wanted(v)) {
			next = NULL;
			resume = 0;
			ring3_run(v);
			continue;
		}
		struct tc_block *b = next ? next : block_for(v, x, h->eip);
		uint32_t enter = next && resume ? resume : b ? b->host : 0;
		next = NULL;
		resume = 0;
		if (!b) {
			vcpu_stop(v, BT86_EXIT_UNSUPPORTED, "execution outside RAM at eip %#x", h->eip);
			break;
		}
		if ((b->mode & XMODE_CPL_MASK) == 3) {
			user_view_on(v);
			if (v->stopped)
				break;
		}
		bool step = false;
		if (v->gdb && enter == b->host) {
			bool skip = v->dbg.skipping && v->dbg.skip == h->eip;
			v->dbg.skipping = false;
			if (!v->dbg.step && !skip && gdb_breakpoint(v->gdb, h->eip)) {
				gdb_stop(v->gdb, GDB_SIGTRAP);
				continue; /* the debugger may have changed anything */
			}
			step = v->dbg.step;
			v->dbg.step = false;
			v->dbg.stepping = step;
			v->dbg.arrived = false;
			v->dbg.step_eip = h->eip;
		}
		h->entry_flags = (h->eflags & FL_HOST_HELD) | 0x202 | (v->smc_step || step ? FL_TF : 0);
		if ((v->trace.items & (TRACE_EXEC | TRACE_CPU)) && enter == b->host)
			trace_block(v, b, tc_ptr(v->tc, enter));
		if (timed) {
			uint64_t t0 = __rdtsc();
			vcpu_switch_enter(h, (uint64_t)(uintptr_t)tc_ptr(v->tc, enter));
			st->cycles_guest += __rdtsc() - t0;
		} else {
			vcpu_switch_enter(h, (uint64_t)(uintptr_t)tc_ptr(v->tc, enter));
		}
		seg_sync_reloads(v);
		st->lookup_inline_hits = h->lookup_hits;
		v->step_due = b->mode & XMODE_STEP; /* unless the exit says otherwise */

		uint32_t arg = h->exit_arg;
		if (arg == EXIT_ARG_LOOKUP_MISS) {
			st->exits[EXIT_LOOKUP_MISS]++;
			st->lookup_inline_misses++;
			h->eip = h->target;
			continue;
		}
		if (arg == EXIT_ARG_SOFT_MISS) {
			st->exits[EXIT_SOFT_MISS]++;
			v->step_due = false; /* the instruction runs again */
			uint32_t at = h->soft_at & 0x7FFFFFFFu;
			bool boundary;
			struct tc_block *src = tc_block_at(v->tc, at);
			BT86_ASSERT(src);
			h->eip = tc_guest_eip_at(src, at, &boundary);
			bool kernel = (src->mode & XMODE_CPL_MASK) == 0;
			if ((kernel ? kernel_soft_miss : soft_miss)(v, h->soft_lin, h->soft_at >> 31) && src->valid) {
				next = src;
				resume = at;
			}
			continue;
		}
		if (arg == EXIT_ARG_SIGNAL) {
			st->exits[EXIT_SIGNAL]++;
			if (sig_result.action == SIGACT_EMULATE)
				emu_step(v);
			else if (sig_result.action == SIGACT_EXCEPTION)
				vcpu_deliver(v, sig_result.vec, exception_has_error(sig_result.vec),
					     sig_result.err, false, h->eip);
			continue;
		}
		struct tc_block *src = tc_block_at(v->tc, arg);
		BT86_ASSERT(src);
		struct tc_exit *ex = tc_exit_by_stub(src, arg);
		BT86_ASSERT(ex);
		h->eip = ex->guest_eip;
		switch (ex->kind) {
		case TCX_BRANCH: {
			st->exits[EXIT_CHAIN]++;
			uint64_t gen = v->tc->generation;
			struct tc_block *t = block_for(v, x, h->eip);
			if (t && gen == v->tc->generation && ex->patch && !ex->linked && src->valid &&
			    t->mode == src->mode && t->phys2 == TC_PHYS2_ANY && chaining(v) && !(src->mode & XMODE_STEP))
				tc_chain(v->tc, ex, t);
			next = t;
			break;
		}
		case TCX_EMULATE:
			st->exits[EXIT_EMULATE]++;
			emu_step(v);
			break;
		case TCX_ATTN:
			st->exits[EXIT_ATTENTION]++;
			v->step_due = false; /* left before its instruction */
			break;
		case TCX_STI:
			st->exits[EXIT_STI]++;
			break;
		case TCX_PORT: {
			st->exits[EXIT_PORT]++;
			uint64_t gen = v->tc->generation;
			unsigned size = ex->io & 7u;
			uint16_t port = ex->io & TC_IO_DX ? (uint16_t)h->gpr[R_EDX] : (uint16_t)(ex->io >> 16);
			uint32_t mask = size == 4 ? 0xFFFFFFFFu : (1u << 8 * size) - 1;
			if (ex->io & TC_IO_IN)
				h->gpr[R_EAX] = (h->gpr[R_EAX] & ~mask) | (board_io_read(v->board, port, size) & mask);
			else
				board_io_write(v->board, port, size, h->gpr[R_EAX] & mask);
			h->eip += ex->io >> 4 & 0xFu;
			if (gen == v->tc->generation && src->valid) {
				next = src;
				resume = ex->resume;
			}
			break;
		}
		case TCX_INVLPG:
			st->exits[EXIT_INVLPG]++;
			emu_invlpg(v, h->target);
			h->eip += ex->io >> 4 & 0xFu;
			break;
		case TCX_DIVIDE_ERROR:
			st->exits[EXIT_DIVIDE_ERROR]++;
			vcpu_deliver(v, EXC_DE, false, 0, false, h->eip);
			break;
		case TCX_SYSTEM:
			st->exits[EXIT_INT + (ex->io & 0xFu)]++;
			emu_system(v, (enum emu_sys)(ex->io & 0xFu), ex->io >> 8 & 0xFFu, ex->io >> 4 & 0xFu);
			break;
		}
	}
	st->cycles_total = __rdtsc() - start;
}
