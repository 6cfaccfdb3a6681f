/*
 * The PC memory map both boot protocols report (Multiboot's mmap, Linux's
 * e820 table): what QEMU's firmware (SeaBIOS) reports for the same RAM size,
 * which keeps the top 128 KiB of RAM and the BIOS ROM for itself.
 */
#ifndef BT86_E820_H
#define BT86_E820_H

#include <stdint.h>

#define E820_MAX 8
#define E820_RAM 1
#define E820_RESERVED 2
/* RAM at the top that the firmware keeps. */
#define E820_FIRMWARE_RESERVED 0x20000u

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));

/* Fills map for `ram` bytes of RAM; returns the number of entries. */
unsigned e820_pc_map(uint32_t ram, struct e820_entry *map);

#endif
