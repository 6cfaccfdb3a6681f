/* Ring 3 with paging: system calls through int $0x80, exceptions raised at
 * CPL 3 reaching the kernel on its TSS stack, privileged instructions,
 * user/supervisor page protection, string instructions through ES:EDI
 * (both directions, a #PF part-way, and runs that wrap around the top of
 * the address space), and a ring-3 loop preempted by the timer.  User code
 * reports through system calls. */
#include "rt/rt.h"

#define P 0x1u
#define W 0x2u
#define U 0x4u

static u32 pd[1024] __attribute__((aligned(4096)));
static u32 pts[4][1024] __attribute__((aligned(4096)));
static u32 pt_top[1024] __attribute__((aligned(4096)));           /* maps the top page */
static volatile u8 top_page[4096] __attribute__((aligned(4096)));  /* at linear 0xFFFFF000 too */
static u32 tss[26];
static u8 kstack[8192] __attribute__((aligned(16)));
static u8 ustack[8192] __attribute__((aligned(16)));
static volatile u32 secret[1024] __attribute__((aligned(4096)));   /* supervisor-only page */
static volatile u32 readonly[1024] __attribute__((aligned(4096))); /* user read-only page */
volatile u32 ticks, preempted;

extern void tick_stub(void);
__asm__(".text\n"
	"tick_stub: incl ticks\n"
	"pushl %eax\n movb $0x20, %al\n outb %al, $0x20\n popl %eax\n"
	"iret\n");

/* System calls: rt's reports (user_report), 3 end of the user program, 4
 * return the CPL the caller ran at. */
static void sys(struct trap_frame *f)
{
	if (user_report(f))
		return;
	switch (f->eax) {
	case 3:
		ok((f->cs & 3) == 3 && f->user_ss == USER_DS, "the program ends by a system call from ring 3");
		done();
	case 4:
		f->eax = f->cs & 3;
		break;
	}
}

static char src_buf[64] = "ring-3 string instructions through ES:EDI";
static char dst_buf[64];

static void user_strings(void)
{
	u32 n = 41, eq;
	char *d = dst_buf;
	const char *sp = src_buf;
	__asm__ volatile("cld; rep movsb" : "+D"(d), "+S"(sp), "+c"(n) : : "memory");
	UOK(n == 0 && d == dst_buf + 41 && dst_buf[40] == 'I' && dst_buf[0] == 'r', "rep movsb at CPL 3");
	dst_buf[16] = 'X';
	n = 41;
	d = dst_buf;
	sp = src_buf;
	__asm__ volatile("cld; repe cmpsb; sete %b0" : "=q"(eq), "+D"(d), "+S"(sp), "+c"(n) : : "memory", "cc");
	UOK(!eq && n == 24 && sp == src_buf + 17, "repe cmpsb stops after the first difference");
	n = 64;
	d = src_buf;
	__asm__ volatile("cld; repne scasb" : "+D"(d), "+c"(n) : "a"('E') : "memory", "cc");
	UOK(d == src_buf + 36 && n == 28, "repne scasb finds a byte");
	n = 4;
	d = dst_buf + 12;
	__asm__ volatile("std; rep stosl; cld" : "+D"(d), "+c"(n) : "a"(0x41424344) : "memory");
	UOK((u32)d == (u32)dst_buf - 4 && dst_buf[0] == 'D' && dst_buf[15] == 'A' && dst_buf[16] == 'X',
	    "rep stosl backwards (DF = 1)");

	/* A #PF part-way, at the end of the mapped 16 MiB: the registers say
	 * how far the run got. */
	n = 64;
	d = (char *)0x00FFFFF0;
	trap_reset();
	__asm__ volatile("movl $2f, trap_resume\n cld\n rep stosb\n 2:"
			 : "+D"(d), "+c"(n) : "a"(0) : "memory");
	trap_resume = 0;
	UOK(last_trap.vector == 14 && n == 48 && (u32)d == 0x01000000,
	    "rep stosb faults at the first non-present byte, ECX and EDI part-way");

	/* Runs past the top of the address space wrap to 0, both ways. */
	n = 16;
	d = (char *)0xFFFFFFF8;
	__asm__ volatile("cld; rep stosb" : "+D"(d), "+c"(n) : "a"(0x5A) : "memory");
	volatile u8 *low;
	__asm__ volatile("xorl %0, %0" : "=r"(low)); /* linear 0, hidden from the compiler */
	UOK(d == (char *)8 && low[0] == 0x5A && low[7] == 0x5A && top_page[4095] == 0x5A && top_page[4087] != 0x5A,
	    "rep stosb wraps from 0xFFFFFFFF to 0");
	n = 16;
	d = (char *)7;
	__asm__ volatile("std; rep stosb; cld" : "+D"(d), "+c"(n) : "a"(0xA5) : "memory");
	UOK(d == (char *)0xFFFFFFF7 && low[0] == 0xA5 && top_page[4088] == 0xA5 && top_page[4087] != 0xA5,
	    "and backwards from 0 to 0xFFFFFFFF");
	low[3] = 0x11;
	n = 16;
	d = (char *)0xFFFFFFF8;
	u32 zf;
	__asm__ volatile("cld; repe scasb; setz %b0; movzbl %b0, %0" : "=q"(zf), "+D"(d), "+c"(n) : "a"(0xA5) : "memory", "cc");
	UOK(d == (char *)4 && n == 4 && !zf, "repe scasb wraps too and stops after the first difference");
}

static void user_main(void)
{
	u32 at, cpl;
	__asm__ volatile("int $0x80" : "=a"(cpl) : "a"(4) : "memory");
	UIS(cpl, 3, "user code runs at CPL 3");
	u16 cs;
	__asm__ volatile("movw %%cs, %0" : "=r"(cs));
	UIS(cs, USER_CS, "and reads its own CS");

	EXPECT_TRAP(at, "cli");
	UOK(last_trap.vector == 13 && last_trap.error == 0 && last_trap.eip == at && (last_trap.cs & 3) == 3,
	    "cli at CPL 3 raises #GP(0)");
	EXPECT_TRAP(at, "inb $0x60, %%al", "a"(0));
	UOK(last_trap.vector == 13 && last_trap.eip == at, "in at CPL 3 raises #GP(0) with no I/O bitmap");
	EXPECT_TRAP(at, "outb %%al, $0x80", "a"(0));
	UOK(last_trap.vector == 13, "so does out");
	EXPECT_TRAP(at, "hlt");
	UOK(last_trap.vector == 13, "hlt at CPL 3 raises #GP(0)");
	EXPECT_TRAP(at, "movl %%cr0, %%eax", "a"(0));
	UOK(last_trap.vector == 13, "mov from CR0 at CPL 3 raises #GP(0)");
	EXPECT_TRAP(at, "movl %%cr2, %%ebx", "b"(0x5A));
	UOK(last_trap.vector == 13 && last_trap.eip == at, "so does mov from CR2");
	EXPECT_TRAP(at, "int $48");
	UOK(last_trap.vector == 13 && last_trap.error == 48 * 8 + 2, "int to a DPL 0 gate raises #GP(vector)");
	EXPECT_TRAP(at, "syscall");
	UOK(last_trap.vector == 6 && last_trap.eip == at, "syscall raises #UD (no SYSCALL in the CPU)");
	/* wrgsbase %eax and rdgsbase %eax exist only in 64-bit mode: the
	 * monitor moves the host GS base with wrgsbase, which guest code must
	 * never reach */
	EXPECT_TRAP(at, ".byte 0xf3, 0x0f, 0xae, 0xd8");
	UOK(last_trap.vector == 6 && last_trap.eip == at, "wrgsbase's bytes raise #UD");
	EXPECT_TRAP(at, ".byte 0xf3, 0x0f, 0xae, 0xc8");
	UOK(last_trap.vector == 6 && last_trap.eip == at, "and rdgsbase's");
	EXPECT_TRAP(at, "divl %%ecx", "a"(1), "d"(0), "c"(0));
	UOK(last_trap.vector == 0 && last_trap.eip == at, "#DE at CPL 3 reaches the kernel");
	static u32 zero_divisor;
	EXPECT_TRAP(at, "divl (%%ebx)", "a"(1), "d"(0), "b"(&zero_divisor));
	UOK(last_trap.vector == 0 && last_trap.eip == at, "so does #DE from a zero divisor in memory");
	EXPECT_TRAP(at, "divb %%cl", "a"(0x300), "c"(3));
	UOK(last_trap.vector == 0 && last_trap.eip == at, "and from divb with AH not below the divisor");
	u32 q = 0x300, r = 0;
	__asm__ volatile("divb %%cl" : "+a"(q) : "c"(4) : "cc");
	UIS(q, 0xC0, "divb that fits divides");
	static u32 three = 3;
	__asm__ volatile("divl (%%ebx)" : "+a"(q), "+d"(r) : "b"(&three) : "cc");
	UIS(q, 0x40, "divl with a divisor in memory divides");
	EXPECT_TRAP(at, "ljmp $0x33, $0");
	UOK(last_trap.vector == 13 && last_trap.error == 0x30, "a far jump to selector 0x33 is the guest's own #GP");

	u32 fl_before, fl_after;
	__asm__ volatile("pushfl; popl %0; pushl %0; xorl $0x200, (%%esp); popfl; pushfl; popl %1"
			 : "=&r"(fl_before), "=r"(fl_after) : : "cc", "memory");
	UOK(((fl_before ^ fl_after) & 0x200) == 0, "popf at CPL 3 cannot change IF");
	UOK((fl_after & 0x3000) == 0, "IOPL reads as 0");
	u32 vendor[3];
	__asm__ volatile("cpuid" : "=b"(vendor[0]), "=d"(vendor[1]), "=c"(vendor[2]) : "a"(0));
	UOK(vendor[0] == 0x756E6547 && vendor[1] == 0x49656E69 && vendor[2] == 0x6C65746E, "cpuid at CPL 3 says GenuineIntel");

	EXPECT_TRAP(at, "movl (%%ecx), %%eax", "c"(&secret[4]), "a"(0));
	UOK(last_trap.vector == 14 && last_trap.error == (P | U) && last_trap.eip == at,
	    "#PF(P|U) reading a supervisor page");
	EXPECT_TRAP(at, "movl %%eax, (%%ecx)", "c"(&readonly[2]), "a"(1));
	UOK(last_trap.vector == 14 && last_trap.error == (P | W | U), "#PF(P|W|U) writing a read-only page");
	UIS(readonly[2], 0, "and the page is unchanged");
	EXPECT_TRAP(at, "movl (%%ecx), %%eax", "c"(0xB0000000), "a"(0));
	UOK(last_trap.vector == 14 && last_trap.error == U, "#PF(U) reading a non-present page");
	volatile u32 *mine = (volatile u32 *)ustack;
	mine[3] = 0x1234;
	UIS(mine[3], 0x1234, "user pages are readable and writable");
	user_strings();

	/* Preemption: spin without ever entering the kernel until the timer
	 * interrupt handler has run ten times. */
	u32 start = ticks;
	while (ticks - start < 10)
		preempted++;
	UOK(ticks - start >= 10, "a ring-3 loop is preempted by the timer");
	__asm__ volatile("int $0x80" : : "a"(3));
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(37);
	gdt[6] = 0;
	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	syscall_hook = sys;

	for (u32 i = 0; i < 4 * 1024; i++)
		pts[i / 1024][i % 1024] = (i << 12) | P | W | U;
	pts[0][(u32)secret >> 12] &= ~U;
	pts[0][(u32)readonly >> 12] &= ~W;
	for (u32 i = 0; i < 4; i++)
		pd[i] = (u32)pts[i] | P | W | U;
	pt_top[1023] = (u32)top_page | P | W | U;
	pd[1023] = (u32)pt_top | P | W | U;
	__asm__ volatile("movl %0, %%cr3\n"
			 "movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n"
			 "jmp 1f\n1:" : : "r"(pd) : "eax", "memory");
	ok(1, "paging on with user pages");

	pic_pit_100hz(0xFE);
	idt_set(0x20, tick_stub, 0);

	/* iret to ring 3 with interrupts enabled. */
	enter_user(user_main, (u32)ustack + sizeof ustack);
}
