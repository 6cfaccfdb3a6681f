/* Ring-3 state across every way into the kernel and back, as direct
 * execution of ring 3 (bt86 --ring3=direct) must keep it: general
 * registers, DF and AC, the x87 stack and the XMM registers across system
 * calls, the timer's interrupts and exceptions; a GS base from the guest's
 * own GDT at selector 0x33 (which the host's GDT holds as its 64-bit code
 * segment), and DS reloaded from it; cpuid answering as the guest's CPU;
 * traps (int3 both ways, into) and faults (#UD, #GP, #DE, #PF) at
 * their own EIPs; A and D bits; code that user code, and then the kernel,
 * rewrites before it runs again.  User code reports through system calls. */
#include "rt/rt.h"

#define P 0x1u
#define W 0x2u
#define U 0x4u
#define A 0x20u
#define D 0x40u
#define TLS_SEL 0x33u /* GDT entry 6, RPL 3 */
#define DATA2_SEL 0x23u /* GDT entry 4: the alternate data segment, made DPL 3 */

static u32 pd[1024] __attribute__((aligned(4096)));
static u32 pts[4][1024] __attribute__((aligned(4096)));
static u32 tss[26];
static u8 kstack[8192] __attribute__((aligned(16)));
static u8 ustack[8192] __attribute__((aligned(16)));
static volatile u32 readonly[1024] __attribute__((aligned(4096))); /* user read-only until made writable */
static volatile u32 fresh[1024] __attribute__((aligned(4096)));    /* A and D looked at */
static u8 code[4096] __attribute__((aligned(4096)));               /* rewritten code */
static u32 tls[4] = {0x11111111, 0x22222222, 0x33333333, 0x44444444};
static u32 xmm_in[16] __attribute__((aligned(16))) = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static u32 xmm_out[16] __attribute__((aligned(16)));
static volatile u32 ticks;

static void on_tick(struct trap_frame *f)
{
	(void)f;
	ticks++;
	outb(0x20, 0x20);
}

static u32 *pte_of(volatile void *p)
{
	return &pts[(u32)p >> 22][((u32)p >> 12) & 1023];
}

static void invlpg(volatile void *p)
{
	__asm__ volatile("invlpg (%0)" : : "r"(p) : "memory");
}

/* System calls: rt's reports (user_report), 3 end, 4 check the caller's
 * registers and flags in the frame (ebx..edi, ebp = 0x0B0B0B0B + n) and
 * clobber them all in the kernel, 5 make `readonly` writable, 6 the PTE
 * of page ebx, 7 clear A and D of page ebx, 8 write the kernel's code
 * into `code`. */
static void sys(struct trap_frame *f)
{
	if (user_report(f))
		return;
	switch (f->eax) {
	case 3:
		ok((f->cs & 3) == 3 && (f->eflags & 0x200), "the program ends at ring 3 with interrupts on");
		done();
	case 4:
		f->eax = f->ebx == 0x0B0B0B0B && f->ecx == 0x0C0C0C0C && f->edx == 0x0D0D0D0D && f->esi == 0x51515151 &&
			 f->edi == 0xD1D1D1D1 && f->ebp == 0xB9B9B9B9 && (f->eflags & 0x40400) == 0x40400;
		f->ebx = f->ecx = f->edx = f->esi = f->edi = f->ebp = 0;
		f->eflags &= ~0x40400u; /* the kernel's iret clears DF and AC */
		break;
	case 5:
		*pte_of(readonly) |= W;
		invlpg(readonly);
		break;
	case 6:
		f->eax = *pte_of((void *)f->ebx);
		break;
	case 7:
		*pte_of((void *)f->ebx) &= ~(A | D);
		invlpg((void *)f->ebx);
		break;
	case 8: /* mov $0x4B45524E, %eax; ret */
		code[0] = 0xB8, code[1] = 'N', code[2] = 'R', code[3] = 'E', code[4] = 'K', code[5] = 0xC3;
		break;
	}
}

static u32 call_sys(u32 nr, u32 arg)
{
	u32 r;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(arg) : "memory");
	return r;
}

static void load_fpu_state(void)
{
	__asm__ volatile("movdqa 0(%0), %%xmm0\n movdqa 16(%0), %%xmm1\n movdqa 32(%0), %%xmm6\n movdqa 48(%0), %%xmm7\n"
			 "fninit\n fld1\n fldpi\n fldl2t\n" : : "r"(xmm_in) : "memory");
}

/* The x87 stack holds l2t, pi, 1 (top first) and XMM0, 1, 6, 7 xmm_in's
 * values; pops the stack. */
static int fpu_state_intact(void)
{
	u32 sw, st[3];
	float f;
	__asm__ volatile("movdqa %%xmm0, 0(%0)\n movdqa %%xmm1, 16(%0)\n movdqa %%xmm6, 32(%0)\n movdqa %%xmm7, 48(%0)\n"
			 : : "r"(xmm_out) : "memory");
	__asm__ volatile("fnstsw %0" : "=m"(sw));
	for (int i = 0; i < 3; i++) {
		__asm__ volatile("fstps %0" : "=m"(f));
		__builtin_memcpy(&st[i], &f, 4);
	}
	for (int i = 0; i < 16; i++)
		if (xmm_out[i] != xmm_in[i])
			return 0;
	/* 3.3219 as a float, pi, 1: TOP was 5 with three values pushed */
	return ((sw >> 11) & 7) == 5 && st[0] == 0x40549A78 && st[1] == 0x40490FDB && st[2] == 0x3F800000;
}

static void user_main(void)
{
	u32 at, r;

	/* A system call with every register and DF, AC set. */
	u32 fl;
	__asm__ volatile("pushl %%ebp\n"
			 "pushfl; orl $0x40400, (%%esp); popfl\n"
			 "movl $0x0B0B0B0B, %%ebx; movl $0x0C0C0C0C, %%ecx; movl $0x0D0D0D0D, %%edx\n"
			 "movl $0x51515151, %%esi; movl $0xD1D1D1D1, %%edi; movl $0xB9B9B9B9, %%ebp\n"
			 "int $0x80\n"
			 "orl %%ebx, %%eax; orl %%ecx, %%eax; orl %%edx, %%eax; orl %%esi, %%eax; orl %%edi, %%eax; orl %%ebp, %%eax\n"
			 "pushfl; popl %1\n"
			 "popl %%ebp\n"
			 : "=a"(r), "=r"(fl) : "a"(4) : "ebx", "ecx", "edx", "esi", "edi", "memory", "cc");
	UIS(r, 1, "a system call sees the caller's registers, DF and AC, and returns the kernel's");
	UIS(fl & 0x40400, 0, "DF and AC as the kernel's iret left them");

	/* DF and AC set, and the x87 and SSE state, across a run the timer
	 * preempts five times. */
	load_fpu_state();
	u32 start = ticks, df_lost = 0;
	__asm__ volatile("pushfl; orl $0x40400, (%%esp); popfl" : : : "cc");
	while (ticks - start < 5) {
		__asm__ volatile("pushfl; popl %0" : "=r"(fl));
		df_lost |= ~fl & 0x40400;
	}
	__asm__ volatile("pushfl; andl $~0x40400, (%%esp); popfl" : : : "cc");
	UIS(df_lost, 0, "DF and AC stay set across the timer's interrupts");
	UOK(fpu_state_intact(), "so do the x87 stack and the XMM registers");

	/* And across a system call and exceptions. */
	load_fpu_state();
	UOK(call_sys(6, (u32)fresh) & P, "a system call in between");
	EXPECT_TRAP(at, "ud2");
	UOK(last_trap.vector == 6 && last_trap.eip == at, "ud2 raises #UD at its EIP");
	EXPECT_TRAP(at, "hlt");
	UOK(last_trap.vector == 13 && last_trap.error == 0 && last_trap.eip == at, "hlt raises #GP(0) at its EIP");
	UOK(fpu_state_intact(), "the x87 and SSE state outlast them");

	EXPECT_TRAP(at, "int3");
	UOK(last_trap.vector == 3 && last_trap.eip == at + 1, "int3 traps past itself");
	EXPECT_TRAP(at, ".byte 0xCD, 0x03");
	UOK(last_trap.vector == 3 && last_trap.eip == at + 2, "so does int $3");
	EXPECT_TRAP(at, "movl $0x7FFFFFFF, %%eax; incl %%eax; into", "a"(0));
	UOK(last_trap.vector == 4 && last_trap.eip == at + 7, "into with OF set traps past itself");
	EXPECT_TRAP(at, "divl %%ecx", "a"(7), "d"(0), "c"(0));
	UOK(last_trap.vector == 0 && last_trap.eip == at, "#DE at its EIP");
	EXPECT_TRAP(at, "int $0x30");
	UOK(last_trap.vector == 13 && last_trap.error == 0x30 * 8 + 2, "int to a DPL 0 gate raises #GP(vector)");

	/* cpuid is the guest CPU's. */
	u32 b, c, d;
	__asm__ volatile("cpuid" : "=b"(b), "=c"(c), "=d"(d) : "a"(0));
	UOK(b == 0x756E6547 && d == 0x49656E69 && c == 0x6C65746E, "cpuid at CPL 3 says GenuineIntel");

	/* GS from the guest's GDT at 0x33, and DS from entry 4. */
	u32 g0, g3;
	__asm__ volatile("movw %w2, %%gs\n movl %%gs:0, %0\n movl %%gs:8, %1" : "=&r"(g0), "=&r"(g3) : "r"(TLS_SEL) : "memory");
	UOK(g0 == 0x22222222 && g3 == 0x55555555, "GS at selector 0x33 has the guest's base");
	__asm__ volatile("movw %w0, %%gs" : : "r"(0u));
	__asm__ volatile("movw %w1, %%ds\n movl $0x600DDA7A, tls\n movl tls+4, %0\n movw %w2, %%ds"
			 : "=&r"(r) : "r"(DATA2_SEL), "r"(USER_DS) : "memory");
	UOK(r == 0x22222222 && tls[0] == 0x600DDA7A, "DS reloaded from GDT entry 4 reads and writes");

	/* Page protection, then the kernel lifting it. */
	EXPECT_TRAP(at, "movl %%eax, (%%ecx)", "c"(&readonly[5]), "a"(1));
	UOK(last_trap.vector == 14 && last_trap.error == (P | W | U) && last_trap.eip == at, "#PF(P|W|U) writing a read-only page");
	call_sys(5, 0);
	readonly[5] = 0x5EAD;
	UIS(readonly[5], 0x5EAD, "and the write succeeds once the kernel allows it");
	/* A and D, as a TLB sets them. */
	call_sys(7, (u32)fresh);
	r = fresh[3];
	UIS(call_sys(6, (u32)fresh) & (A | D), A, "a read sets A only");
	fresh[3] = r + 1;
	UIS(call_sys(6, (u32)fresh) & (A | D), A | D, "a write sets D");
	call_sys(7, (u32)fresh);
	fresh[4] = 9;
	UIS(call_sys(6, (u32)fresh) & (A | D), A | D, "and both again after the kernel cleared them");

	/* A store next to its own instruction (tls shares the code's page or
	 * not, as the link left it), repeated. */
	for (u32 i = 0; i < 100; i++)
		tls[0] += i;
	UIS(tls[0], 0x600DDA7A + 4950, "stores in a loop");

	/* Code user code writes, runs, rewrites and runs; then the kernel's. */
	u32 (*fn)(void) = (u32 (*)(void))code;
	code[0] = 0xB8, code[1] = 'O', code[2] = 'N', code[3] = 'E', code[4] = '!', code[5] = 0xC3;
	UIS(fn(), 0x21454E4F, "user code runs code it wrote");
	code[1] = 'T', code[2] = 'W', code[3] = 'O';
	UIS(fn(), 0x214F5754, "and the code it rewrote");
	call_sys(8, 0);
	UIS(fn(), 0x4B45524E, "and the code the kernel rewrote");

	/* A compute loop, long enough to be preempted. */
	u32 h = 2166136261u;
	for (u32 i = 0; i < 3000000; i++)
		h = (h ^ (i & 0xFF)) * 16777619u;
	UIS(h, 0x534C0785, "an FNV-1a hash of 3,000,000 bytes");
	__asm__ volatile("int $0x80" : : "a"(3));
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(28);
	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	tls[3] = 0x55555555;
	set_descriptor(6, (u32)&tls[1], 0xFFFFF, 0xF2, 0xC); /* DPL 3 data at 0x33 */
	set_descriptor(4, 0, 0xFFFFF, 0xF2, 0xC);            /* DPL 3 flat data at 0x23 */
	gdt_load();
	syscall_hook = sys;

	for (u32 i = 0; i < 4 * 1024; i++)
		pts[i / 1024][i % 1024] = (i << 12) | P | W | U;
	*pte_of(readonly) &= ~W;
	for (u32 i = 0; i < 4; i++)
		pd[i] = (u32)pts[i] | P | W | U;
	/* paging, WP and AM; OSFXSR */
	__asm__ volatile("movl %0, %%cr3\n"
			 "movl %%cr0, %%eax; orl $0x80050000, %%eax; andl $~0xC, %%eax; orl $0x2, %%eax; movl %%eax, %%cr0\n"
			 "jmp 1f\n1:" : : "r"(pd) : "eax", "memory");
	cr4_set_bits(0x600, 0x600);
	ok(1, "paging on with user pages, CR0.AM and OSFXSR");

	u64 *idt = idt_entries();
	idt[3] |= (u64)3 << 45; /* int3 and into at CPL 3 reach their handlers */
	idt[4] |= (u64)3 << 45;
	irq_hook = on_tick;
	idt_hooks();
	pic_pit_100hz(0xFE);
	enter_user(user_main, (u32)ustack + sizeof ustack);
}
