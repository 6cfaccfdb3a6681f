/* Virtual-8086 mode (SDM vol. 3 ch. 20), paging off: iret at ring 0 with
 * VM set enters it (the segments from the frame, 16-bit, base sixteen
 * times the selector); 16-bit code runs at CPL 3; with IOPL 0 cli, int n,
 * out to a port the I/O bitmap does not grant and hlt take #GP(0) to the
 * ring-0 monitor, whose frame holds EIP, CS, EFLAGS with VM, SS:SP and ES,
 * DS, FS, GS, with DS to GS nulled; the monitor skips them and irets back.
 * With IOPL 3 cli, sti and pushf run there and int n goes through the IDT
 * to a DPL-3 gate. */
#include "rt/rt.h"

#define VM_BASE 0x7000u /* segment 0x0700 */

struct vm86_frame {
	u32 edi, esi, ebp, esp_dummy, ebx, edx, ecx, eax;
	u32 error, eip, cs, eflags, esp, ss, es, ds, fs, gs;
};

static u32 tss[26];
static u8 kstack[8192] __attribute__((aligned(16)));
u32 saved_esp, vm_ip, vm_eflags, vm86_done, gp_ds_seen;
static u32 gp_count, gp_ops[8], int52_seen;
static struct vm86_frame first_gp;

void vm86_enter(void);
void gp_vm86(void);
void int52_vm86(void);
void vm86_gp(struct vm86_frame *f);
void vm86_int52(struct vm86_frame *f);
__asm__(".text\n"
	"vm86_enter: pushal\n movl %esp, saved_esp\n"
	" pushl $0x0700\n pushl $0x0700\n pushl $0x0700\n pushl $0x0700\n" /* GS FS DS ES */
	" pushl $0x0700\n pushl $0x1000\n pushl vm_eflags\n pushl $0x0700\n pushl vm_ip\n iret\n"
	"vm86_exit: movw $0x10, %ax\n movw %ax, %fs\n movw %ax, %gs\n movl saved_esp, %esp\n popal\n ret\n"
	/* #GP from virtual-8086 mode: DS and ES are null here */
	"gp_vm86: pushal\n movw %ds, %cx\n movl %ecx, %ss:gp_ds_seen\n"
	" movw $0x10, %ax\n movw %ax, %ds\n movw %ax, %es\n pushl %esp\n call vm86_gp\n addl $4, %esp\n"
	" cmpl $0, vm86_done\n jne vm86_exit\n popal\n addl $4, %esp\n iret\n"
	"int52_vm86: pushl $0\n pushal\n movw $0x10, %ax\n movw %ax, %ds\n movw %ax, %es\n"
	" pushl %esp\n call vm86_int52\n addl $4, %esp\n popal\n addl $4, %esp\n iret\n");

/* The programs, copied to VM_BASE (CS = DS = SS = 0x0700). */
extern char vm_start[], vm_end[], vm_cli[], prog_iopl0[], prog_iopl3[], r_add[], r_pop[], r_after[], r_fl[], r_int52[];
__asm__(".text\n .code16\n"
	"vm_start:\n"
	"prog_iopl0: movw $0x1234, %ax\n addw $0x1111, %ax\n movw %ax, r_add - vm_start\n"
	" pushw %ax\n popw %bx\n movw %bx, r_pop - vm_start\n"
	"vm_cli: cli\n int $0x51\n outb %al, $0x80\n movw $0xAA, r_after - vm_start\n hlt\n"
	"prog_iopl3: cli\n sti\n pushfw\n popw %ax\n movw %ax, r_fl - vm_start\n"
	" int $0x52\n movw %si, r_int52 - vm_start\n hlt\n"
	"r_add: .word 0\n r_pop: .word 0\n r_after: .word 0\n r_fl: .word 0\n r_int52: .word 0\n"
	"vm_end:\n .code32\n");

void vm86_gp(struct vm86_frame *f)
{
	const u8 *op = (const u8 *)((f->cs << 4) + f->eip);
	if (gp_count == 0)
		first_gp = *f;
	if (gp_count < 8)
		gp_ops[gp_count] = op[0];
	gp_count++;
	switch (op[0]) {
	case 0xFA: /* cli */
		f->eip += 1;
		break;
	case 0xCD: /* int n */
	case 0xE6: /* out imm8, al */
		f->eip += 2;
		break;
	default: /* hlt: the program's end */
		vm86_done = 1;
		break;
	}
}

void vm86_int52(struct vm86_frame *f)
{
	int52_seen = f->eflags;
	f->esi = 0x5252;
}

static u32 vm16(const char *label)
{
	return *(volatile u16 *)(VM_BASE + (u32)(label - vm_start));
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(16);
	blob_copy(VM_BASE, vm_start, vm_end);
	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	idt_set(13, gp_vm86, 0);
	idt_set(0x52, int52_vm86, 3);

	vm_ip = (u32)(prog_iopl0 - vm_start);
	vm_eflags = 0x20002; /* VM, IOPL 0, IF clear */
	__asm__ volatile("call vm86_enter" : : : "memory", "cc");
	is_u32(vm16(r_add), 0x2345, "virtual-8086 mode runs 16-bit code");
	is_u32(vm16(r_pop), 0x2345, "push and pop on its 16-bit stack");
	is_u32(gp_count, 4, "cli, int n, out and hlt each took #GP with IOPL 0");
	ok(gp_ops[0] == 0xFA && gp_ops[1] == 0xCD && gp_ops[2] == 0xE6 && gp_ops[3] == 0xF4, "in that order");
	is_u32(vm16(r_after), 0xAA, "and the code went on after each");
	is_u32(first_gp.error, 0, "#GP(0)");
	is_u32(first_gp.cs, 0x0700, "the frame's CS");
	is_u32(first_gp.eip, (u32)(vm_cli - vm_start), "and IP, at the cli");
	ok((first_gp.eflags & 0x20000) && !(first_gp.eflags & 0x3000), "EFLAGS with VM, IOPL 0");
	ok(first_gp.ss == 0x0700 && first_gp.esp == 0x1000, "SS:SP of virtual-8086 mode");
	ok(first_gp.es == 0x0700 && first_gp.ds == 0x0700 && first_gp.fs == 0x0700 && first_gp.gs == 0x0700,
	   "ES, DS, FS, GS pushed");
	is_u32(gp_ds_seen & 0xFFFF, 0, "DS null in the handler");

	gp_count = 0;
	vm86_done = 0;
	vm_ip = (u32)(prog_iopl3 - vm_start);
	vm_eflags = 0x23002; /* VM, IOPL 3 */
	__asm__ volatile("call vm86_enter" : : : "memory", "cc");
	is_u32(gp_count, 1, "with IOPL 3 only hlt faults");
	ok((vm16(r_fl) & 0x3200) == 0x3200, "sti set IF; pushf shows it and IOPL 3");
	is_u32(vm16(r_int52), 0x5252, "int 0x52 through a DPL-3 IDT gate to ring 0 and back");
	ok(int52_seen & 0x20000, "whose frame holds VM");
}
