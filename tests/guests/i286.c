/* The 80286's system descriptors in protected mode (SDM vol. 3 7.6, 5.8):
 * a far call to a 16-bit TSS (its task's IP, FLAGS, registers and
 * ES/CS/SS/DS from the TSS's words, NT and the back link, the 16-bit busy
 * type, iret saving the task into its TSS and returning to the 32-bit
 * caller, a second call resuming it); #GP through an IDT task gate to a
 * 16-bit TSS (the error code pushed as a word); a far call through a
 * 16-bit call gate at the same level (CS and IP pushed as words, lretw
 * back) and from ring 3 to ring 0 with two word parameters (the ring-0
 * stack from the 32-bit TSS, IP, CS, the parameters, SP and SS as words,
 * lretw $4 back to ring 3).  The upper halves of the general registers
 * after a switch to a 16-bit TSS are undefined (SDM) and not looked at.
 * The code that runs with 16-bit IPs is a copy at 0x7000 (flat segments,
 * offsets below 64 KiB), its stacks below it; the 16-bit tasks' stack
 * segment is 16-bit, as a 286 task's is. */
#include "rt/rt.h"

#define G_BASE 0x7000u
#define TSS_A 0x48       /* 32-bit, the test's task */
#define TSS_G 0x50       /* 16-bit, task G */
#define TSS_H 0x58       /* 16-bit, #GP's handler task H */
#define GATE_SAME 0x60   /* 16-bit call gate, DPL 0, to c_same */
#define GATE_UP 0x68     /* 16-bit call gate, DPL 3, to c_up, 2 word parameters */
#define STACK16 0x70     /* 16-bit data, base 0, 64 KiB: the 16-bit tasks' SS */
#define G_SP 0x6F00u     /* G's stack */
#define H_SP 0x6E00u     /* H's stack */
#define U_SP 0x6C00u     /* ring 3's stack */

/* The 16-bit TSS by word. */
#define W_LINK 0
#define W_IP 7
#define W_FLAGS 8
#define W_AX 9
#define W_BX 12
#define W_SP 13
#define W_DI 16
#define W_ES 17
#define W_CS 18
#define W_SS 19
#define W_DS 20

u32 tss_a[26], tss_main[26];
u16 tss_g[22], tss_h[22];
static u8 kstack[8192] __attribute__((aligned(16)));

/* What the code below saw. */
u16 g_ax, g_bx, g_di, g_sp, g_flags, g_tr, g_ds, g_ss, g_es;
u32 g_busy;
u16 h_err, h_sp0, h_sp1;
u16 cs_ip, cs_cs;
u32 cs_esp, cs_esp0;
u16 up_ip, up_cs, up_p0, up_p1, up_sp, up_ss, up_cs_now;
u32 up_esp, u_before, u_after;

extern char g_start[], g_end[], g_task[], g_after[], h_task[], c_same[], c_call_same[], c_ret_here[], c_up[],
	u_main[], u_ret[];
void user_after(void);

__asm__(".text\n"
	"g_start:\n"
	/* G: records what its 16-bit TSS gave it, changes three registers,
	 * returns by iret (NT); called again, it resumes at g_after. */
	"g_task:\n"
	" movw %ax, g_ax\n movw %bx, g_bx\n movw %di, g_di\n movw %sp, g_sp\n"
	" pushfw\n popw g_flags\n str g_tr\n movw %ds, g_ds\n movw %ss, g_ss\n movw %es, g_es\n"
	" movl gdt+0x54, %eax\n movl %eax, g_busy\n"
	" movw $0x1111, %ax\n movw $0x2222, %bx\n movw $0x7777, %di\n"
	" iret\n"
	"g_after: jmp g_task\n"
	/* H: #GP's task; the error code is a word on its stack. */
	"h_task: movw %sp, h_sp0\n popw h_err\n movw %sp, h_sp1\n"
	" movl $gp_resume, tss_a+32\n iret\n jmp h_task\n"
	/* Through the same-level gate. */
	"c_same: movw (%esp), %ax\n movw %ax, cs_ip\n movw 2(%esp), %ax\n movw %ax, cs_cs\n movl %esp, cs_esp\n lretw\n"
	"c_call_same: movl %esp, cs_esp0\n lcall $0x60, $0\n"
	"c_ret_here: ret\n"
	/* Through the DPL-3 gate, at ring 0. */
	"c_up: movw (%esp), %ax\n movw %ax, up_ip\n movw 2(%esp), %ax\n movw %ax, up_cs\n"
	" movw 4(%esp), %ax\n movw %ax, up_p0\n movw 6(%esp), %ax\n movw %ax, up_p1\n"
	" movw 8(%esp), %ax\n movw %ax, up_sp\n movw 10(%esp), %ax\n movw %ax, up_ss\n"
	" movw %cs, up_cs_now\n movl %esp, up_esp\n lretw $4\n"
	/* Ring 3. */
	"u_main: movl %esp, u_before\n pushw $0x2222\n pushw $0x1111\n lcall $0x6B, $0\n"
	"u_ret: movl %esp, u_after\n movl $user_after, %eax\n jmp *%eax\n"
	"g_end:\n");

static u32 at_g(const char *label)
{
	return G_BASE + (u32)(label - g_start);
}

static u32 gdt_type(u32 sel)
{
	return (u32)(gdt[sel >> 3] >> 40) & 0xF;
}

static u64 task_gate(u32 tss_sel)
{
	return ((u64)0x85 << 40) | ((u64)tss_sel << 16);
}

static u64 gate16(u32 off, unsigned dpl, unsigned params)
{
	return (u64)(off & 0xFFFF) | ((u64)0x08 << 16) | ((u64)(0x84 | (dpl << 5)) << 40) | ((u64)params << 32);
}

static void tss16_init(u16 *t, const char *entry, u16 sp, u16 seed)
{
	for (int i = 0; i < 22; i++)
		t[i] = 0;
	t[W_IP] = (u16)at_g(entry);
	t[W_FLAGS] = 0x2;
	for (int i = 0; i < 8; i++)
		t[W_AX + i] = (u16)(seed + i);
	t[W_SP] = sp;
	t[W_ES] = t[W_DS] = 0x10;
	t[W_SS] = STACK16;
	t[W_CS] = 0x08;
}

static void sys(struct trap_frame *f)
{
	if (user_report(f))
		return;
	if (f->eax == 3)
		done();
}

void user_after(void)
{
	u32 cs;
	__asm__ volatile("movl %%cs, %0" : "=r"(cs));
	UIS(up_cs_now & 3, 0, "a call through a DPL-3 16-bit gate runs at ring 0");
	UIS(up_ip, at_g(u_ret), "IP pushed as a word");
	UIS(up_cs, USER_CS, "and CS");
	UIS(up_p0, 0x1111, "the first word parameter copied");
	UIS(up_p1, 0x2222, "and the second");
	UIS(up_sp, (u_before - 4) & 0xFFFF, "the outer SP as a word");
	UIS(up_ss, USER_DS, "and SS");
	UIS(up_esp + 12, (u32)kstack + sizeof kstack, "six words on the ring-0 stack from the TSS");
	UIS(u_after, u_before, "lretw $4 comes back with both stacks' parameters popped");
	UIS(cs & 3, 3, "at ring 3");
	__asm__ volatile("int $0x80" : : "a"(3));
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(38);
	blob_copy(G_BASE, g_start, g_end);
	user_mode_setup(tss_main, sizeof tss_main, (u32)kstack + sizeof kstack);
	tss16_init(tss_g, g_task, G_SP, 0xA001);
	tss16_init(tss_h, h_task, H_SP, 0xB001);
	set_descriptor(TSS_A >> 3, (u32)tss_a, 103, 0x89, 0);
	set_descriptor(TSS_G >> 3, (u32)tss_g, 43, 0x81, 0);
	set_descriptor(TSS_H >> 3, (u32)tss_h, 43, 0x81, 0);
	gdt[GATE_SAME >> 3] = gate16(at_g(c_same), 0, 0);
	gdt[GATE_UP >> 3] = gate16(at_g(c_up), 3, 2);
	set_descriptor(STACK16 >> 3, 0, 0xFFFF, 0x92, 0);
	tss_a[1] = (u32)kstack + sizeof kstack; /* A is the task ring 3 runs in: its ring-0 stack */
	tss_a[2] = 0x10;
	tss_a[25] = 104u << 16;
	gdt_load();
	__asm__ volatile("ltr %w0" : : "r"(TSS_A));

	/* A call to a 16-bit TSS, and iret back. */
	__asm__ volatile("lcall $0x50, $0" : : : "memory");
	is_u32(g_ax, 0xA001, "G starts with its 16-bit TSS's AX");
	is_u32(g_bx, 0xA004, "and BX");
	is_u32(g_di, 0xA008, "and DI");
	is_u32(g_sp, G_SP, "and SP");
	is_u32(g_flags, 0x4002, "and its FLAGS, with NT");
	is_u32(g_tr, TSS_G, "TR names G's TSS");
	is_u32(g_ds, 0x10, "DS from the TSS's word at 0x28");
	is_u32(g_ss, STACK16, "SS from the word at 0x26");
	is_u32(g_es, 0x10, "ES from the word at 0x22");
	is_u32((g_busy >> 8) & 0xF, 3, "G's descriptor: a busy 16-bit TSS while it runs");
	is_u32(gdt_type(TSS_G), 1, "available again after its iret");
	is_u32(gdt_type(TSS_A), 0xB, "A busy");
	is_u32(tss_g[W_LINK], TSS_A, "the back link names A");
	is_u32(tss_g[W_IP], at_g(g_after), "the iret saved G's IP after it");
	is_u32(tss_g[W_FLAGS], 0x2, "and its FLAGS without NT");
	is_u32(tss_g[W_AX], 0x1111, "and AX");
	is_u32(tss_g[W_BX], 0x2222, "and BX");
	is_u32(tss_g[W_DI], 0x7777, "and DI");
	is_u32(tss_g[W_CS], 0x08, "and CS in its word");
	is_u32(tss_g[W_DS], 0x10, "and DS in its word");
	ok(!(read_eflags() & 0x4000), "A has no NT");
	__asm__ volatile("lcall $0x50, $0" : : : "memory");
	is_u32(g_ax, 0x1111, "a second call resumes G with the AX it saved");

	/* #GP through a task gate to a 16-bit TSS. */
	u64 *idt = idt_entries(), saved_gp = idt[13];
	idt[13] = task_gate(TSS_H);
	__asm__ volatile("movw $0x1233, %%ax\n movw %%ax, %%ds\n"
			 "gp_resume:" : : : "eax", "memory");
	idt[13] = saved_gp;
	is_u32(h_err, 0x1230, "#GP through a task gate to a 16-bit TSS: the error code");
	is_u32((u16)(h_sp1 - h_sp0), 2, "pushed as a word");
	is_u32(h_sp0, H_SP - 2, "on the stack from H's TSS");

	/* A 16-bit call gate at the same level. */
	((void (*)(void))at_g(c_call_same))();
	is_u32(cs_ip, at_g(c_ret_here), "a call through a 16-bit gate pushes IP as a word");
	is_u32(cs_cs, 0x08, "and CS");
	is_u32(cs_esp0 - cs_esp, 4, "four bytes in all");

	/* And from ring 3, with parameters. */
	syscall_hook = sys;
	enter_user((void (*)(void))at_g(u_main), U_SP);
}
