/* Call gates (SDM vol. 3 5.8): a far call from ring 3 through a DPL-3
 * gate to ring 0 switches to the TSS's ring-0 stack and copies the gate's
 * two parameters there (EIP, CS, the parameters, the old ESP and SS), and
 * lret $8 returns to the outer level, popping the parameters from both
 * stacks; a call and a jmp through a gate at the same level; a gate not
 * present is #NP, one whose DPL is below CPL #GP. */
#include "rt/rt.h"

#define GATE_UP 0x48   /* DPL 3, to 0x08:gate_up, 2 parameters */
#define GATE_SAME 0x50 /* DPL 0, to 0x08:gate_same */
#define GATE_NP 0x58   /* not present */
#define GATE_JMP 0x60  /* DPL 0, to 0x08:gate_jmp */

static u32 tss[26];
static u8 kstack[8192] __attribute__((aligned(16)));
static u8 ustack[8192] __attribute__((aligned(16)));
u32 up_cs, up_p0, up_p1, up_old_esp, up_old_ss, up_esp, same_cs, same_ret_cs, jmp_seen;

extern void gate_up(void), gate_same(void), gate_jmp(void), jmp_back(void);
__asm__(".text\n"
	"gate_up: movl %cs, %eax\n movl %eax, up_cs\n movl 8(%esp), %eax\n movl %eax, up_p0\n"
	" movl 12(%esp), %eax\n movl %eax, up_p1\n movl 16(%esp), %eax\n movl %eax, up_old_esp\n"
	" movl 20(%esp), %eax\n movl %eax, up_old_ss\n movl %esp, up_esp\n lret $8\n"
	"gate_same: movl %cs, %eax\n movl %eax, same_cs\n movl 4(%esp), %eax\n movl %eax, same_ret_cs\n lret\n"
	"gate_jmp: movl $1, jmp_seen\n jmp jmp_back\n");

static u64 call_gate(u32 sel, void (*target)(void), unsigned dpl, unsigned params, int present)
{
	u32 off = (u32)target;
	u32 lo = (sel << 16) | (off & 0xFFFF);
	u32 hi = (off & 0xFFFF0000u) | (present ? 0x8000u : 0) | (dpl << 13) | (0xCu << 8) | params;
	return ((u64)hi << 32) | lo;
}

static void sys(struct trap_frame *f)
{
	if (user_report(f))
		return;
	if (f->eax == 3)
		done();
}

static void user_main(void)
{
	u32 at, before, after;
	__asm__ volatile("movl %%esp, %0\n pushl $0x22\n pushl $0x11\n lcall $0x4B, $0\n movl %%esp, %1"
			 : "=&r"(before), "=&r"(after) : : "eax", "memory");
	UIS(up_cs & 3, 0, "a call through a DPL-3 gate runs at ring 0");
	UIS(up_p0, 0x11, "with the first parameter copied");
	UIS(up_p1, 0x22, "and the second");
	UIS(up_old_ss, 0x43, "the outer SS on the inner stack");
	UIS(up_old_esp, before - 8, "and the outer ESP (the parameters pushed)");
	UOK(up_esp + 24 == (u32)kstack + sizeof kstack, "on the ring-0 stack from the TSS");
	UIS(after, before, "lret $8 comes back with both stacks' parameters popped");
	u32 cs;
	__asm__ volatile("movl %%cs, %0" : "=r"(cs));
	UIS(cs & 3, 3, "at ring 3");
	EXPECT_TRAP(at, "lcall $0x50, $0", "i"(0));
	UOK(last_trap.vector == 13 && last_trap.error == GATE_SAME, "a DPL-0 gate from ring 3: #GP(gate)");
	__asm__ volatile("int $0x80" : : "a"(3));
}

void test_main(u32 magic, u32 mbi)
{
	u32 at;
	(void)magic;
	(void)mbi;
	plan(13);
	gdt[GATE_UP >> 3] = call_gate(0x08, gate_up, 3, 2, 1);
	gdt[GATE_SAME >> 3] = call_gate(0x08, gate_same, 0, 0, 1);
	gdt[GATE_NP >> 3] = call_gate(0x08, gate_same, 0, 0, 0);
	gdt[GATE_JMP >> 3] = call_gate(0x08, gate_jmp, 0, 0, 1);
	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);

	__asm__ volatile("lcall $0x50, $0" : : : "eax", "memory");
	is_u32(same_cs, 0x08, "a call through a gate at the same level");
	is_u32(same_ret_cs, 0x08, "pushes CS and EIP on the same stack");
	__asm__ volatile("ljmp $0x60, $0\n jmp_back:" : : : "memory");
	is_u32(jmp_seen, 1, "a jmp through a gate");
	EXPECT_TRAP(at, "lcall $0x58, $0", "i"(0));
	ok(last_trap.vector == 11 && last_trap.error == GATE_NP, "a gate not present: #NP(gate)");

	syscall_hook = sys;
	enter_user(user_main, (u32)ustack + sizeof ustack);
}
