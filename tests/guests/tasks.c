/* Hardware task switching (SDM vol. 3 ch. 7), paging off: a far jmp to a
 * TSS (the new task's registers and EFLAGS from its TSS, the old task's
 * saved in its own, busy bits moved, CR0.TS set, a second jmp resuming
 * where the task left), a far call to a TSS and through a task gate in the
 * GDT (NT set, the back link, iret returning to the caller and clearing
 * NT in the saved image), int n through a task gate in the IDT, #GP
 * through one (its error code on the handler task's stack), a task with
 * a page directory of its own (CR3 from each TSS: the processor saves
 * none), and the
 * checks: a busy TSS, RPL above the descriptor's DPL, a TSS not present
 * or shorter than 104 bytes, iret to a back link that is not busy. */
#include "rt/rt.h"

#define TSS_A 0x48
#define TSS_B 0x50
#define TSS_C 0x58
#define GATE_C 0x60 /* a task gate in the GDT to TSS_C */
#define TSS_D 0x68
#define TSS_SHORT 0x70
#define TSS_NP 0x78
#define WIN 0x40000000u

#define T_LINK 0
#define T_EIP 8
#define T_EFLAGS 9
#define T_EAX 10
#define T_ES 18

u32 tss_a[26], tss_b[26], tss_c[26], tss_d[26], tss_e[26], tss_short[26];
static u8 stack_b[4096] __attribute__((aligned(16)));
static u8 stack_c[4096] __attribute__((aligned(16)));
static u8 stack_d[4096] __attribute__((aligned(16)));
static u8 stack_e[4096] __attribute__((aligned(16)));
static u32 pd_a[1024] __attribute__((aligned(4096)));
static u32 pd_f[1024] __attribute__((aligned(4096)));
static u32 frame_a[1024] __attribute__((aligned(4096)));
static u32 frame_f[1024] __attribute__((aligned(4096)));
static u32 pt_a[1024] __attribute__((aligned(4096)));
static u32 pt_f[1024] __attribute__((aligned(4096)));

/* What the tasks saw, stored by their code below. */
u32 b_regs[7], b_eflags, b_tr, b_busy_a, b_second;
u32 c_eflags, c_tr, c_busy, c_runs;
u32 d_eflags, d_tr;
u32 e_error, e_tr;
u32 f_seen;

void task_b(void);
void b_after_jmp(void);
void task_c(void);
void c_after_iret(void);
void task_d(void);
void task_e(void);
void gp_resume(void);
void task_f(void);

/* B: stores its registers, EFLAGS, TR and A's descriptor word, jumps back
 * to A; entered again, it resumes after that jump. */
__asm__(".text\n"
	"task_b: movl %eax, b_regs\n movl %ebx, b_regs+4\n movl %ecx, b_regs+8\n movl %edx, b_regs+12\n"
	" movl %esi, b_regs+16\n movl %edi, b_regs+20\n movl %ebp, b_regs+24\n"
	" pushfl\n popl b_eflags\n str b_tr\n movl gdt+76, %eax\n movl %eax, b_busy_a\n"
	" ljmp $0x48, $0\n"
	"b_after_jmp: movl $0xB2, b_second\n ljmp $0x48, $0\n"
	/* C: called; sees NT and its back link, returns by iret. */
	"task_c: pushfl\n popl c_eflags\n str c_tr\n movl gdt+92, %eax\n movl %eax, c_busy\n incl c_runs\n"
	" iret\n"
	"c_after_iret: jmp task_c\n"
	/* D: an IDT task gate's handler. */
	"task_d: pushfl\n popl d_eflags\n str d_tr\n iret\n jmp task_d\n"
	/* E: #GP's handler task: the error code on its stack; A goes on at
	 * gp_resume. */
	"task_e: popl e_error\n str e_tr\n movl $gp_resume, tss_a+32\n iret\n jmp task_e\n"
	/* F: runs under its own page directory, reads the window, returns. */
	"task_f: movl 0x40000000, %eax\n movl %eax, f_seen\n iret\n jmp task_f\n");

static void tss_init(u32 *t, void (*entry)(void), u8 *stack, u32 stack_bytes, u32 seed)
{
	for (int i = 0; i < 26; i++)
		t[i] = 0;
	t[T_EIP] = (u32)entry;
	t[T_EFLAGS] = 0x2;
	for (int i = 0; i < 8; i++)
		t[T_EAX + i] = seed + i * 0x01010101u;
	t[T_EAX + 4] = (u32)stack + stack_bytes; /* ESP */
	t[T_ES] = t[T_ES + 2] = t[T_ES + 3] = t[T_ES + 4] = t[T_ES + 5] = 0x10;
	t[T_ES + 1] = 0x08;
	t[25] = 104u << 16; /* I/O map base past the limit */
}

/* The access byte's type of GDT entry `sel`. */
static u32 gdt_type(u32 sel)
{
	return (u32)(gdt[sel >> 3] >> 40) & 0xF;
}

static u32 read_cr0(void)
{
	u32 v;
	__asm__ volatile("movl %%cr0, %0" : "=r"(v));
	return v;
}

static u64 task_gate(u32 tss_sel)
{
	return ((u64)0x85 << 40) | ((u64)tss_sel << 16);
}

void test_main(u32 magic, u32 mbi)
{
	u32 at;
	(void)magic;
	(void)mbi;
	plan(37);

	tss_init(tss_b, task_b, stack_b, sizeof stack_b, 0xB0000001);
	tss_init(tss_c, task_c, stack_c, sizeof stack_c, 0xC0000001);
	tss_init(tss_d, task_d, stack_d, sizeof stack_d, 0xD0000001);
	tss_init(tss_e, task_e, stack_e, sizeof stack_e, 0xE0000001);
	tss_init(tss_short, task_d, stack_d, sizeof stack_d, 0);
	set_descriptor(TSS_A >> 3, (u32)tss_a, 103, 0x89, 0);
	set_descriptor(TSS_B >> 3, (u32)tss_b, 103, 0x89, 0);
	set_descriptor(TSS_C >> 3, (u32)tss_c, 103, 0x89, 0);
	gdt[GATE_C >> 3] = task_gate(TSS_C);
	set_descriptor(TSS_D >> 3, (u32)tss_d, 103, 0x89, 0);
	set_descriptor(TSS_SHORT >> 3, (u32)tss_short, 0x60, 0x89, 0);
	set_descriptor(TSS_NP >> 3, (u32)tss_b, 103, 0x09, 0);
	gdt_load();
	__asm__ volatile("ltr %w0" : : "r"(TSS_A));

	/* jmp to B and back. */
	__asm__ volatile("clts\n ljmp $0x50, $0" : : : "memory");
	is_u32(b_regs[0], 0xB0000001, "B starts with its TSS's EAX");
	is_u32(b_regs[3], 0xB0000001 + 2 * 0x01010101u, "and EDX");
	is_u32(b_regs[5], 0xB0000001 + 7 * 0x01010101u, "and EDI");
	is_u32(b_eflags, 0x2, "and its EFLAGS (a jmp sets no NT)");
	is_u32(b_tr, TSS_B, "TR names B's TSS");
	is_u32((b_busy_a >> 8) & 0xF, 9, "A's TSS is no longer busy while B runs");
	is_u32(tss_b[T_EIP], (u32)b_after_jmp, "B's TSS holds the EIP after its jmp");
	is_u32(tss_b[T_EAX + 4], (u32)stack_b + sizeof stack_b, "and its ESP");
	is_u32(tss_b[T_ES + 1] & 0xFFFF, 0x08, "and its CS");
	is_u32(gdt_type(TSS_A), 0xB, "back in A: A busy");
	is_u32(gdt_type(TSS_B), 0x9, "B available");
	ok(read_cr0() & 0x8, "CR0.TS set by the switch");
	__asm__ volatile("ljmp $0x50, $0" : : : "memory");
	is_u32(b_second, 0xB2, "a second jmp resumes B after its first");

	/* call C: nested, and back by iret. */
	tss_a[T_LINK] = 0;
	__asm__ volatile("lcall $0x58, $0" : : : "memory");
	is_u32(c_runs, 1, "a call runs C");
	is_u32(c_eflags, 0x4002, "with NT set");
	is_u32(tss_c[T_LINK], TSS_A, "C's back link names A");
	is_u32((c_busy >> 8) & 0xF, 0xB, "C busy while it runs");
	is_u32(gdt_type(TSS_A), 0xB, "A still busy");
	is_u32(gdt_type(TSS_C), 0x9, "iret leaves C available");
	is_u32(tss_c[T_EFLAGS], 0x2, "and its saved EFLAGS without NT");
	is_u32(tss_c[T_EIP], (u32)c_after_iret, "and its EIP after the iret");
	ok(!(read_eflags() & 0x4000), "A has no NT");
	__asm__ volatile("lcall $0x60, $0" : : : "memory");
	is_u32(c_runs, 2, "a call through a task gate in the GDT runs C again");

	/* int n and #GP through task gates in the IDT. */
	u64 *idt = idt_entries(), saved_gp = idt[13];
	idt[0x90] = task_gate(TSS_D);
	__asm__ volatile("int $0x90" : : : "memory");
	is_u32(d_tr, TSS_D, "int $0x90 through a task gate runs D");
	is_u32(d_eflags, 0x4002, "nested (NT)");
	set_descriptor(TSS_D >> 3, (u32)tss_e, 103, 0x89, 0); /* the gate's TSS now holds E */
	gdt_load();
	idt[13] = task_gate(TSS_D);
	__asm__ volatile("movw $0x1233, %%ax\n movw %%ax, %%ds\n"
			 "gp_resume:" : : : "eax", "memory");
	idt[13] = saved_gp;
	is_u32(e_tr, TSS_D, "#GP through a task gate runs its task");
	is_u32(e_error, 0x1230, "with the error code on its stack");

	/* The checks. */
	EXPECT_TRAP(at, "ljmp $0x48, $0", "i"(0));
	ok(last_trap.vector == 13 && last_trap.error == TSS_A, "a jmp to a busy TSS: #GP(sel)");
	EXPECT_TRAP(at, "ljmp $0x53, $0", "i"(0));
	ok(last_trap.vector == 13 && last_trap.error == TSS_B, "RPL 3 above the TSS's DPL 0: #GP(sel)");
	EXPECT_TRAP(at, "lcall $0x78, $0", "i"(0));
	ok(last_trap.vector == 11 && last_trap.error == TSS_NP, "a TSS not present: #NP(sel)");
	EXPECT_TRAP(at, "lcall $0x70, $0", "i"(0));
	ok(last_trap.vector == 10 && last_trap.error == TSS_SHORT, "a TSS under 104 bytes: #TS(sel)");
	tss_a[T_LINK] = TSS_B;
	EXPECT_TRAP(at, "pushfl\n orl $0x4000, (%%esp)\n popfl\n iret", "i"(0));
	__asm__ volatile("pushfl\n andl $~0x4000, (%%esp)\n popfl" : : : "memory", "cc");
	ok(last_trap.vector == 10 && last_trap.error == TSS_B, "iret to a back link that is not busy: #TS(link)");
	is_u32(gdt_type(TSS_B), 0x9, "and nothing changed");
	tss_a[T_LINK] = 0;

	/* Paging on: each task's CR3 comes from its TSS. */
	for (u32 i = 0; i < 4; i++)
		pd_a[i] = pd_f[i] = (i << 22) | 0x83; /* 16 MiB identity, 4 MiB pages */
	pt_a[0] = (u32)frame_a | 3;
	pt_f[0] = (u32)frame_f | 3;
	pd_a[WIN >> 22] = (u32)pt_a | 3;
	pd_f[WIN >> 22] = (u32)pt_f | 3;
	frame_a[0] = 0xAAAA;
	frame_f[0] = 0xFFFF;
	tss_a[7] = (u32)pd_a;
	tss_init(tss_c, task_f, stack_c, sizeof stack_c, 0);
	tss_c[7] = (u32)pd_f;
	__asm__ volatile("movl %%cr4, %%eax; orl $0x10, %%eax; movl %%eax, %%cr4\n"
			 "movl %0, %%cr3\n"
			 "movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n"
			 "jmp 1f\n1:" : : "r"(pd_a) : "eax", "memory");
	is_u32(*(volatile u32 *)WIN, 0xAAAA, "paging on: A's window");
	__asm__ volatile("lcall $0x58, $0" : : : "memory");
	is_u32(f_seen, 0xFFFF, "a task with its own CR3 reads its own window");
	is_u32(*(volatile u32 *)WIN, 0xAAAA, "and back in A, A's CR3 again (from A's TSS)");
	__asm__ volatile("lcall $0x58, $0" : : : "memory");
	frame_f[0] = 0xF2F2;
	__asm__ volatile("lcall $0x58, $0" : : : "memory");
	is_u32(f_seen, 0xF2F2, "and the same code runs there again");
	__asm__ volatile("movl %%cr0, %%eax; andl $0x7FFFFFFF, %%eax; movl %%eax, %%cr0" : : : "eax", "memory");
}
