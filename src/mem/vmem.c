#include "vmem.h"

#include <string.h>

#include "../cache/stats.h"
#include "../cpu/exception.h"
#include "../devices/board.h"
#include "gmem.h"
#include "pagewalk.h"
#include "shadow.h"
#include "watch.h"


/* The monitor's walks (the emulator's accesses, exception delivery, the
 * fetches of code to translate) go through a small TLB of its own: a
 * translation a walk made (setting A, and D for a write) is kept, by page
 * and kind of access, until a CR0, CR3 or CR4 write or an invlpg, as a
 * processor's TLB may keep it whatever the tables say meanwhile (SDM vol. 3
 * 4.10.2).  An iret or int does several accesses to one stack page, and a
 * lookup miss fetches from a page fetched before. */
void vmem_tlb_flush(struct vcpu *v)
{
	memset(v->tlb, 0, sizeof v->tlb);
}

static _Noreturn void page_fault(struct vcpu *v, uint32_t lin, uint32_t err)
{
	v->hot->cr2 = lin;
	v->stats->guest_page_faults++;
	vcpu_raise(v, EXC_PF, true, err);
}

/* A TLB miss: the page walk, which fills entry t or raises #PF (with I/D
 * when `id`: an instruction fetch under SMEP, or PAE with NXE). */
static __attribute__((noinline)) void walk_fill(struct vcpu *v, struct vmem_tlb_entry *t, uint32_t key, uint32_t lin,
						unsigned access, bool id)
{
	struct pw_result r;
	if (!pw_walk(v->mem, v->cr0, v->cr3, v->cr4, lin, access | vmem_nxe(v), &r))
		page_fault(v, lin, r.err | (id ? PF_ID : 0));
	t->key = key;
	t->frame = (r.phys & ~0xFFFu) | (r.global ? VMEM_TLB_GLOBAL : 0) | (r.user ? VMEM_TLB_USER : 0) |
		   (r.nx ? VMEM_TLB_NX : 0) | (r.user && (v->cr4 & CR4_SMAP) ? VMEM_TLB_SMAP : 0);
}

/* A hit on an entry marked NX or SMAP: the fetch and data checks those
 * bits ask for (out of line: the common hit tests one word). */
static __attribute__((noinline)) void walk_marked(struct vcpu *v, uint32_t lin, uint32_t frame, unsigned access,
						  bool user, bool fetch, bool implicit)
{
	if (fetch && (frame & VMEM_TLB_NX))
		page_fault(v, lin, PF_P | PF_ID | access);
	if (!user && !fetch && (frame & VMEM_TLB_SMAP) && (implicit || !(v->hot->vsys & FL_AC)))
		page_fault(v, lin, PF_P | access);
}

/* Translates `lin` through the monitor's TLB, or raises the guest's #PF.
 * An instruction fetch (`fetch`) under CR4.SMEP (SDM vol. 3 4.6) from
 * supervisor mode faults on a user page, and one from a page with XD (PAE
 * with EFER.NXE) at any level; their #PF reports I/D.  Under CR4.SMAP a
 * supervisor data access to a user page faults unless it is an explicit
 * one (not `implicit`: the processor's own descriptor, gate, TSS and
 * frame accesses are) with EFLAGS.AC set.  A hit is a few instructions
 * inlined in each caller (an int and its iret make about fifteen). */
static inline __attribute__((always_inline)) uint32_t walk(struct vcpu *v, uint32_t lin, bool write, bool user,
							   bool fetch, bool implicit, bool *global)
{
	unsigned access = (write ? PF_W : 0) | (user ? PF_U : 0);
	bool smep = fetch && (v->cr4 & CR4_SMEP);

	*global = true;
	if (!(v->cr0 & CR0_PG))
		return lin;
	uint32_t key = ((lin >> 12) << 2 | access >> 1) + 1;
	struct vmem_tlb_entry *t = &v->tlb[(lin >> 12 ^ access) % VMEM_TLB_ENTRIES];
	if (__builtin_expect(t->key != key, 0))
		walk_fill(v, t, key, lin, access, smep || (fetch && (v->cr4 & CR4_PAE) && vmem_nxe(v)));
	if (smep && !user && (t->frame & VMEM_TLB_USER))
		page_fault(v, lin, PF_P | PF_ID);
	if (__builtin_expect(t->frame & (VMEM_TLB_NX | VMEM_TLB_SMAP), 0))
		walk_marked(v, lin, t->frame, access, user, fetch, implicit);
	*global = t->frame & VMEM_TLB_GLOBAL;
	return (t->frame & ~0xFFFu) | (lin & 0xFFF);
}

/* An explicit access with the CPL's rights, and the processor's own
 * supervisor one: walk inlined into each accessor below (an out-of-line
 * translation cost the nano guest's int 0x80 + iret ~50 cycles). */
static inline __attribute__((always_inline)) uint32_t translate_explicit(struct vcpu *v, uint32_t lin, bool write)
{
	bool global;
	return walk(v, lin, write, v->cpl == 3, false, false, &global);
}

static inline __attribute__((always_inline)) uint32_t translate_implicit(struct vcpu *v, uint32_t lin, bool write)
{
	bool global;
	return walk(v, lin, write, false, false, true, &global);
}

uint32_t vmem_translate(struct vcpu *v, uint32_t lin, bool write)
{
	return translate_explicit(v, lin, write);
}

uint32_t vmem_translate_as(struct vcpu *v, uint32_t lin, bool write, bool user)
{
	bool global;
	return walk(v, lin, write, user, false, !user, &global);
}

bool vmem_probe_fetch(struct vcpu *v, uint32_t lin, uint32_t *phys, bool *global)
{
	struct pw_result r;

	*global = true;
	*phys = lin;
	if (!(v->cr0 & CR0_PG))
		return true;
	if (!pw_walk(v->mem, v->cr0, v->cr3, v->cr4, lin, PW_PROBE | PF_ID | vmem_nxe(v) | (v->cpl == 3 ? PF_U : 0), &r) ||
	    ((v->cr4 & CR4_SMEP) && v->cpl < 3 && r.user))
		return false;
	*phys = r.phys;
	*global = r.global;
	return true;
}

uint32_t vmem_translate_fetch(struct vcpu *v, uint32_t lin, bool *global)
{
	return walk(v, lin, false, v->cpl == 3, true, false, global);
}

/* The debugger's watchpoints see the emulator's accesses and the
 * processor's own (watch.h): the first that fires is kept for the run loop,
 * which stops after the instruction. */
static void watch_check(struct vcpu *v, uint32_t lin, unsigned size, bool write)
{
	const struct watch *w;
	if (!v->shadow->watch.n || v->dbg.hit || !(w = watch_match(&v->shadow->watch, lin, size, write)))
		return;
	v->dbg.hit = true;
	v->dbg.hit_addr = w->addr;
	v->dbg.hit_kind = w->kind;
}

/* RAM reads and writes go through gmem, which keeps translated code
 * coherent; other physical addresses go to the MMIO bus.  An access that
 * crosses a page is done a byte at a time, each byte translated. */
static uint32_t phys_read(struct vcpu *v, uint32_t phys, unsigned size)
{
	if (gmem_is_ram(v->mem, phys, size) || !v->board)
		return gmem_read(v->mem, phys, size);
	return mmio_read(&v->board->mmio, phys, size);
}

static void phys_write(struct vcpu *v, uint32_t phys, unsigned size, uint32_t val)
{
	if (gmem_is_ram(v->mem, phys, size) || !v->board)
		gmem_write(v->mem, phys, size, val);
	else
		mmio_write(&v->board->mmio, phys, size, val);
}

uint32_t vmem_read(struct vcpu *v, uint32_t lin, unsigned size)
{
	uint32_t val = 0;
	if ((lin & 0xFFF) + size > 0x1000) {
		for (unsigned i = 0; i < size; i++)
			val |= phys_read(v, translate_explicit(v, lin + i, false), 1) << (8 * i);
	} else {
		val = phys_read(v, translate_explicit(v, lin, false), size);
	}
	watch_check(v, lin, size, false);
	return val;
}

/* The supervisor forms serve the processor's own accesses (descriptor
 * tables, the TSS, interrupt frames): inside one page they are one
 * translation and one access, across pages a byte at a time. */
void vmem_write_supervisor(struct vcpu *v, uint32_t lin, unsigned size, uint32_t val)
{
	if ((lin & 0xFFF) + size <= 0x1000) {
		gmem_write(v->mem, translate_implicit(v, lin, true), size, val);
	} else {
		for (unsigned i = 0; i < size; i++)
			if (i == 0 || ((lin + i) & 0xFFF) == 0)
				translate_implicit(v, lin + i, true);
		for (unsigned i = 0; i < size; i++)
			gmem_write(v->mem, translate_implicit(v, lin + i, true), 1, (val >> (8 * i)) & 0xFF);
	}
	watch_check(v, lin, size, true);
}

uint32_t vmem_read_supervisor(struct vcpu *v, uint32_t lin, unsigned size)
{
	uint32_t val = 0;
	if ((lin & 0xFFF) + size <= 0x1000) {
		val = gmem_read(v->mem, translate_implicit(v, lin, false), size);
	} else {
		for (unsigned i = 0; i < size; i++)
			val |= gmem_read(v->mem, translate_implicit(v, lin + i, false), 1) << (8 * i);
	}
	watch_check(v, lin, size, false);
	return val;
}

void vmem_read_words(struct vcpu *v, uint32_t lin, uint32_t *out, unsigned n, bool supervisor)
{
	if ((lin & 0xFFF) + 4 * n > 0x1000) {
		for (unsigned i = 0; i < n; i++)
			out[i] = supervisor ? vmem_read_supervisor(v, lin + 4 * i, 4) : vmem_read(v, lin + 4 * i, 4);
		return;
	}
	uint32_t phys = supervisor ? translate_implicit(v, lin, false) : translate_explicit(v, lin, false);
	const uint8_t *p = gmem_ptr(v->mem, phys, 4 * n);
	if (p)
		memcpy(out, p, 4 * n); /* RAM: one bounds check */
	else
		for (unsigned i = 0; i < n; i++)
			out[i] = supervisor ? gmem_read(v->mem, phys + 4 * i, 4) : phys_read(v, phys + 4 * i, 4);
	watch_check(v, lin, 4 * n, false);
}

void vmem_write_words_supervisor(struct vcpu *v, uint32_t lin, const uint32_t *words, unsigned n)
{
	if ((lin & 0xFFF) + 4 * n > 0x1000) {
		for (unsigned i = 0; i < n; i++)
			vmem_write_supervisor(v, lin + 4 * i, 4, words[i]);
		return;
	}
	uint32_t phys = translate_implicit(v, lin, true);
	if (gmem_ptr(v->mem, phys, 4 * n))
		gmem_write_block(v->mem, phys, words, 4 * n);
	else
		for (unsigned i = 0; i < n; i++)
			gmem_write(v->mem, phys + 4 * i, 4, words[i]);
	watch_check(v, lin, 4 * n, true);
}

void vmem_write(struct vcpu *v, uint32_t lin, unsigned size, uint32_t val)
{
	if ((lin & 0xFFF) + size > 0x1000) {
		uint32_t phys[4];
		for (unsigned i = 0; i < size; i++) /* all or nothing: translate first */
			phys[i] = translate_explicit(v, lin + i, true);
		for (unsigned i = 0; i < size; i++)
			phys_write(v, phys[i], 1, (val >> (8 * i)) & 0xFF);
	} else {
		phys_write(v, translate_explicit(v, lin, true), size, val);
	}
	watch_check(v, lin, size, true);
}

uint32_t vmem_seg_lin(struct vcpu *v, enum sreg s, uint32_t off, unsigned size, bool write)
{
	const struct seg_cache *c = &v->seg[s];
	unsigned vec = s == S_SS ? EXC_SS : EXC_GP;
	uint32_t last = off + size - 1;

	if (!c->valid)
		vcpu_raise(v, vec, true, 0);
	bool code = c->type & 0x8;
	if ((write && (code || !(c->type & 0x2))) || (!write && code && !(c->type & 0x2)))
		vcpu_raise(v, vec, true, 0);
	if (!code && (c->type & 0x4)) {
		/* expand-down: valid offsets are limit+1 .. 0xFFFF or 0xFFFFFFFF */
		uint32_t top = c->db ? 0xFFFFFFFFu : 0xFFFFu;
		if (off <= c->limit || last > top || last < off)
			vcpu_raise(v, vec, true, 0);
	} else if (last > c->limit || last < off) {
		vcpu_raise(v, vec, true, 0);
	}
	return c->base + off;
}

uint32_t vmem_sp(const struct vcpu *v)
{
	return v->seg[S_SS].db ? v->hot->gpr[R_ESP] : v->hot->gpr[R_ESP] & 0xFFFF;
}

void vmem_set_sp(struct vcpu *v, uint32_t sp)
{
	uint32_t *esp = &v->hot->gpr[R_ESP];
	*esp = v->seg[S_SS].db ? sp : (*esp & 0xFFFF0000u) | (sp & 0xFFFF);
}

void vmem_push(struct vcpu *v, unsigned size, uint32_t val)
{
	uint32_t sp = vmem_sp(v) - size;
	if (!v->seg[S_SS].db)
		sp &= 0xFFFF;
	vmem_seg_write(v, S_SS, sp, size, val);
	vmem_set_sp(v, sp);
}

uint32_t vmem_pop(struct vcpu *v, unsigned size)
{
	uint32_t sp = vmem_sp(v);
	uint32_t val = vmem_seg_read(v, S_SS, sp, size);
	vmem_set_sp(v, sp + size);
	return val;
}

/* The physical address of linear lin through the guest's page tables (any
 * present mapping: a debugger reads and writes what the kernel could),
 * or false. */
static bool debug_translate(struct vcpu *v, uint32_t lin, uint32_t *phys)
{
	struct pw_result r;

	if (!(v->cr0 & CR0_PG)) {
		*phys = lin;
		return true;
	}
	if (!pw_walk(v->mem, v->cr0, v->cr3, v->cr4, lin, PW_PROBE | vmem_nxe(v), &r))
		return false;
	*phys = r.phys;
	return true;
}

bool vmem_debug_access(struct vcpu *v, uint32_t lin, uint8_t *buf, uint32_t len, bool write)
{
	while (len) {
		uint32_t phys, chunk = PAGE_SIZE_4K - (lin & (PAGE_SIZE_4K - 1));
		if (chunk > len)
			chunk = len;
		if (!debug_translate(v, lin, &phys) || !gmem_is_ram(v->mem, phys, chunk))
			return false;
		if (write)
			gmem_write_block(v->mem, phys, buf, chunk);
		else
			memcpy(buf, gmem_ptr(v->mem, phys, chunk), chunk);
		lin += chunk;
		buf += chunk;
		len -= chunk;
	}
	return true;
}
