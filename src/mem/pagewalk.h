/*
 * The guest's page tables (SDM vol. 3 ch. 4.3 and 4.4): 2-level ones with
 * 4 KiB pages and, with CR4.PSE, 4 MiB pages; with CR4.PAE 3-level ones of
 * 64-bit entries with 4 KiB and 2 MiB pages, whose bit 63 is XD (execute
 * disable) with EFER.NXE and reserved without; permissions with CR0.WP;
 * the accessed and dirty bits set as the processor sets them.
 */
#ifndef BT86_PAGEWALK_H
#define BT86_PAGEWALK_H

#include <stdbool.h>
#include <stdint.h>

#define PTE_P 0x1u
#define PTE_W 0x2u
#define PTE_U 0x4u
#define PTE_A 0x20u
#define PTE_D 0x40u
#define PTE_PS 0x80u
#define PTE_G 0x100u

/* Access kinds, which are also the #PF error-code bits. */
#define PF_P 0x1u
#define PF_W 0x2u
#define PF_U 0x4u
#define PF_RSVD 0x8u
#define PF_ID 0x10u /* an instruction fetch (reported with SMEP, or PAE and NXE) */
/* Not error-code bits: a look that sets neither A nor D; EFER.NXE is set. */
#define PW_PROBE 0x100u
#define PW_NXE 0x200u

#define EFER_NXE 0x800u

#define CR4_PSE 0x10u
#define CR4_PAE 0x20u
#define CR4_PGE 0x80u
#define CR4_SMAP 0x200000u /* supervisor data accesses to user pages fault (vmem.c, run.c) */

struct gmem;

struct pw_result {
	uint32_t phys;      /* physical address of the byte */
	bool writable;      /* a write at this privilege would succeed */
	bool user;          /* user-accessible */
	bool global;        /* G with CR4.PGE */
	bool dirty;         /* D is set in the mapping entry */
	uint32_t large_bytes; /* a large page's size (4 MiB, or 2 MiB under PAE), else 0 */
	bool accessed;      /* A was already set at every level */
	bool nx;            /* XD at some level (PAE with NXE): no instruction fetch */
	uint32_t err;       /* #PF error code when the walk failed */
};

/* Translates `lin` for an access of kind `access` (PF_W, PF_U, PF_ID for
 * an instruction fetch, PW_PROBE, and PW_NXE when EFER.NXE is set).
 * Returns true with *r filled, setting A (and D for a write) in guest
 * memory unless probing, or false with r->err the #PF error code (P when a
 * present entry denied it, RSVD too when one had a reserved bit set, I/D
 * for a fetch under PAE with NXE; SMEP's I/D is the caller's). */
bool pw_walk(struct gmem *m, uint32_t cr0, uint32_t cr3, uint32_t cr4, uint32_t lin, unsigned access,
	     struct pw_result *r);

#endif
