#include "gmem.h"

#include "../util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096u

static void *shadow_of(uint32_t phys)
{
	return (void *)(uintptr_t)phys;
}

static uint32_t mmap_min_addr(void)
{
	unsigned long v = 65536;
	FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "r");

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 65536;
		fclose(f);
	}
	return (uint32_t)((v + PAGE - 1) & ~(unsigned long)(PAGE - 1));
}

int gmem_init(struct gmem *m, uint32_t size, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	m->fd = -1;
	if (size < (1u << 20) || size % PAGE || size > 0xF0000000u) {
		snprintf(err, errlen, "guest memory size %u bytes is out of range (1 MiB to 3840 MiB)", size);
		return -1;
	}
	m->low_hole = mmap_min_addr();
	void *low = mmap(shadow_of(m->low_hole), GUEST_WINDOW_SIZE - m->low_hole, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (low == MAP_FAILED) {
		snprintf(err, errlen, "cannot reserve the low 4 GiB for the guest: %s", strerror(errno));
		return -1;
	}
	m->fd = memfd_create("bt86-ram", MFD_CLOEXEC);
	if (m->fd < 0 || ftruncate(m->fd, size) != 0) {
		snprintf(err, errlen, "cannot create %u bytes of guest RAM: %s", size, strerror(errno));
		goto close_fd;
	}
	m->ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->ram == MAP_FAILED) {
		snprintf(err, errlen, "cannot map guest RAM: %s", strerror(errno));
		goto close_fd;
	}
	if (size > m->low_hole &&
	    mmap(shadow_of(m->low_hole), size - m->low_hole, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, m->fd, m->low_hole) == MAP_FAILED) {
		snprintf(err, errlen, "cannot map the guest RAM shadow: %s", strerror(errno));
		goto unmap_ram;
	}
	m->code_page = calloc(size / PAGE, 1);
	if (!m->code_page) {
		snprintf(err, errlen, "out of memory");
		goto unmap_ram;
	}
	m->size = size;
	return 0;

unmap_ram:
	munmap(m->ram, size);
close_fd:
	if (m->fd >= 0)
		close(m->fd);
	munmap(low, GUEST_WINDOW_SIZE - m->low_hole);
	m->fd = -1;
	return -1;
}

void gmem_destroy(struct gmem *m)
{
	if (m->fd < 0)
		return;
	free(m->code_page);
	munmap(m->ram, m->size);
	close(m->fd);
	munmap(shadow_of(m->low_hole), GUEST_WINDOW_SIZE - m->low_hole);
	m->fd = -1;
}

static void before_write(struct gmem *m, uint32_t phys, uint32_t len)
{
	for (uint32_t p = phys / PAGE; p <= (phys + len - 1) / PAGE; p++)
		if (m->code_page[p] && m->code_write)
			m->code_write(m->code_write_opaque, p);
}

uint32_t gmem_read(const struct gmem *m, uint32_t phys, unsigned size)
{
	const uint8_t *p = gmem_ptr(m, phys, size);
	uint32_t v = 0;

	if (!p)
		return size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
	/* Fixed sizes, so the copies are single loads, not calls (page-table
	 * walks read entries here all the time). */
	if (size == 4)
		memcpy(&v, p, 4);
	else if (size == 2)
		memcpy(&v, p, 2);
	else if (size == 1)
		v = *p;
	else
		memcpy(&v, p, size);
	return v;
}

void gmem_write(struct gmem *m, uint32_t phys, unsigned size, uint32_t val)
{
	uint8_t *p = gmem_ptr(m, phys, size);

	if (!p)
		return;
	before_write(m, phys, size);
	if (size == 4)
		memcpy(p, &val, 4);
	else if (size == 2)
		memcpy(p, &val, 2);
	else if (size == 1)
		*p = (uint8_t)val;
	else
		memcpy(p, &val, size);
}

void gmem_write_block(struct gmem *m, uint32_t phys, const void *src, uint32_t len)
{
	uint8_t *p = gmem_ptr(m, phys, len);

	if (!p || len == 0)
		return;
	before_write(m, phys, len);
	memcpy(p, src, len);
}

void gmem_protect_code(struct gmem *m, uint32_t page)
{
	if (m->code_page[page])
		return;
	m->code_page[page] = 1;
	if (m->protect)
		m->protect(m->protect_opaque, page, true);
}

void gmem_unprotect_code(struct gmem *m, uint32_t page)
{
	if (!m->code_page[page])
		return;
	m->code_page[page] = 0;
	if (m->protect)
		m->protect(m->protect_opaque, page, false);
}
