/* 16-bit code and real mode (SDM vol. 3 9.9, 20.1): from 32-bit protected
 * mode through a 16-bit code segment to real mode (CR0.PE cleared, a far
 * jump), 16-bit code there (arithmetic, 32-bit operands, push and pop,
 * near and far calls, loop, segment overrides, rep stosb, pushf, mul and
 * div, int n through the interrupt vector table and iret, a timer
 * interrupt pending at sti waiting out sti's and mov ss's shadows), and
 * back to
 * protected mode with a far jump to a 32-bit segment.  The real-mode code
 * is copied to 0x7000 (CS 0x0700) and stores its results beside itself. */
#include "rt/rt.h"

#define RM_BASE 0x7000u
#define CODE16 0x48 /* base RM_BASE, 64 KiB, 16-bit */
#define DATA16 0x50 /* base 0, 64 KiB, 16-bit */

extern char rm_start[], rm_end[], pm16[], r_add[], r_add32[], r_pop[], r_call[], r_loop[], r_int[], r_intfl[],
	r_buf[], r_es[], r_far[], r_flags[], r_mul[], r_div[], r_sp[], r_cs[];
extern void rm_enter(void);
u32 saved_esp;
u8 saved_idt[6];

/* 32-bit: into the 16-bit segment; back at pm32_back. */
__asm__(".text\n"
	"rm_enter: pushal\n cli\n movl %esp, saved_esp\n sidt saved_idt\n"
	" ljmp $0x48, $(pm16 - rm_start)\n"
	"pm32_back: movw $0x10, %ax\n movw %ax, %ds\n movw %ax, %es\n movw %ax, %ss\n movw %ax, %fs\n movw %ax, %gs\n"
	" movl saved_esp, %esp\n lidt saved_idt\n popal\n ret\n");

/* The code copied to RM_BASE: offsets from rm_start are its IPs and data
 * addresses (CS = DS = 0x0700 in real mode). */
__asm__(".text\n .code16\n"
	"rm_start:\n"
	"pm16: movw $0x50, %ax\n movw %ax, %ds\n movw %ax, %es\n movw %ax, %ss\n"
	" movl %cr0, %eax\n andl $~1, %eax\n movl %eax, %cr0\n"
	" ljmp $0x0700, $(real - rm_start)\n"
	"real: movw $0x0700, %ax\n movw %ax, %ds\n movw %ax, %es\n movw %ax, %ss\n movw $0x1000, %sp\n"
	" lidt ivt_desc - rm_start\n"
	" movw $0x1234, %ax\n addw $0x1111, %ax\n movw %ax, r_add - rm_start\n"
	" movl $0x12345678, %ebx\n addl $0x11111111, %ebx\n movl %ebx, r_add32 - rm_start\n"
	" pushw $0xBEEF\n popw %cx\n movw %cx, r_pop - rm_start\n"
	" call sub1\n movw %dx, r_call - rm_start\n"
	" movw $5, %cx\n xorw %ax, %ax\n"
	"1: addw $2, %ax\n loop 1b\n movw %ax, r_loop - rm_start\n"
	" int $0x50\n movw %si, r_int - rm_start\n"
	" movw $(r_buf - rm_start), %di\n movb $0x41, %al\n movw $4, %cx\n cld\n rep stosb\n"
	" movw $0x0780, %ax\n movw %ax, %es\n movw %es:0x10, %bx\n movw %bx, r_es - rm_start\n"
	" lcall $0x0700, $(farfn - rm_start)\n movw %bp, r_far - rm_start\n"
	" pushfw\n popw %ax\n movw %ax, r_flags - rm_start\n"
	" movw $300, %ax\n movw $7, %cx\n mulw %cx\n movw %ax, r_mul - rm_start\n"
	" movw $0, %dx\n movw $1000, %ax\n movw $7, %cx\n divw %cx\n movw %ax, r_div - rm_start\n movw %dx, r_div + 2 - rm_start\n"
	/* Each time with the timer's request pending in the 8259A (its IRR,
	 * read with OCW3) before IF is set: it must wait for the end of the
	 * instruction after sti, and after a load of SS for the next one. */
	"2: movb $0x0A, %al\n outb %al, $0x20\n inb $0x20, %al\n testb $1, %al\n jz 2b\n"
	" sti\n"
	" hlt\n"
	"rm_after_hlt: cli\n"
	"3: movb $0x0A, %al\n outb %al, $0x20\n inb $0x20, %al\n testb $1, %al\n jz 3b\n"
	" movw %ss, %ax\n sti\n movw %ax, %ss\n"
	"rm_after_ss: movw %sp, %bx\n nop\n cli\n"
	" movw %sp, r_sp - rm_start\n movw %cs, %ax\n movw %ax, r_cs - rm_start\n"
	" movl %cr0, %eax\n orl $1, %eax\n movl %eax, %cr0\n"
	" .byte 0x66, 0xEA\n .long pm32_back\n .word 0x08\n"
	"sub1: movw $0x77, %dx\n ret\n"
	"farfn: movw $0x99, %bp\n lret\n"
	"int50: pushfw\n popw %si\n movw %si, r_intfl - rm_start\n movw $0xCAFE, %si\n iret\n"
	"irq0: pushw %bp\n movw %sp, %bp\n pushw %ax\n pushw %si\n movw r_ticks - rm_start, %si\n"
	" cmpw $4, %si\n jae 4f\n addw %si, %si\n movw 2(%bp), %ax\n movw %ax, r_ips - rm_start(%si)\n"
	"4: incw r_ticks - rm_start\n movb $0x20, %al\n outb %al, $0x20\n popw %si\n popw %ax\n popw %bp\n iret\n"
	"ivt_desc: .word 0x3FF\n .long 0\n"
	"r_add: .word 0\n r_add32: .long 0\n r_pop: .word 0\n r_call: .word 0\n r_loop: .word 0\n"
	"r_int: .word 0\n r_intfl: .word 0\n r_buf: .long 0\n r_es: .word 0\n r_far: .word 0\n"
	"r_flags: .word 0\n r_mul: .word 0\n r_div: .long 0\n r_sp: .word 0\n r_cs: .word 0\n r_ticks: .word 0\n r_ips: .word 0, 0, 0, 0\n"
	"rm_end:\n .code32\n");
extern char int50[], irq0[], r_ticks[], r_ips[], rm_after_hlt[], rm_after_ss[];

static u32 rm16(const char *label)
{
	return *(volatile u16 *)(RM_BASE + (u32)(label - rm_start));
}

static u32 rm32(const char *label)
{
	return *(volatile u32 *)(RM_BASE + (u32)(label - rm_start));
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(19);

	blob_copy(RM_BASE, rm_start, rm_end);
	write32(0x50 * 4, (RM_BASE >> 4) << 16 | (u32)(int50 - rm_start)); /* IVT entry 0x50 */
	write32(0x20 * 4, (RM_BASE >> 4) << 16 | (u32)(irq0 - rm_start));  /* the PIT's, at vector 0x20 */
	pic_pit_100hz(0xFE);
	*(volatile u16 *)0x7810 = 0x5A5A;
	set_descriptor(CODE16 >> 3, RM_BASE, 0xFFFF, 0x9A, 0x0);
	set_descriptor(DATA16 >> 3, 0, 0xFFFF, 0x92, 0x0);
	gdt_load();

	__asm__ volatile("call rm_enter" : : : "memory", "cc");
	ok(1, "back in 32-bit protected mode");
	is_u32(rm16(r_add), 0x2345, "real mode: a 16-bit add");
	is_u32(rm32(r_add32), 0x23456789, "a 32-bit add (operand-size prefix)");
	is_u32(rm16(r_pop), 0xBEEF, "push imm16 and pop");
	is_u32(rm16(r_call), 0x77, "a near call and ret");
	is_u32(rm16(r_loop), 10, "loop counts CX");
	is_u32(rm16(r_int), 0xCAFE, "int 0x50 through the vector table and iret");
	ok(!(rm16(r_intfl) & 0x200) && !(rm16(r_intfl) & 0x100), "the handler runs with IF and TF clear");
	is_u32(rm32(r_buf), 0x41414141, "rep stosb at ES:DI");
	is_u32(rm16(r_es), 0x5A5A, "an ES override: segment 0x0780, offset 0x10");
	is_u32(rm16(r_far), 0x99, "a far call and lret");
	printf_serial("real-mode FLAGS %x\n", rm16(r_flags));
	ok(!(rm16(r_flags) & 0x200), "pushf: IF clear as cli left it");
	is_u32(rm16(r_mul), 2100, "mul");
	is_u32(rm32(r_div), 142u | (6u << 16), "div: quotient and remainder");
	is_u32(rm16(r_sp), 0x1000, "SP back where it started");
	is_u32(rm16(r_cs), 0x0700, "CS reads 0x0700");
	is_u32(rm16(r_ticks), 2, "two timer interrupts through the vector table");
	printf_serial("interrupted at %x and %x\n", rm16(r_ips), rm16(r_ips + 2));
	is_u32(rm16(r_ips), (u32)(rm_after_hlt - rm_start), "pending at sti; hlt: taken in hlt, after sti's shadow");
	/* A load of SS inside sti's shadow starts none of its own (the SDM
	 * guarantees only the first of such instructions; QEMU's choice). */
	is_u32(rm16(r_ips + 2), (u32)(rm_after_ss - rm_start), "pending at sti; mov ss: taken after the mov to SS");
}
