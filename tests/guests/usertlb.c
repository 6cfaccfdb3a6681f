/* Ring-3 memory accesses under paging, as a young process makes them (bt86
 * serves those through its soft TLB) and again after a long ring-3 loop
 * (when bt86 has them go straight to the user view): accesses running onto
 * the next page, whose frame is elsewhere, adjacent or not present (CR2);
 * a locked 8-byte compare-exchange and push/pop/call/ret across a page
 * boundary; A and D bits from reads, writes and read-modify-writes, and
 * again after the kernel clears D and invalidates; a read-only page made
 * writable; a remapped page; two address spaces mapping one address to
 * different frames, alternately; a supervisor page; a load into AH; and
 * code that user code rewrites and runs. */
#include "rt/rt.h"

#define P 0x1u
#define W 0x2u
#define U 0x4u
#define A 0x20u
#define D 0x40u
#define WIN 0x40000000u
#define FRAMES 9

static u32 pds[2][1024] __attribute__((aligned(4096)));
static u32 pt_low[4][1024] __attribute__((aligned(4096)));  /* identity 0-16 MiB, user */
static u32 pt_win[2][1024] __attribute__((aligned(4096)));  /* WIN, one a space */
static u8 frames[FRAMES][4096] __attribute__((aligned(4096)));
static u8 code_page[4096] __attribute__((aligned(4096)));   /* user code that user code rewrites */
static u32 tss[26];
static u8 kstack[8192] __attribute__((aligned(16)));
static u8 ustack[8192] __attribute__((aligned(16)));
static u32 space;
volatile u32 ticks, last_cr2;

extern void tick_stub(void);
__asm__(".text\n"
	"tick_stub: incl ticks\n"
	"pushl %eax\n movb $0x20, %al\n outb %al, $0x20\n popl %eax\n"
	"iret\n");

static int record_cr2(struct trap_frame *f)
{
	if (f->vector == 14)
		__asm__ volatile("movl %%cr2, %0" : "=r"(last_cr2));
	return 0; /* rt records the trap and resumes */
}

static void map(int s, u32 page, u32 pte)
{
	pt_win[s][page] = pte;
	if (s == (int)space)
		__asm__ volatile("invlpg (%0)" : : "r"(WIN + page * 4096) : "memory");
}

/* System calls: rt's reports (user_report), 3 end, 5 map(edx = space, ebx
 * = window page, ecx = entry), 6 switch to space ebx, 7 the entry of window
 * page ebx in space edx, 8 start the timer's interrupts. */
static void sys(struct trap_frame *f)
{
	if (user_report(f))
		return;
	switch (f->eax) {
	case 3:
		done();
	case 5:
		map((int)f->edx, f->ebx, f->ecx);
		break;
	case 6:
		space = f->ebx;
		__asm__ volatile("movl %0, %%cr3" : : "r"(pds[space]) : "memory");
		break;
	case 7:
		f->eax = pt_win[f->edx][f->ebx];
		break;
	case 8:
		outb(0x21, 0xFE);
		break;
	}
}

static void umap(u32 s, u32 page, u32 pte)
{
	__asm__ volatile("int $0x80" : : "a"(5), "b"(page), "c"(pte), "d"(s) : "memory");
}

static void uswitch(u32 s)
{
	__asm__ volatile("int $0x80" : : "a"(6), "b"(s) : "memory");
}

static u32 upte(u32 s, u32 page)
{
	u32 v;
	__asm__ volatile("int $0x80" : "=a"(v) : "a"(7), "b"(page), "d"(s) : "memory");
	return v;
}

static u32 frame(int i)
{
	return (u32)frames[i];
}

/* What the kernel put in frame i at offset j. */
static u8 pattern(int i, u32 j)
{
	return (u8)(i * 37 + j * 11 + (j >> 8));
}

static u32 pattern32(int i, u32 j)
{
	return pattern(i, j) | (u32)pattern(i, j + 1) << 8 | (u32)pattern(i, j + 2) << 16 | (u32)pattern(i, j + 3) << 24;
}

/* The checks a process's accesses must pass, described by `d`. */
static void accesses(const char *const *d)
{
	u32 at, v;

	/* Window pages 0 and 1 are frames 0 and 5, not adjacent. */
	UIS(read32(WIN + 0xFFE), pattern(0, 0xFFE) | pattern(0, 0xFFF) << 8 | pattern(5, 0) << 16 | pattern(5, 1) << 24,
	    d[0]);
	write32(WIN + 0xFFD, 0xA1B2C3D4);
	UOK(frames[0][0xFFD] == 0xD4 && frames[0][0xFFE] == 0xC3 && frames[0][0xFFF] == 0xB2 && frames[5][0] == 0xA1 &&
	    frames[5][1] == pattern(5, 1), d[1]);
	u32 lo = read32(WIN + 0xFFC), hi = read32(WIN + 0x1000), ok8;
	__asm__ volatile("lock cmpxchg8b (%%esi); sete %b0; movzbl %b0, %0"
			 : "=a"(ok8), "+d"(hi) : "0"(lo), "S"(WIN + 0xFFC), "b"(0x11223344), "c"(0x55667788)
			 : "memory", "cc");
	UOK(ok8 && read32(WIN + 0xFFC) == 0x11223344 && read32(WIN + 0x1000) == 0x55667788, d[2]);
	/* Pages 2 and 3 are frames 1 and 2, adjacent; page 4 is not present. */
	UIS(read32(WIN + 0x2FFF), pattern(1, 0xFFF) | pattern32(2, 0) << 8, d[3]);
	last_cr2 = 0;
	EXPECT_TRAP(at, "movl (%%ecx), %%eax", "c"(WIN + 0x3FFE), "a"(0));
	UOK(last_trap.vector == 14 && last_trap.error == U && last_trap.eip == at && last_cr2 == WIN + 0x4000, d[4]);

	/* The stack across the boundary of pages 2 and 3. */
	u32 popped, ret_esp;
	__asm__ volatile("movl %%esp, %%edi\n"
			 "movl %3, %%esp\n"
			 "pushl %%ebx\n"                  /* at WIN + 0x2FFE: crosses */
			 "call 1f\n"
			 "jmp 2f\n"
			 "1: movl %%esp, %%edx\n ret\n"  /* the return address at WIN + 0x2FFA */
			 "2: popl %0\n"
			 "movl %%edi, %%esp\n"
			 : "=r"(popped), "=d"(ret_esp), "=&D"(v) : "r"(WIN + 0x3002), "b"(0xCAFEF00D) : "memory");
	UOK(popped == 0xCAFEF00D && ret_esp == WIN + 0x2FFA && frames[1][0xFFE] == 0x0D && frames[2][0] == 0xFE &&
	    frames[2][1] == 0xCA, d[5]);

	/* Page 5 is frame 3, read-only until the kernel says otherwise. */
	EXPECT_TRAP(at, "movl %%eax, (%%ecx)", "c"(WIN + 0x5010), "a"(7));
	UOK(last_trap.vector == 14 && last_trap.error == (P | W | U) && last_cr2 == WIN + 0x5010, d[6]);
	umap(space, 5, frame(3) | P | W | U);
	write32(WIN + 0x5010, 8);
	UIS(frames[3][0x10], 8, d[7]);

	/* Page 6 is frame 4, writable and clean. */
	umap(space, 6, frame(4) | P | W | U);
	v = read32(WIN + 0x6000);
	UIS(upte(space, 6) & (A | D), A, d[8]);
	write32(WIN + 0x6004, v);
	UIS(upte(space, 6) & (A | D), A | D, d[9]);
	umap(space, 6, frame(4) | P | W | U | A);
	__asm__ volatile("addl $1, (%0)" : : "r"(WIN + 0x6008) : "memory", "cc");
	UIS(upte(space, 6) & (A | D), A | D, d[10]);

	/* Page 7 is supervisor-only. */
	EXPECT_TRAP(at, "movl (%%ecx), %%eax", "c"(WIN + 0x7000), "a"(0));
	UOK(last_trap.vector == 14 && last_trap.error == (P | U), d[11]);

	/* Remapped: page 0 becomes frame 6 (the kernel invalidates). */
	umap(space, 0, frame(6) | P | W | U);
	UIS(read32(WIN + 0x100), pattern32(6, 0x100), d[12]);
	u8 ah;
	__asm__ volatile("movb (%1), %%ah\n movb %%ah, %0" : "=r"(ah) : "r"(WIN + 0x101) : "eax", "memory");
	UIS((u32)ah, (u32)pattern(6, 0x101), d[13]);
	umap(space, 0, frame(0) | P | W | U);
}

static const char *const young[] = {
	"a read running onto the next page reads both frames",
	"a write running onto the next page writes both",
	"a locked cmpxchg8b across the boundary",
	"a read across adjacent frames",
	"#PF(U) and CR2 at the start of a non-present next page",
	"push, call and ret across a stack page boundary",
	"#PF(P|W|U) and CR2 writing a read-only page",
	"writable once the kernel changes the entry",
	"a read sets A only",
	"a write sets D",
	"a read-modify-write sets D again after the kernel cleared it",
	"#PF(P|U) reading a supervisor page",
	"a remapped page reads from its new frame",
	"a load into AH",
};

static const char *const old[] = {
	"after a long loop: a read running onto the next page",
	"after a long loop: a write running onto the next page",
	"after a long loop: a locked cmpxchg8b across the boundary",
	"after a long loop: a read across adjacent frames",
	"after a long loop: #PF(U) and CR2 at a non-present next page",
	"after a long loop: push, call and ret across a page boundary",
	"after a long loop: #PF(P|W|U) writing a read-only page",
	"after a long loop: writable once the kernel changes the entry",
	"after a long loop: a read sets A only",
	"after a long loop: a write sets D",
	"after a long loop: a read-modify-write sets D again",
	"after a long loop: #PF(P|U) reading a supervisor page",
	"after a long loop: a remapped page reads from its new frame",
	"after a long loop: a load into AH",
};

/* Back to the state accesses() starts from. */
static void reset(void)
{
	for (int i = 0; i < FRAMES; i++)
		for (u32 j = 0; j < 4096; j++)
			frames[i][j] = pattern(i, j);
	umap(0, 5, frame(3) | P | U);
	umap(0, 6, frame(4) | P | W | U);
}

static void spaces(const char *what)
{
	/* Window page 0 is frame 0 in space 0 and frame 7 in space 1. */
	u32 good = 0;
	for (int i = 0; i < 6; i++) {
		uswitch(1);
		good += read32(WIN + 0x40) == pattern32(7, 0x40);
		write32(WIN + 0x80, 0x5A5A0000u + (u32)i);
		uswitch(0);
		good += read32(WIN + 0x40) == pattern32(0, 0x40) && read32(WIN + 0x80) == pattern32(0, 0x80);
	}
	UIS(good, 12, what);
	UIS(read32((u32)&frames[7][0x80]), 0x5A5A0005, "and each space wrote its own frame");

	/* Space 0's entries change while space 1 runs: the CR3 load that
	 * returns to space 0 finds them changed. */
	u32 at;
	write32(WIN + 0x6000, 1); /* page 6 writable and dirty in space 0 */
	uswitch(1);
	umap(0, 0, frame(6) | P | W | U);
	umap(0, 6, frame(4) | P | U | A | D);
	uswitch(0);
	UIS(read32(WIN + 0x40), pattern32(6, 0x40), "a page remapped while its space was switched out");
	EXPECT_TRAP(at, "movl %%eax, (%%ecx)", "c"(WIN + 0x6000), "a"(2));
	UOK(last_trap.vector == 14 && last_trap.error == (P | W | U) && read32(WIN + 0x6000) == 1,
	    "a page made read-only while its space was switched out");
	umap(0, 0, frame(0) | P | W | U);
}

static void rewritten_code(void)
{
	/* mov $imm32, %eax; ret */
	static const u8 fn[] = {0xB8, 1, 0, 0, 0, 0xC3};
	for (u32 i = 0; i < sizeof fn; i++)
		code_page[i] = fn[i];
	u32 (*f)(void) = (u32(*)(void))code_page;
	u32 first = f();
	code_page[1] = 2;
	u32 second = f();
	UOK(first == 1 && second == 2, "code rewritten by user code runs rewritten");
}

static void user_main(void)
{
	accesses(young);
	reset();
	spaces("two spaces map one address to their own frames, alternately");
	rewritten_code();

	/* A ring-3 loop long enough for several timer interrupts. */
	__asm__ volatile("int $0x80" : : "a"(8) : "memory");
	u32 start = ticks;
	while (ticks - start < 4)
		__asm__ volatile("" : : : "memory");
	reset();
	accesses(old);
	reset();
	spaces("after a long loop: two spaces, alternately");
	__asm__ volatile("int $0x80" : : "a"(3));
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(2 * 14 + 2 * 4 + 1 + 1);
	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	syscall_hook = sys;
	fault_hook = record_cr2;

	for (int i = 0; i < FRAMES; i++)
		for (u32 j = 0; j < 4096; j++)
			frames[i][j] = pattern(i, j);
	for (u32 i = 0; i < 4 * 1024; i++)
		pt_low[i / 1024][i % 1024] = (i << 12) | P | W | U;
	for (int s = 0; s < 2; s++) {
		pt_win[s][0] = (s ? frame(7) : frame(0)) | P | W | U;
		pt_win[s][1] = frame(5) | P | W | U;
		pt_win[s][2] = frame(1) | P | W | U;
		pt_win[s][3] = frame(2) | P | W | U;
		pt_win[s][5] = frame(3) | P | U;
		pt_win[s][6] = frame(4) | P | W | U;
		pt_win[s][7] = frame(8) | P | W;
		for (u32 i = 0; i < 4; i++)
			pds[s][i] = (u32)pt_low[i] | P | W | U;
		pds[s][WIN >> 22] = (u32)pt_win[s] | P | W | U;
	}
	__asm__ volatile("movl %0, %%cr3\n"
			 "movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n"
			 "jmp 1f\n1:" : : "r"(pds[0]) : "eax", "memory");
	ok(1, "paging on with a user window");

	pic_pit_100hz(0xFF); /* the timer's line opens for the long loop */
	idt_set(0x20, tick_stub, 0);

	enter_user(user_main, (u32)ustack + sizeof ustack);
}
