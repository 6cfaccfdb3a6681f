#include "vmem.h"

#include "../cpu/exception.h"
#include "gmem.h"

/* Paging is off: linear = physical.  RAM reads and writes go through gmem,
 * which keeps translated code coherent; other addresses are open bus. */
uint32_t vmem_read(struct vcpu *v, uint32_t lin, unsigned size)
{
	return gmem_read(v->mem, lin, size);
}

void vmem_write(struct vcpu *v, uint32_t lin, unsigned size, uint32_t val)
{
	gmem_write(v->mem, lin, size, val);
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

void vmem_push(struct vcpu *v, unsigned size, uint32_t val)
{
	uint32_t esp = v->hot->gpr[R_ESP] - size;
	vmem_seg_write(v, S_SS, esp, size, val);
	v->hot->gpr[R_ESP] = esp;
}

uint32_t vmem_pop(struct vcpu *v, unsigned size)
{
	uint32_t esp = v->hot->gpr[R_ESP];
	uint32_t val = vmem_seg_read(v, S_SS, esp, size);
	v->hot->gpr[R_ESP] = esp + size;
	return val;
}
