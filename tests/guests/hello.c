/* The smallest guest: boots, checks the Multiboot hand-off, says hello. */
#include "rt/rt.h"

void test_main(u32 magic, u32 mbi)
{
	plan(2);
	is_u32(magic, 0x2BADB002, "multiboot magic in eax");
	ok((*(u32 *)mbi & 0x41) == 0x41, "multiboot info has memory sizes and a memory map");
}
