/*
 * Guest linear memory as the monitor sees it: segment checks, the
 * linear->physical step (the guest's page tables when CR0.PG = 1, setting A
 * and D as the processor does) and the access itself.  Faults are raised in
 * the guest (vcpu_raise, with CR2 for #PF) and never return.
 */
#ifndef BT86_VMEM_H
#define BT86_VMEM_H

#include <stdbool.h>
#include <stdint.h>

#include "../cpu/vcpu.h"
#include "pagewalk.h"

/* The walk flag (pagewalk.h) that says whether EFER.NXE is set. */
static inline unsigned vmem_nxe(const struct vcpu *v)
{
	return v->efer & EFER_NXE ? PW_NXE : 0;
}

/* Empties the monitor's TLB (vmem.c): after a write to CR0, CR3 or CR4,
 * and at invlpg. */
void vmem_tlb_flush(struct vcpu *v);
/* Physical address of `lin` for an access by the current privilege level;
 * raises #PF. */
uint32_t vmem_translate(struct vcpu *v, uint32_t lin, bool write);
/* The same for an explicitly supervisor (user = false) or user access:
 * stack switches and descriptor-table accesses are supervisor accesses
 * whatever the CPL (implicit ones, which SMAP refuses on user pages
 * whatever EFLAGS.AC says). */
uint32_t vmem_translate_as(struct vcpu *v, uint32_t lin, bool write, bool user);
/* An instruction fetch's translation; *global says whether the mapping
 * survives a CR3 load (a global page, or paging off). */
uint32_t vmem_translate_fetch(struct vcpu *v, uint32_t lin, bool *global);
/* Whether an instruction fetch at `lin` would succeed, without faulting
 * or setting A: *phys and *global as above. */
bool vmem_probe_fetch(struct vcpu *v, uint32_t lin, uint32_t *phys, bool *global);
void vmem_write_supervisor(struct vcpu *v, uint32_t lin, unsigned size, uint32_t val);
uint32_t vmem_read_supervisor(struct vcpu *v, uint32_t lin, unsigned size);
/* n dwords from `lin` into out, as n 4-byte reads would give them (a
 * supervisor access, or one with the CPL's rights), but with one
 * translation when they lie in one page: the processor's own descriptor,
 * gate and frame accesses. */
void vmem_read_words(struct vcpu *v, uint32_t lin, uint32_t *out, unsigned n, bool supervisor);
/* The same for n supervisor writes of 4 bytes (an interrupt frame). */
void vmem_write_words_supervisor(struct vcpu *v, uint32_t lin, const uint32_t *words, unsigned n);
uint32_t vmem_read(struct vcpu *v, uint32_t lin, unsigned size);
void vmem_write(struct vcpu *v, uint32_t lin, unsigned size, uint32_t val);

/* Linear address of seg:off for an access of `size` bytes, after the
 * segment's limit and type checks (#GP(0), or #SS(0) for SS). */
uint32_t vmem_seg_lin(struct vcpu *v, enum sreg s, uint32_t off, unsigned size, bool write);

static inline uint32_t vmem_seg_read(struct vcpu *v, enum sreg s, uint32_t off, unsigned size)
{
	return vmem_read(v, vmem_seg_lin(v, s, off, size, false), size);
}

static inline void vmem_seg_write(struct vcpu *v, enum sreg s, uint32_t off, unsigned size,
				  uint32_t val)
{
	vmem_write(v, vmem_seg_lin(v, s, off, size, true), size, val);
}

/* Guest stack through SS:ESP, 32-bit or 16-bit operands. */
/* The stack pointer as SS's size makes it: ESP, or SP for a 16-bit stack
 * (whose pushes and pops wrap at 64 KiB and leave ESP's high half). */
uint32_t vmem_sp(const struct vcpu *v);
void vmem_set_sp(struct vcpu *v, uint32_t sp);
void vmem_push(struct vcpu *v, unsigned size, uint32_t val);
uint32_t vmem_pop(struct vcpu *v, unsigned size);

/* The debugger's and the monitor's accesses: copies len bytes at linear
 * lin from (write false) or into guest RAM, page by page, through the
 * guest's tables without touching their A and D bits; false at the first
 * byte not in RAM or not mapped.  A write into translated code
 * invalidates it (gmem's hook). */
bool vmem_debug_access(struct vcpu *v, uint32_t lin, uint8_t *buf, uint32_t len, bool write);

#endif
