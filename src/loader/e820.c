#include "e820.h"

#include "bda.h"

unsigned e820_pc_map(uint32_t ram, struct e820_entry *map)
{
	const struct e820_entry pc[] = {
		{0, BDA_EBDA_ADDR, E820_RAM},
		{BDA_EBDA_ADDR, 0x400, E820_RESERVED},
		{0xF0000, 0x10000, E820_RESERVED},
		{0x100000, ram - 0x100000 - E820_FIRMWARE_RESERVED, E820_RAM},
		{ram - E820_FIRMWARE_RESERVED, E820_FIRMWARE_RESERVED, E820_RESERVED},
		{0xFFFC0000u, 0x40000, E820_RESERVED},
	};
	for (unsigned i = 0; i < sizeof pc / sizeof pc[0]; i++)
		map[i] = pc[i];
	return sizeof pc / sizeof pc[0];
}
