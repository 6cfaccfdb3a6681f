#include "pagewalk.h"

#include "../cpu/vcpu.h"
#include "gmem.h"

/* Sets bits in a paging entry the way the processor does: a locked
 * read-modify-write of guest memory, and only when they are clear (so a
 * walk that changes nothing writes nothing).  A and D are in the low
 * dword of a PAE entry too. */
static void set_bits(struct gmem *m, uint32_t phys, uint32_t entry, uint32_t bits)
{
	if ((entry & bits) != bits)
		gmem_write(m, phys, 4, entry | bits);
}

/* The levels of a walk, as each paging mode makes them: the directory
 * entry and, for a small page, the table entry (their low dwords, the
 * high ones checked already). */
struct levels {
	uint32_t pde_at, pde, pte_at, pte;
	bool large, xd; /* xd: bit 63 of a PAE directory or table entry */
};

/* 2-level: a 4 KiB table entry, or a 4 MiB page with CR4.PSE. */
static bool walk_legacy(struct gmem *m, uint32_t cr3, uint32_t cr4, uint32_t lin, struct levels *l)
{
	l->pde_at = (cr3 & ~0xFFFu) + (lin >> 22) * 4;
	l->pde = gmem_read(m, l->pde_at, 4);
	if (!(l->pde & PTE_P))
		return false;
	l->large = (l->pde & PTE_PS) && (cr4 & CR4_PSE);
	if (l->large)
		return true;
	l->pte_at = (l->pde & ~0xFFFu) + ((lin >> 12) & 0x3FF) * 4;
	l->pte = gmem_read(m, l->pte_at, 4);
	return l->pte & PTE_P;
}

/* PAE's 64-bit entries: a PDPTE, then a 2 MiB page or a table entry.  With
 * MAXPHYADDR 32 (CPUID 0x80000008) every high dword bit is reserved but
 * XD (bit 63) in a directory or table entry with NXE (a PDPTE has no XD),
 * as are a 2 MiB page's bits 13-20 and a PDPTE's 1, 2 and 5-8. */
static bool walk_pae(struct gmem *m, uint32_t cr3, uint32_t lin, bool nxe, struct levels *l, bool *rsvd)
{
	uint32_t xd_ok = nxe ? 0x80000000u : 0, hi;
	uint32_t pdpte_at = (cr3 & ~0x1Fu) + (lin >> 30) * 8;
	uint32_t pdpte = gmem_read(m, pdpte_at, 4);
	if (!(pdpte & PTE_P))
		return false;
	if (gmem_read(m, pdpte_at + 4, 4) || (pdpte & 0x1E6u)) {
		*rsvd = true;
		return false;
	}
	l->pde_at = (pdpte & ~0xFFFu) + ((lin >> 21) & 0x1FF) * 8;
	l->pde = gmem_read(m, l->pde_at, 4);
	if (!(l->pde & PTE_P))
		return false;
	l->large = l->pde & PTE_PS;
	hi = gmem_read(m, l->pde_at + 4, 4);
	l->xd = hi >> 31;
	if ((hi & ~xd_ok) || (l->large && (l->pde & 0x1FE000u))) {
		*rsvd = true;
		return false;
	}
	if (l->large)
		return true;
	l->pte_at = (l->pde & ~0xFFFu) + ((lin >> 12) & 0x1FF) * 8;
	l->pte = gmem_read(m, l->pte_at, 4);
	if (!(l->pte & PTE_P))
		return false;
	hi = gmem_read(m, l->pte_at + 4, 4);
	l->xd |= hi >> 31;
	if (hi & ~xd_ok) {
		*rsvd = true;
		return false;
	}
	return true;
}

bool pw_walk(struct gmem *m, uint32_t cr0, uint32_t cr3, uint32_t cr4, uint32_t lin, unsigned access,
	     struct pw_result *r)
{
	bool write = access & PF_W, user = access & PF_U, probe = access & PW_PROBE, rsvd = false;
	bool pae = cr4 & CR4_PAE, nxe = pae && (access & PW_NXE), fetch = access & PF_ID;
	struct levels l = {.xd = false};

	access = (access & (PF_W | PF_U)) | (fetch && nxe ? PF_ID : 0);
	r->err = access;
	if (!(pae ? walk_pae(m, cr3, lin, nxe, &l, &rsvd) : walk_legacy(m, cr3, cr4, lin, &l))) {
		if (rsvd)
			r->err = access | PF_P | PF_RSVD;
		return false;
	}
	if (l.large)
		l.pte = l.pde; /* one level: the directory entry is the mapping's */
	uint32_t perms = l.pde & l.pte; /* U and W must be set at both levels */
	bool u_ok = perms & PTE_U, w_ok = perms & PTE_W;
	r->err = access | PF_P;
	if (user && !u_ok)
		return false;
	if (write && !w_ok && (user || (cr0 & CR0_WP)))
		return false;
	if (fetch && l.xd)
		return false;
	r->nx = l.xd;
	r->user = u_ok;
	r->writable = w_ok || (!user && !(cr0 & CR0_WP));
	r->global = (l.pte & PTE_G) && (cr4 & CR4_PGE);
	r->large_bytes = !l.large ? 0 : (cr4 & CR4_PAE) ? 0x200000u : 0x400000u;
	r->accessed = (l.pde & PTE_A) && (l.pte & PTE_A);
	if (l.large) {
		r->phys = (l.pde & ~(r->large_bytes - 1)) | (lin & (r->large_bytes - 1));
		if (!probe)
			set_bits(m, l.pde_at, l.pde, PTE_A | (write ? PTE_D : 0));
	} else {
		r->phys = (l.pte & ~0xFFFu) | (lin & 0xFFF);
		if (!probe) {
			set_bits(m, l.pde_at, l.pde, PTE_A);
			set_bits(m, l.pte_at, l.pte, PTE_A | (write ? PTE_D : 0));
		}
	}
	r->dirty = write || (l.pte & PTE_D);
	return true;
}
