/*
 * Guest physical memory and the host address space around it.
 *
 * Guest RAM is one memfd, mapped twice: once wherever the kernel likes (above
 * 4 GiB) for the monitor's own accesses, and once in the low 4 GiB as the
 * shadow of guest linear space (layout.h).  The whole low 4 GiB is reserved at
 * start-up (PROT_NONE), so nothing else of the host ever lands where guest
 * code can reach it; guest accesses to unbacked addresses fault and are
 * emulated.
 *
 * Invariants:
 *  - A guest-physical page that holds translated code is read-only in the
 *    shadow; the monitor's own writes go through gmem_write*, which tell the
 *    translation cache (through the code-write hook) before writing.
 *  - Which host pages alias a RAM page is the shadow's business (shadow.h);
 *    gmem only records which pages hold code and asks it to apply that.
 */
#ifndef BT86_GMEM_H
#define BT86_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

struct gmem {
	int fd;
	uint32_t size;      /* bytes of RAM, a multiple of 4 KiB */
	uint32_t low_hole;  /* host pages below this cannot be mapped */
	uint8_t *ram;       /* the monitor's view */
	uint8_t *code_page; /* one byte a RAM page: page holds translated code */
	/* Called before the monitor writes to a page holding translated code. */
	void (*code_write)(void *opaque, uint32_t page);
	void *code_write_opaque;
	/* Applies code_page[page] to the page's shadow aliases (shadow.c). */
	void (*protect)(void *opaque, uint32_t page, bool code);
	void *protect_opaque;
};

/* Reserves the low 4 GiB and maps `size` bytes of RAM.
 * On failure returns -1 with a message in err. */
int gmem_init(struct gmem *m, uint32_t size, char *err, size_t errlen);
void gmem_destroy(struct gmem *m);

static inline bool gmem_is_ram(const struct gmem *m, uint32_t phys, uint32_t len)
{
	return phys < m->size && len <= m->size - phys;
}

/* Host pointer for [phys, phys+len) when it is RAM, else NULL. */
static inline uint8_t *gmem_ptr(const struct gmem *m, uint32_t phys, uint32_t len)
{
	return gmem_is_ram(m, phys, len) ? m->ram + phys : NULL;
}

/* Monitor-side accesses.  Reads outside RAM return all ones and writes are
 * dropped (open bus, as on a PC); writes to code pages invalidate first. */
uint32_t gmem_read(const struct gmem *m, uint32_t phys, unsigned size);
void gmem_write(struct gmem *m, uint32_t phys, unsigned size, uint32_t val);
void gmem_write_block(struct gmem *m, uint32_t phys, const void *src, uint32_t len);

/* Marks a page as holding translated code (write-protects its shadow), or
 * clears the mark (restores write access). */
void gmem_protect_code(struct gmem *m, uint32_t page);
void gmem_unprotect_code(struct gmem *m, uint32_t page);

#endif
