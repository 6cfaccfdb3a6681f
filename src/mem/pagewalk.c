#include "pagewalk.h"

#include "../cpu/vcpu.h"
#include "gmem.h"

static uint32_t read_entry(struct gmem *m, uint32_t phys)
{
	return gmem_read(m, phys, 4);
}

/* Sets bits in a paging entry the way the processor does: a locked
 * read-modify-write of guest memory, and only when they are clear (so a
 * walk that changes nothing writes nothing). */
static void set_bits(struct gmem *m, uint32_t phys, uint32_t entry, uint32_t bits)
{
	if ((entry & bits) != bits)
		gmem_write(m, phys, 4, entry | bits);
}

bool pw_walk(struct gmem *m, uint32_t cr0, uint32_t cr3, uint32_t cr4, uint32_t lin, unsigned access,
	     struct pw_result *r)
{
	bool write = access & PF_W, user = access & PF_U, probe = access & PW_PROBE;
	uint32_t pde_at = (cr3 & ~0xFFFu) + (lin >> 22) * 4;
	uint32_t pde = read_entry(m, pde_at);

	access &= PF_W | PF_U;
	r->err = access;
	if (!(pde & PTE_P))
		return false;
	bool large = (pde & PTE_PS) && (cr4 & CR4_PSE);
	uint32_t pte_at = 0, pte = pde, perms = pde;
	if (!large) {
		pte_at = (pde & ~0xFFFu) + ((lin >> 12) & 0x3FF) * 4;
		pte = read_entry(m, pte_at);
		if (!(pte & PTE_P))
			return false;
		perms = pde & pte; /* U and W must be set at both levels */
	}
	bool u_ok = perms & PTE_U, w_ok = perms & PTE_W;
	r->err = access | PF_P;
	if (user && !u_ok)
		return false;
	if (write && !w_ok && (user || (cr0 & CR0_WP)))
		return false;
	r->user = u_ok;
	r->writable = w_ok || (!user && !(cr0 & CR0_WP));
	r->global = (pte & PTE_G) && (cr4 & CR4_PGE);
	r->large = large;
	r->accessed = (pde & PTE_A) && (pte & PTE_A);
	if (large) {
		r->phys = (pde & 0xFFC00000u) | (lin & 0x3FFFFF);
		if (!probe)
			set_bits(m, pde_at, pde, PTE_A | (write ? PTE_D : 0));
		r->dirty = write || (pde & PTE_D);
	} else {
		r->phys = (pte & ~0xFFFu) | (lin & 0xFFF);
		if (!probe) {
			set_bits(m, pde_at, pde, PTE_A);
			set_bits(m, pte_at, pte, PTE_A | (write ? PTE_D : 0));
		}
		r->dirty = write || (pte & PTE_D);
	}
	return true;
}
