/*
 * Guest linear memory as the monitor sees it: segment checks, the
 * linear->physical step (identity while CR0.PG = 0, the only mode so far) and
 * the access itself.  Faults are raised in the guest (vcpu_raise) and never
 * return.
 */
#ifndef BT86_VMEM_H
#define BT86_VMEM_H

#include <stdbool.h>
#include <stdint.h>

#include "../cpu/vcpu.h"

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
void vmem_push(struct vcpu *v, unsigned size, uint32_t val);
uint32_t vmem_pop(struct vcpu *v, unsigned size);

#endif
