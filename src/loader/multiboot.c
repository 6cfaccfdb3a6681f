#include "multiboot.h"

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mem/gmem.h"
#include "e820.h"
#include "image_file.h"

#define MB_FLAG_PAGE_ALIGN 0x1u
#define MB_FLAG_MEMINFO 0x2u
#define MB_FLAG_AOUT_KLUDGE 0x10000u

#define MBI_MEM 0x1u
#define MBI_CMDLINE 0x4u
#define MBI_MODS 0x8u
#define MBI_MMAP 0x40u
#define MBI_LOADER_NAME 0x200u


struct mb_header {
	uint32_t magic, flags, checksum;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

static const struct mb_header *find_header(const uint8_t *img, size_t len, size_t *where)
{
	size_t scan = len < 8192 ? len : 8192;
	for (size_t off = 0; off + 12 <= scan; off += 4) {
		struct mb_header h;
		size_t take = len - off < sizeof h ? len - off : sizeof h;
		memset(&h, 0, sizeof h);
		memcpy(&h, img + off, take);
		if (h.magic == MULTIBOOT_HEADER_MAGIC && h.magic + h.flags + h.checksum == 0) {
			*where = off;
			return (const struct mb_header *)(img + off);
		}
	}
	return NULL;
}

static int place(struct gmem *mem, uint32_t addr, const void *src, uint32_t filesz, uint32_t memsz,
		 const char *path, char *err, size_t errlen)
{
	if (memsz < filesz || !gmem_is_ram(mem, addr, memsz)) {
		snprintf(err, errlen, "%s: segment at %#x (%u bytes) does not fit in %u MiB of guest memory",
			 path, addr, memsz, mem->size >> 20);
		return -1;
	}
	memcpy(mem->ram + addr, src, filesz);
	memset(mem->ram + addr + filesz, 0, memsz - filesz);
	return 0;
}

static int load_elf(struct gmem *mem, const char *path, uint8_t *img, size_t len, uint32_t *entry,
		    uint32_t *end, char *err, size_t errlen)
{
	Elf *elf = elf_memory((char *)img, len);
	GElf_Ehdr eh;
	size_t nph;
	int rc = -1;

	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
		snprintf(err, errlen, "%s: not a valid ELF file", path);
		goto out;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS32 || eh.e_machine != EM_386) {
		snprintf(err, errlen, "%s: not a 32-bit x86 ELF kernel", path);
		goto out;
	}
	if (elf_getphdrnum(elf, &nph) != 0 || nph == 0) {
		snprintf(err, errlen, "%s: no program headers", path);
		goto out;
	}
	*entry = (uint32_t)eh.e_entry;
	*end = 0;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset) {
			snprintf(err, errlen, "%s: truncated (segment %zu runs past the end of the file)", path, i);
			goto out;
		}
		if (place(mem, (uint32_t)ph.p_paddr, img + ph.p_offset, (uint32_t)ph.p_filesz,
			  (uint32_t)ph.p_memsz, path, err, errlen))
			goto out;
		if (eh.e_entry >= ph.p_vaddr && eh.e_entry < ph.p_vaddr + ph.p_memsz)
			*entry = (uint32_t)(eh.e_entry - ph.p_vaddr + ph.p_paddr);
		if (ph.p_paddr + ph.p_memsz > *end)
			*end = (uint32_t)(ph.p_paddr + ph.p_memsz);
	}
	if (*end == 0) {
		snprintf(err, errlen, "%s: no loadable segments", path);
		goto out;
	}
	rc = 0;
out:
	if (elf)
		elf_end(elf);
	return rc;
}

static int load_aout(struct gmem *mem, const char *path, const uint8_t *img, size_t len,
		     const struct mb_header *h, size_t hoff, uint32_t *entry, uint32_t *end, char *err,
		     size_t errlen)
{
	if (h->header_addr < h->load_addr || hoff < h->header_addr - h->load_addr) {
		snprintf(err, errlen, "%s: inconsistent Multiboot load addresses", path);
		return -1;
	}
	size_t file_off = hoff - (h->header_addr - h->load_addr);
	uint32_t load_end = h->load_end_addr ? h->load_end_addr : h->load_addr + (uint32_t)(len - file_off);
	uint32_t bss_end = h->bss_end_addr > load_end ? h->bss_end_addr : load_end;
	if (load_end < h->load_addr || file_off + (load_end - h->load_addr) > len) {
		snprintf(err, errlen, "%s: truncated (load range runs past the end of the file)", path);
		return -1;
	}
	if (place(mem, h->load_addr, img + file_off, load_end - h->load_addr, bss_end - h->load_addr,
		  path, err, errlen))
		return -1;
	*entry = h->entry_addr;
	*end = bss_end;
	return 0;
}

/* Appends bytes to the info area, returning their guest address. */
struct info_area {
	struct gmem *mem;
	uint32_t next, limit;
	bool full;
};

static uint32_t info_put(struct info_area *a, const void *p, uint32_t n)
{
	uint32_t at = (a->next + 3) & ~3u;
	if (at + n > a->limit || !gmem_is_ram(a->mem, at, n)) {
		a->full = true;
		return 0;
	}
	memcpy(a->mem->ram + at, p, n);
	a->next = at + n;
	return at;
}

int multiboot_load(struct gmem *mem, const char *kernel, const char *cmdline, const char *modules,
		   struct boot_state *out, char *err, size_t errlen)
{
	size_t len, hoff;
	uint8_t *img = image_file_read(kernel, &len, err, errlen);
	uint32_t entry = 0, end = 0;
	int rc = -1;

	if (!img)
		return -1;
	const struct mb_header *h = find_header(img, len, &hoff);
	if (!h) {
		snprintf(err, errlen, "%s: not a Multiboot kernel (no valid header in the first 8 KiB)", kernel);
		goto out;
	}
	if (hoff + sizeof *h > len && (h->flags & MB_FLAG_AOUT_KLUDGE)) {
		snprintf(err, errlen, "%s: truncated Multiboot header", kernel);
		goto out;
	}
	elf_version(EV_CURRENT);
	if (len >= 4 && memcmp(img, ELFMAG, SELFMAG) == 0) {
		if (load_elf(mem, kernel, img, len, &entry, &end, err, errlen))
			goto out;
	} else if (h->flags & MB_FLAG_AOUT_KLUDGE) {
		if (load_aout(mem, kernel, img, len, h, hoff, &entry, &end, err, errlen))
			goto out;
	} else {
		snprintf(err, errlen, "%s: neither ELF nor a Multiboot a.out-kludge image", kernel);
		goto out;
	}

	/* Modules, page-aligned, after the kernel. */
	uint32_t mods[64][4];
	unsigned n_mods = 0;
	uint32_t next = (end + 0xFFF) & ~0xFFFu;
	char *list = modules ? strdup(modules) : NULL;
	char *save = NULL;
	for (char *item = list ? strtok_r(list, ",", &save) : NULL; item; item = strtok_r(NULL, ",", &save)) {
		char path[4096];
		size_t mlen;
		if (n_mods == 64) {
			snprintf(err, errlen, "too many modules (at most 64)");
			free(list);
			goto out;
		}
		sscanf(item, "%4095s", path);
		uint8_t *m = image_file_read(path, &mlen, err, errlen);
		if (!m) {
			free(list);
			goto out;
		}
		if (!gmem_is_ram(mem, next, (uint32_t)mlen) || mlen > 0xFFFFFFFFu) {
			snprintf(err, errlen, "%s: module (%zu bytes) does not fit in guest memory", path, mlen);
			free(m);
			free(list);
			goto out;
		}
		memcpy(mem->ram + next, m, mlen);
		free(m);
		mods[n_mods][0] = next;
		mods[n_mods][1] = next + (uint32_t)mlen;
		mods[n_mods][2] = 0; /* string address, filled below */
		mods[n_mods][3] = 0;
		n_mods++;
		next = (next + (uint32_t)mlen + 0xFFF) & ~0xFFFu;
	}

	/* The information structure and what it points to, after the modules. */
	struct info_area a = {.mem = mem, .next = next, .limit = next + 0x10000};
	uint32_t mbi[22] = {0};
	uint32_t mbi_at = info_put(&a, mbi, sizeof mbi);
	char *full_cmdline = malloc(strlen(kernel) + (cmdline ? strlen(cmdline) : 0) + 2);
	sprintf(full_cmdline, "%s %s", kernel, cmdline ? cmdline : "");
	uint32_t cmd_at = info_put(&a, full_cmdline, (uint32_t)strlen(full_cmdline) + 1);
	free(full_cmdline);
	save = NULL;
	if (list) {
		strcpy(list, modules);
		char *item = strtok_r(list, ",", &save);
		for (unsigned i = 0; i < n_mods && item; i++, item = strtok_r(NULL, ",", &save))
			mods[i][2] = info_put(&a, item, (uint32_t)strlen(item) + 1);
	}
	free(list);
	uint32_t mods_at = n_mods ? info_put(&a, mods, n_mods * 16) : 0;
	/* The PC memory map, each entry preceded by its size (20). */
	struct e820_entry e820[E820_MAX];
	unsigned n_e820 = e820_pc_map(mem->size, e820);
	struct {
		uint32_t size;
		struct e820_entry e;
	} __attribute__((packed)) mmap[E820_MAX];
	for (unsigned i = 0; i < n_e820; i++) {
		mmap[i].size = 20;
		mmap[i].e = e820[i];
	}
	uint32_t mmap_at = info_put(&a, mmap, n_e820 * sizeof mmap[0]);
	uint32_t name_at = info_put(&a, "bt86", 5);
	if (a.full) {
		snprintf(err, errlen, "%s: no room in guest memory for the Multiboot information", kernel);
		goto out;
	}
	mbi[0] = MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME | (n_mods ? MBI_MODS : 0);
	mbi[1] = 639;
	mbi[2] = (mem->size - 0x100000 - E820_FIRMWARE_RESERVED) / 1024;
	mbi[4] = cmd_at;
	mbi[5] = n_mods;
	mbi[6] = mods_at;
	mbi[11] = n_e820 * sizeof mmap[0];
	mbi[12] = mmap_at;
	mbi[16] = name_at;
	memcpy(mem->ram + mbi_at, mbi, sizeof mbi);

	out->entry = entry;
	out->eax = MULTIBOOT_BOOTLOADER_MAGIC;
	out->ebx = mbi_at;
	out->kernel_end = a.next;
	rc = 0;
out:
	free(img);
	return rc;
}
