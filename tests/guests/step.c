/* Single-stepping with EFLAGS.TF (SDM vol. 3 17.3.1.4): after each
 * instruction that starts with TF set, #DB with DR6.BS and the next
 * instruction's address; the first trap follows the instruction after the
 * popf that set TF, the last the popf that clears it.  The #DB handler
 * records each address.  Stepped: moves, arithmetic, a taken and an
 * untaken jcc, a jmp, a call and ret, a load, an out, cpuid (emulated),
 * pushf (TF in the image); an int n whose handler runs without traps and
 * returns by iret into stepping again; an instruction that faults (#UD
 * replaces its trap); rep movsb, trapping after each iteration; mov ss
 * and pop ss, whose trap is held until the next instruction ends (SDM
 * vol. 3 6.8.3: one trap, after that one). */
#include "rt/rt.h"

#define TF 0x100u

u32 db_eips[64], db_n, db_dr6, pushed_flags;
volatile u32 step_var = 7;
extern void db_stub(void);
extern void int_stub(void);
__asm__(".text\n"
	"db_stub: pushl %eax\n pushl %ecx\n movl db_n, %ecx\n movl 8(%esp), %eax\n"
	" cmpl $64, %ecx\n jae 1f\n movl %eax, db_eips(,%ecx,4)\n incl %ecx\n movl %ecx, db_n\n"
	"1: movl %dr6, %eax\n movl %eax, db_dr6\n popl %ecx\n popl %eax\n iret\n"
	"int_stub: pushfl\n popl int_flags\n addl $1, %eax\n addl $1, %eax\n iret\n");
u32 int_flags;

/* The stepped sequence: each label is where a trap must report. */
extern char s0[], s1[], s2[], s3[], s4[], s5[], s6[], s7[], s8[], s9[], s10[], s11[], s12[], s13[], s14[], s15[],
	s16[], s17[], s18[], s19[], fn[], fn_ret[], s_end[];
__asm__(".text\n"
	"stepped: pushl %ebx\n pushfl\n orl $0x100, (%esp)\n popfl\n"
	"s0: movl $1, %eax\n"
	"s1: addl $2, %eax\n"
	"s2: cmpl $3, %eax\n"
	"s3: je s5\n"
	"s4: nop\n"
	"s5: jne s4\n"
	"s6: jmp s8\n"
	"s7: nop\n"
	"s8: call fn\n"
	"s9: movl step_var, %ecx\n"
	"s10: movb $0x41, %al\n"
	"s11: outb %al, $0x80\n"
	"s12: movl $0, %eax\n"
	"s13: cpuid\n"
	"s14: pushfl\n"
	"s15: popl pushed_flags\n"
	"s16: int $0x81\n"
	"s17: pushfl\n"
	"s18: andl $~0x100, (%esp)\n"
	"s19: popfl\n"
	"s_end: popl %ebx\n ret\n"
	"fn: incl %eax\n"
	"fn_ret: ret\n");
extern void stepped(void);
extern char m1[], m3[], m4[], m6[], m7[], m8[], m_end[];
__asm__(".text\n"
	"stepped_ss: pushfl\n orl $0x100, (%esp)\n popfl\n"
	"m0: movw %ss, %ax\n"
	"m1: movw %ax, %ss\n"
	"m2: nop\n"
	"m3: pushl %eax\n"
	"m4: popl %ss\n"
	"m5: nop\n"
	"m6: pushfl\n"
	"m7: andl $~0x100, (%esp)\n"
	"m8: popfl\n"
	"m_end: ret\n");
extern void stepped_ss(void);
extern char ud_at[];
static u32 ud_vector, ud_flags;

static int ud_hook(struct trap_frame *f)
{
	if (f->eip != (u32)ud_at)
		return 0;
	ud_vector = f->vector;
	ud_flags = f->eflags;
	f->eflags &= ~TF;
	f->eip += 2;
	return 1;
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(12);
	idt_set(1, db_stub, 0);
	idt_set(0x81, int_stub, 0);

	__asm__ volatile("call stepped" : : : "eax", "ecx", "edx", "memory", "cc");
	/* int $0x81 and its handler's iret (run with TF clear) trap not. */
	static char *const want[] = {s1, s2, s3, s5, s6, s8, fn, fn_ret, s9, s10, s11, s12, s13, s14, s15, s16,
				     s18, s19, s_end};
	const u32 n_want = sizeof want / sizeof want[0];
	printf_serial("traps: %u\n", db_n);
	for (u32 i = 0; i < db_n; i++)
		printf_serial("  %x\n", db_eips[i] - (u32)s0);
	u32 same = db_n == n_want;
	for (u32 i = 0; same && i < n_want; i++)
		same = db_eips[i] == (u32)want[i];
	ok(same, "a trap after each stepped instruction, at the next one's address");
	ok(db_dr6 & 0x4000, "DR6.BS set");
	ok(pushed_flags & TF, "pushf while stepping pushes TF");
	ok(!(int_flags & TF), "int n's handler runs with TF clear, unstepped");
	ok(!(read_eflags() & TF), "TF clear after the popf");

	/* A faulting instruction under TF: its exception, no trap (the hook
	 * resumes after it with TF clear). */
	db_n = 0;
	fault_hook = ud_hook;
	__asm__ volatile("pushfl\n orl $0x100, (%%esp)\n popfl\n nop\n ud_at: ud2" : : : "memory", "cc");
	is_u32(ud_vector, 6, "ud2 under TF raises #UD");
	is_u32(db_n, 1, "after one trap, the nop's");
	ok(ud_flags & TF, "and its frame holds TF");
	/* rep movsb: a trap after each of its three iterations. */
	db_n = 0;
	static char src[8] = "abc", dst[8];
	u32 si = (u32)src, di = (u32)dst, cx = 3;
	__asm__ volatile("pushfl\n orl $0x100, (%%esp)\n popfl\n cld\n rep movsb\n pushfl\n andl $~0x100, (%%esp)\n popfl"
			 : "+S"(si), "+D"(di), "+c"(cx) : : "memory", "cc");
	is_u32(db_n, 7, "rep movsb under TF: a trap each iteration (cld, 3, pushfl, andl, popfl)");
	ok(dst[0] == 'a' && dst[2] == 'c', "and the copy is whole");
	db_n = 0;
	__asm__ volatile("call stepped_ss" : : : "eax", "memory", "cc");
	static char *const want_ss[] = {m1, m3, m4, m6, m7, m8, m_end};
	same = db_n == sizeof want_ss / sizeof want_ss[0];
	for (u32 i = 0; same && i < db_n; i++)
		same = db_eips[i] == (u32)want_ss[i];
	ok(same, "no trap after mov ss or pop ss: one after the instruction that follows");
	db_n = 0;
	__asm__ volatile("nop\n nop");
	is_u32(db_n, 0, "no traps once TF is clear");
}
