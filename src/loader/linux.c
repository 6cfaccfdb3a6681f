#include "linux.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mem/gmem.h"
#include "e820.h"
#include "image_file.h"

/* Offsets in the setup header / boot_params (boot.rst, zero-page.rst). */
#define HDR_SETUP_SECTS 0x1F1
#define HDR_HEADER 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_CODE32_START 0x214
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21C
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22C
#define HDR_CMDLINE_SIZE 0x238
#define BP_ALT_MEM_K 0x1E0
#define BP_E820_ENTRIES 0x1E8
#define BP_E820_TABLE 0x2D0
#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

bool linux_is_bzimage(const char *path)
{
	uint8_t hdr[0x210];
	FILE *f = fopen(path, "rb");
	bool yes = false;

	if (f) {
		yes = fread(hdr, 1, sizeof hdr, f) == sizeof hdr && memcmp(hdr + HDR_HEADER, "HdrS", 4) == 0;
		fclose(f);
	}
	return yes;
}

int linux_load(struct gmem *mem, const char *kernel, const char *cmdline, const char *initrd,
	       struct linux_boot *out, char *err, size_t errlen)
{
	size_t len, rd_len = 0;
	uint8_t *img = image_file_read(kernel, &len, err, errlen), *rd = NULL;
	int rc = -1;

	if (!img)
		return -1;
	if (len < 0x264 || memcmp(img + HDR_HEADER, "HdrS", 4) != 0) {
		snprintf(err, errlen, "%s: not a Linux bzImage (no setup header)", kernel);
		goto out;
	}
	uint16_t version = (uint16_t)(img[HDR_VERSION] | img[HDR_VERSION + 1] << 8);
	if (version < 0x0206 || !(img[HDR_LOADFLAGS] & LOADED_HIGH)) {
		snprintf(err, errlen, "%s: boot protocol %x.%02x is too old (bt86 needs 2.06, a bzImage)", kernel,
			 version >> 8, version & 0xFF);
		goto out;
	}
	unsigned setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	size_t pm_off = (size_t)(setup_sects + 1) * 512;
	if (pm_off >= len) {
		snprintf(err, errlen, "%s: truncated (the protected-mode kernel is missing)", kernel);
		goto out;
	}
	uint32_t code32 = get32(img + HDR_CODE32_START);
	if (!gmem_is_ram(mem, code32, (uint32_t)(len - pm_off))) {
		snprintf(err, errlen, "%s: the kernel (%zu bytes at %#x) does not fit in guest memory", kernel,
			 len - pm_off, code32);
		goto out;
	}
	memcpy(mem->ram + code32, img + pm_off, len - pm_off);

	/* boot_params: zeroed, then the setup header copied at its offsets. */
	uint8_t *bp = mem->ram + LINUX_BOOT_PARAMS;
	memset(bp, 0, 4096);
	size_t hdr_end = 0x202 + img[0x201];
	memcpy(bp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
	bp[HDR_TYPE_OF_LOADER] = 0xFF;
	bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	bp[HDR_HEAP_END_PTR] = 0x00;
	bp[HDR_HEAP_END_PTR + 1] = 0xFE; /* 0xFE00: the end of the (absent) real-mode heap */

	uint32_t cmax = version >= 0x0206 ? get32(img + HDR_CMDLINE_SIZE) : 255;
	const char *cmd = cmdline ? cmdline : "";
	if (strlen(cmd) > cmax) {
		snprintf(err, errlen, "%s: the command line is longer than the kernel's %u bytes", kernel, cmax);
		goto out;
	}
	strcpy((char *)mem->ram + LINUX_CMDLINE, cmd);
	put32(bp + HDR_CMD_LINE_PTR, LINUX_CMDLINE);

	struct e820_entry map[E820_MAX];
	unsigned n = e820_pc_map(mem->size, map);
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	memcpy(bp + BP_E820_TABLE, map, n * sizeof map[0]);
	put32(bp + BP_ALT_MEM_K, (mem->size - 0x100000) / 1024);

	if (initrd) {
		rd = image_file_read(initrd, &rd_len, err, errlen);
		if (!rd)
			goto out;
		uint32_t max = get32(img + HDR_INITRD_ADDR_MAX);
		uint32_t top = mem->size - E820_FIRMWARE_RESERVED;
		if (max && top > max + 1)
			top = max + 1;
		uint32_t at = (uint32_t)((top - rd_len) & ~0xFFFull);
		if (rd_len > top || at < code32 + (len - pm_off)) {
			snprintf(err, errlen, "%s: the initrd (%zu bytes) does not fit in guest memory", initrd, rd_len);
			goto out;
		}
		memcpy(mem->ram + at, rd, rd_len);
		put32(bp + HDR_RAMDISK_IMAGE, at);
		put32(bp + HDR_RAMDISK_SIZE, (uint32_t)rd_len);
	}

	/* A GDT with flat __BOOT_CS and __BOOT_DS, as the protocol requires. */
	uint64_t gdt[4] = {0, 0, 0x00CF9A000000FFFFull, 0x00CF92000000FFFFull};
	memcpy(mem->ram + LINUX_GDT, gdt, sizeof gdt);
	out->gdt_base = LINUX_GDT;
	out->gdt_limit = sizeof gdt - 1;
	out->entry = code32;
	out->boot_params = LINUX_BOOT_PARAMS;
	rc = 0;
out:
	free(img);
	free(rd);
	return rc;
}
