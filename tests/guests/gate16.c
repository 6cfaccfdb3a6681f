/* 16-bit protected-mode code with 16-bit gates (SDM vol. 3 6.12): from a
 * 16-bit code segment, int n through a 16-bit interrupt gate and a 16-bit
 * trap gate pushes FLAGS, CS and IP as words, clears IF for the interrupt
 * gate only, and a 16-bit iret returns; the code then goes back to 32-bit
 * code.  The 16-bit code runs from a copy at 0x7000 (its segment's base). */
#include "rt/rt.h"

#define G_BASE 0x7000u
#define CODE16 0x48 /* base G_BASE, 64 KiB, 16-bit code */
#define DATA16 0x58 /* base G_BASE, 64 KiB, 16-bit data */

extern char g_start[], g_end[], g_code[], h61[], h62[], r_ip[], r_cs[], r_fl61[], r_fl62[], r_ax[], r_after[];
extern void g16_enter(void);
u32 g_saved_esp;

__asm__(".text\n"
	"g16_enter: pushal\n movl %esp, g_saved_esp\n ljmp $0x48, $(g_code - g_start)\n"
	"g16_back: movw $0x10, %ax\n movw %ax, %ds\n movw %ax, %es\n movl g_saved_esp, %esp\n popal\n ret\n");

__asm__(".text\n .code16\n"
	"g_start:\n"
	"g_code: movw $0x58, %ax\n movw %ax, %ds\n"
	" cli\n int $0x61\n movw %ax, r_ax - g_start\n"
	" sti\n int $0x62\n cli\n"
	" movw $0x1234, r_after - g_start\n"
	" .byte 0x66, 0xEA\n .long g16_back\n .word 0x08\n"
	"h61: movw %ss:(%esp), %ax\n movw %ax, r_ip - g_start\n movw %ss:2(%esp), %ax\n movw %ax, r_cs - g_start\n"
	" pushfw\n popw %ax\n movw %ax, r_fl61 - g_start\n movw $0x6161, %ax\n iret\n"
	"h62: pushw %ax\n pushfw\n popw %ax\n movw %ax, r_fl62 - g_start\n popw %ax\n iret\n"
	"r_ip: .word 0\n r_cs: .word 0\n r_fl61: .word 0\n r_fl62: .word 0\n r_ax: .word 0\n r_after: .word 0\n"
	"g_end:\n .code32\n");

static u32 g16(const char *label)
{
	return *(volatile u16 *)(G_BASE + (u32)(label - g_start));
}

static u64 gate16(u32 off, unsigned type)
{
	return (u64)(off & 0xFFFF) | ((u64)CODE16 << 16) | ((u64)(0x80 | type) << 40);
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(7);
	blob_copy(G_BASE, g_start, g_end);
	set_descriptor(CODE16 >> 3, G_BASE, 0xFFFF, 0x9A, 0x0);
	set_descriptor(DATA16 >> 3, G_BASE, 0xFFFF, 0x92, 0x0);
	gdt_load();
	u64 *idt = idt_entries();
	idt[0x61] = gate16((u32)(h61 - g_start), 0x6); /* 16-bit interrupt gate */
	idt[0x62] = gate16((u32)(h62 - g_start), 0x7); /* 16-bit trap gate */

	__asm__ volatile("call g16_enter" : : : "memory", "cc");
	is_u32(g16(r_after), 0x1234, "16-bit code ran and came back to 32-bit code");
	is_u32(g16(r_ax), 0x6161, "int 0x61 through a 16-bit interrupt gate and a 16-bit iret");
	printf_serial("16-bit frame: IP %x CS %x\n", g16(r_ip), g16(r_cs));
	is_u32(g16(r_cs), CODE16, "the frame's CS word");
	ok(g16(r_ip) > (u32)(g_code - g_start) && g16(r_ip) < (u32)(h61 - g_start), "and IP word, after the int");
	ok(!(g16(r_fl61) & 0x200), "the interrupt gate cleared IF");
	ok(g16(r_fl62) & 0x200, "the trap gate left it set");
	ok(!(read_eflags() & 0x200), "IF clear again after the round trip");
}
