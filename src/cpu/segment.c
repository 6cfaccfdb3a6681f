#include "segment.h"

#include <string.h>

#include "../mem/vmem.h"
#include "../util.h"
#include "exception.h"

bool seg_read_descriptor(struct vcpu *v, uint16_t sel, uint32_t *lo, uint32_t *hi)
{
	uint32_t base, limit;

	if (sel & 4) {
		if (!v->ldtr.valid)
			return false;
		base = v->ldtr.base;
		limit = v->ldtr.limit;
	} else {
		base = v->gdtr.base;
		limit = v->gdtr.limit;
	}
	if ((uint32_t)(sel & ~7u) + 7 > limit)
		return false;
	/* Descriptor-table accesses are supervisor accesses whatever the CPL. */
	uint32_t d[2];
	vmem_read_words(v, base + (sel & ~7u), d, 2, true);
	*lo = d[0];
	*hi = d[1];
	return true;
}

void seg_decode(uint32_t lo, uint32_t hi, struct seg_cache *c)
{
	c->base = (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF000000u);
	c->limit = (lo & 0xFFFF) | (hi & 0xF0000);
	c->g = (hi >> 23) & 1;
	if (c->g)
		c->limit = (c->limit << 12) | 0xFFF;
	c->type = (hi >> 8) & 0xF;
	c->s = (hi >> 12) & 1;
	c->dpl = (hi >> 13) & 3;
	c->p = (hi >> 15) & 1;
	c->db = (hi >> 22) & 1;
	c->valid = true;
}

/* The records a register's loads go to: ES 0, DS 1, FS 2 and 3. */
static unsigned reload_first(enum sreg s, unsigned *n)
{
	*n = s == S_FS ? 2 : 1;
	return s == S_ES ? 0 : s == S_DS ? 1 : 2;
}

void seg_reload_disarm(struct vcpu *v)
{
	for (unsigned i = 0; i < SREG_RELOADS; i++)
		v->hot->sreg_reload[i].selneg = 1;
}

void seg_sync_reloads(struct vcpu *v)
{
	static const enum sreg regs[] = {S_ES, S_DS, S_FS};
	for (unsigned i = 0; i < 3; i++) {
		enum sreg s = regs[i];
		uint16_t sel = (uint16_t)v->hot->sel[s];
		unsigned n, first = reload_first(s, &n), k = first;
		if (sel == v->seg[s].sel)
			continue;
		while (k < first + n - 1 && v->reloaded[k].sel != sel)
			k++;
		BT86_ASSERT(v->reloaded[k].sel == sel);
		v->seg[s] = v->reloaded[k];
	}
}

/* Records a load of ES, DS or FS just committed (a null selector, or one
 * from the GDT with its descriptor's bytes lo/hi): for FS in the record
 * that does not hold the value being replaced (`old`), so that two
 * alternating values both stay. */
static void reload_record(struct vcpu *v, enum sreg s, uint16_t old, uint32_t lo, uint32_t hi)
{
	uint16_t sel = v->seg[s].sel;
	bool null = (sel & ~3u) == 0;
	unsigned n, first = reload_first(s, &n), k = first;
	if (n == 2)
		k += v->reloaded[first].sel == sel ? 0 : v->reloaded[first + 1].sel == sel ? 1
		     : v->reloaded[first].sel == old;
	v->reloaded[k] = v->seg[s];
	/* Translated code compares no descriptor for a null FS only (the
	 * kernel-user alternation); a null ES or DS is never repeated. */
	v->hot->sreg_reload[k].selneg = null && s != S_FS ? 1 : -(uint32_t)sel;
	v->hot->sreg_reload[k].desc_at = null ? 0 : v->gdtr.base + (sel & ~7u);
	v->hot->sreg_reload[k].descneg = null ? 0 : -((uint64_t)hi << 32 | lo);
	v->hot->sreg_reload[k].base = v->seg[s].valid ? v->seg[s].base : 0;
	v->hot->sreg_reload[k].null = null;
}

static void commit(struct vcpu *v, enum sreg s, uint16_t sel, const struct seg_cache *c)
{
	v->seg[s] = *c;
	v->seg[s].sel = sel;
	v->hot->sel[s] = sel;
	if (s == S_FS)
		v->hot->fs_base = c->valid ? c->base : 0;
	else if (s == S_GS)
		v->hot->gs_base = c->valid ? c->base : 0;
}

/* A load in virtual-8086 mode (SDM vol. 3 20.2.1): base sixteen times the
 * selector, 64 KiB, 16-bit, DPL 3, as QEMU loads them. */
static void load_vm86(struct vcpu *v, enum sreg s, uint16_t sel)
{
	struct seg_cache c = {.base = (uint32_t)sel << 4, .limit = 0xFFFF, .type = s == S_CS ? 0xB : 0x3,
			      .s = true, .p = true, .valid = true, .dpl = 3};
	commit(v, s, sel, &c);
	seg_reload_disarm(v);
}

/* A load in real mode (SDM vol. 3 20.1.1): the selector and a base of
 * sixteen times it; limit and attributes stay as they were (as QEMU keeps
 * them: a segment loaded in protected mode keeps its limit, "unreal"
 * mode), but the segment is usable. */
static void load_real(struct vcpu *v, enum sreg s, uint16_t sel)
{
	struct seg_cache c = v->seg[s];
	c.base = (uint32_t)sel << 4;
	c.valid = c.p = c.s = true;
	commit(v, s, sel, &c);
	seg_reload_disarm(v); /* a recorded selector no longer means its descriptor */
}

void seg_set(struct vcpu *v, enum sreg s, uint16_t sel, const struct seg_cache *c)
{
	commit(v, s, sel, c);
}

unsigned seg_check_stack(struct vcpu *v, uint16_t sel, unsigned cpl, struct seg_cache *c)
{
	uint32_t lo, hi;

	memset(c, 0, sizeof *c);
	if ((sel & ~3u) == 0 || (sel & 3u) != cpl || !seg_read_descriptor(v, sel, &lo, &hi))
		return EXC_TS;
	seg_decode(lo, hi, c);
	if (!c->s || (c->type & 8) || !(c->type & 2) || c->dpl != cpl)
		return EXC_TS;
	if (!c->p)
		return EXC_SS;
	return 0;
}

void seg_null_inaccessible(struct vcpu *v)
{
	static const enum sreg data[] = {S_ES, S_DS, S_FS, S_GS};
	for (unsigned i = 0; i < 4; i++) {
		struct seg_cache *c = &v->seg[data[i]];
		bool conforming_code = (c->type & 0xC) == 0xC;
		if (c->valid && c->dpl < v->cpl && !conforming_code) {
			/* The hidden part the SDM leaves undefined keeps the old
			 * base, limit and attributes, not present, as in QEMU. */
			struct seg_cache null = *c;
			null.p = null.valid = false;
			commit(v, data[i], 0, &null);
		}
	}
}

/* Virtual-8086 and real mode load segments without descriptors: true
 * when one of them did. */
static bool load_without_descriptor(struct vcpu *v, enum sreg s, uint16_t sel)
{
	if (v->vm)
		load_vm86(v, s, sel);
	else if (!(v->cr0 & CR0_PE))
		load_real(v, s, sel);
	else
		return false;
	return true;
}

/* A data or stack segment load with the SDM's checks, raising `bad` (#GP
 * for an instruction's load, #TS for a task switch's) where the selector or
 * its descriptor will not do, #NP or #SS where it is not present. */
static void load_checked(struct vcpu *v, enum sreg s, uint16_t sel, unsigned bad)
{
	struct seg_cache c = {0};
	uint32_t lo, hi;
	unsigned rpl = sel & 3, cpl = v->cpl;
	uint32_t err = sel & ~3u;

	if (load_without_descriptor(v, s, sel))
		return;
	if ((sel & ~3u) == 0) {
		if (s == S_SS)
			vcpu_raise(v, bad, true, 0);
		uint16_t was = v->seg[s].sel;
		commit(v, s, sel, &c); /* null selector: loads, faults on use */
		if (s == S_ES || s == S_DS || s == S_FS)
			reload_record(v, s, was, 0, 0);
		return;
	}
	if (!seg_read_descriptor(v, sel, &lo, &hi))
		vcpu_raise(v, bad, true, err);
	seg_decode(lo, hi, &c);
	bool code = c.type & 8;
	if (!c.s)
		vcpu_raise(v, bad, true, err);
	if (s == S_SS) {
		if (rpl != cpl || c.dpl != cpl || code || !(c.type & 2))
			vcpu_raise(v, bad, true, err);
		if (!c.p)
			vcpu_raise(v, EXC_SS, true, err);
	} else {
		if (code && !(c.type & 2))
			vcpu_raise(v, bad, true, err); /* execute-only code */
		bool conforming_code = code && (c.type & 4);
		if (!conforming_code && (rpl > c.dpl || cpl > c.dpl))
			vcpu_raise(v, bad, true, err);
		if (!c.p)
			vcpu_raise(v, EXC_NP, true, err);
	}
	/* Set the accessed bit as the CPU does. */
	if (!(c.type & 1)) {
		uint32_t base = (sel & 4) ? v->ldtr.base : v->gdtr.base;
		vmem_write_supervisor(v, base + (sel & ~7u) + 5, 1, ((hi >> 8) & 0xFF) | 1);
		c.type |= 1;
		hi |= 1u << 8;
	}
	uint16_t old = v->seg[s].sel;
	commit(v, s, sel, &c);
	if ((s == S_ES || s == S_DS || s == S_FS) && !(sel & 4))
		reload_record(v, s, old, lo, hi);
}

void seg_load(struct vcpu *v, enum sreg s, uint16_t sel)
{
	load_checked(v, s, sel, EXC_GP);
}

void seg_load_task(struct vcpu *v, enum sreg s, uint16_t sel)
{
	if (s != S_CS) {
		load_checked(v, s, sel, EXC_TS);
		return;
	}
	uint32_t lo, hi;
	struct seg_cache c = {0};
	unsigned rpl = sel & 3u;
	if ((sel & ~3u) == 0 || !seg_read_descriptor(v, sel, &lo, &hi))
		vcpu_raise(v, EXC_TS, true, sel & ~3u);
	seg_decode(lo, hi, &c);
	if (!c.s || !(c.type & 8) || ((c.type & 4) ? c.dpl > rpl : c.dpl != rpl))
		vcpu_raise(v, EXC_TS, true, sel & ~3u);
	seg_load_cs_decoded(v, sel, rpl, &c, hi);
}

void seg_load_cs(struct vcpu *v, uint16_t sel, unsigned new_cpl)
{
	uint32_t lo, hi;

	if (load_without_descriptor(v, S_CS, sel))
		return;
	if ((sel & ~3u) == 0 || !seg_read_descriptor(v, sel, &lo, &hi))
		vcpu_raise(v, EXC_GP, true, sel & ~3u);
	struct seg_cache c = {0};
	seg_decode(lo, hi, &c);
	seg_load_cs_decoded(v, sel, new_cpl, &c, hi);
}

void seg_load_cs_decoded(struct vcpu *v, uint16_t sel, unsigned new_cpl, const struct seg_cache *desc, uint32_t hi)
{
	struct seg_cache c = *desc;
	uint32_t err = sel & ~3u;

	if (!c.s || !(c.type & 8))
		vcpu_raise(v, EXC_GP, true, err);
	if (c.type & 4) {
		if (c.dpl > new_cpl)
			vcpu_raise(v, EXC_GP, true, err);
	} else if (c.dpl != new_cpl) {
		vcpu_raise(v, EXC_GP, true, err);
	}
	if (!c.p)
		vcpu_raise(v, EXC_NP, true, err);
	if (!(c.type & 1)) {
		uint32_t base = (sel & 4) ? v->ldtr.base : v->gdtr.base;
		vmem_write_supervisor(v, base + (sel & ~7u) + 5, 1, ((hi >> 8) & 0xFF) | 1);
		c.type |= 1;
	}
	v->cpl = new_cpl;
	commit(v, S_CS, (uint16_t)((sel & ~3u) | new_cpl), &c);
}

void seg_set_fast_system(struct vcpu *v, uint16_t cs, unsigned cpl)
{
	uint16_t cs_sel = (uint16_t)((cs & ~3u) | cpl), ss_sel = (uint16_t)(((cs & ~3u) + 8) | cpl);
	struct seg_cache c = {.base = 0, .limit = 0xFFFFFFFFu, .type = 0xB, .s = true, .p = true, .db = true,
			      .g = true, .valid = true, .dpl = (uint8_t)cpl};
	v->cpl = cpl;
	commit(v, S_CS, cs_sel, &c);
	c.type = 0x3;
	commit(v, S_SS, ss_sel, &c);
}

void seg_set_flat(struct vcpu *v, enum sreg s, uint16_t sel, bool code)
{
	struct seg_cache c = {.sel = sel, .base = 0, .limit = 0xFFFFFFFFu, .type = code ? 0xA : 0x3,
			      .s = true, .p = true, .db = true, .g = true, .valid = true, .dpl = 0};
	commit(v, s, sel, &c);
}
