/*
 * Multiboot v1 loader: an ELF32 i386 kernel (or an a.out-kludge image)
 * with its Multiboot header, modules, and the Multiboot information structure
 * (memory sizes, memory map, command line, modules, boot loader name), laid
 * out in guest RAM as QEMU's -kernel does, so the same image sees the same
 * machine under both.
 */
#ifndef BT86_MULTIBOOT_H
#define BT86_MULTIBOOT_H

#include <stddef.h>
#include <stdint.h>

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002u
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u

struct gmem;

struct boot_state {
	uint32_t entry;   /* EIP */
	uint32_t eax, ebx;
	uint32_t kernel_end; /* first byte past the kernel and modules */
};

/* Loads `kernel` with `cmdline` (may be NULL) and the comma-separated
 * module list `modules` (may be NULL; each item is "path [args]").
 * Returns 0, or -1 with one line in err naming the file and the problem. */
int multiboot_load(struct gmem *mem, const char *kernel, const char *cmdline, const char *modules,
		   struct boot_state *out, char *err, size_t errlen);

#endif
