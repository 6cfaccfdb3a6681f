/* The smallest guest: boots, checks the Multiboot hand-off, and prints the
 * machine state at entry, which must be the same as under QEMU. */
#include "rt/rt.h"

extern u32 boot_state[7]; /* cs ds ss es eax cr0 eflags, saved by _start */
extern u8 boot_pic_imr[2];

void test_main(u32 magic, u32 mbi)
{
	u32 *info = (u32 *)mbi;
	plan(4);
	is_u32(magic, 0x2BADB002, "multiboot magic in eax");
	ok((info[0] & 0x41) == 0x41, "multiboot info has memory sizes and a memory map");
	is_u32(info[2], 127 * 1024 - 128, "mem_upper for 128 MiB, less the firmware's 128 KiB");
	printf_serial("# entry: cs=%x ds=%x ss=%x es=%x cr0=%08x eflags=%08x\n", boot_state[0], boot_state[1],
		      boot_state[2], boot_state[3], boot_state[5], boot_state[6]);
	u32 *e = (u32 *)info[12], *end = (u32 *)(info[12] + info[11]);
	for (; e < end; e = (u32 *)((u8 *)e + e[0] + 4))
		printf_serial("# mmap: base %08x%08x length %08x%08x type %u\n", e[2], e[1], e[4], e[3], e[5]);
	printf_serial("# mem_lower %u KiB, mem_upper %u KiB\n", info[1], info[2]);
	/* What the firmware left in the interrupt controller (rt_start saved
	 * it before masking every line). */
	printf_serial("# pic at entry: imr %02x %02x\n", boot_pic_imr[0], boot_pic_imr[1]);
	volatile u32 *apic = (volatile u32 *)0xFEE00000;
	u32 lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0x1B));
	printf_serial("# local apic: base msr %08x, id %08x, version %08x, svr %08x, tpr %x\n", lo,
		      apic[0x20 / 4], apic[0x30 / 4], apic[0xF0 / 4], apic[0x80 / 4]);
	printf_serial("# local apic: lint0 %08x, lint1 %08x, timer %08x, error %08x\n", apic[0x350 / 4],
		      apic[0x360 / 4], apic[0x320 / 4], apic[0x370 / 4]);
	const char *cmd = (const char *)info[4];
	int n = 0;
	while (cmd[n])
		n++;
	ok(n > 0 && cmd[n - 1] != 0, "a command line is passed");
}
