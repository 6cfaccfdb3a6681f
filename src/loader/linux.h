/*
 * The Linux/x86 32-bit boot protocol (Documentation/x86/boot.rst): a bzImage
 * with its setup header, boot_params ("the zero page") with the header
 * copied, an e820 memory map, the command line and the initrd; the kernel is
 * entered at its 32-bit entry point with ESI pointing at boot_params and
 * flat __BOOT_CS (0x10) / __BOOT_DS (0x18) segments from a GDT in guest
 * memory.
 */
#ifndef BT86_LINUX_H
#define BT86_LINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LINUX_BOOT_PARAMS 0x10000u
#define LINUX_CMDLINE 0x20000u
#define LINUX_GDT 0x1000u
#define LINUX_BOOT_CS 0x10u
#define LINUX_BOOT_DS 0x18u

struct gmem;

struct linux_boot {
	uint32_t entry;        /* EIP */
	uint32_t boot_params;  /* ESI */
	uint32_t gdt_base;
	uint16_t gdt_limit;
};

/* True when the file starts like a bzImage (setup header signature). */
bool linux_is_bzimage(const char *path);

/* Loads `kernel` with `cmdline` and `initrd` (either may be NULL).  Returns
 * 0, or -1 with one line in err naming the file and the problem. */
int linux_load(struct gmem *mem, const char *kernel, const char *cmdline, const char *initrd,
	       struct linux_boot *out, char *err, size_t errlen);

#endif
