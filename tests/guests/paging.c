/* Paging at ring 0: A and D bits, #PF error codes and CR2, invlpg and CR3
 * reloads, CR0.WP, a 4 MiB page, and a store through a second alias of a
 * page that holds code, code run through two mappings of one page, an
 * instruction running onto a page whose frame is remapped or absent,
 * code fetched from a page remapped before a CR3 reload, and pushad and
 * popad with their frame across two pages, one of them absent for popad. */
#include "rt/rt.h"

#define P 0x1u
#define W 0x2u
#define A 0x20u
#define D 0x40u
#define PS 0x80u

static u32 pd[1024] __attribute__((aligned(4096)));
static u32 pt_low[4][1024] __attribute__((aligned(4096)));   /* identity 0-16 MiB */
static u32 pt_test[1024] __attribute__((aligned(4096)));     /* 0x40000000 - 0x403FFFFF */
static u8 frames[4][4096] __attribute__((aligned(4096)));
static u8 code_frame[4096] __attribute__((aligned(4096)));
static u8 head_frame[4096] __attribute__((aligned(4096)));
static u8 head2_frame[4096] __attribute__((aligned(4096)));
static u8 tail_frames[2][4096] __attribute__((aligned(4096)));

#define TEST_BASE 0x40000000u
#define LARGE_BASE 0x80000000u

static void invlpg(u32 lin)
{
	__asm__ volatile("invlpg (%0)" : : "r"(lin) : "memory");
}

static void reload_cr3(void)
{
	__asm__ volatile("movl %%cr3, %%eax; movl %%eax, %%cr3" : : : "eax", "memory");
}

static u32 *pte(u32 lin)
{
	return &pt_test[(lin >> 12) & 0x3FF];
}

/* stack_probe(esp): pushad at a known set of registers with ESP = esp, then
 * popad after each register changed (stack_regs: what popad left, ESP
 * last); popad_probe(esp): popad alone at ESP = esp, resuming at the next
 * instruction after a fault (stack_regs: the registers then). */
u32 stack_probe_esp, stack_saved_esp, stack_regs[8];
extern void stack_probe(void), popad_probe(void);
#define SAVE_REGS "movl %eax, stack_regs\n movl %ecx, stack_regs+4\n movl %edx, stack_regs+8\n" \
	"movl %ebx, stack_regs+12\n movl %ebp, stack_regs+16\n movl %esi, stack_regs+20\n" \
	"movl %edi, stack_regs+24\n movl %esp, stack_regs+28\n"
#define SET_REGS "movl $0x11111111, %eax\n movl $0x22222222, %ecx\n movl $0x33333333, %edx\n" \
	"movl $0x44444444, %ebx\n movl $0x55555555, %ebp\n movl $0x66666666, %esi\n" \
	"movl $0x77777777, %edi\n"
__asm__(".text\n"
	"stack_probe: pushal\n movl %esp, stack_saved_esp\n" SET_REGS
	"  movl stack_probe_esp, %esp\n pushal\n"
	"  notl %eax\n notl %ecx\n notl %edx\n notl %ebx\n notl %ebp\n notl %esi\n notl %edi\n"
	"  popal\n" SAVE_REGS
	"  movl stack_saved_esp, %esp\n popal\n ret\n"
	"popad_probe: pushal\n movl %esp, stack_saved_esp\n" SET_REGS
	"  movl stack_probe_esp, %esp\n movl $1f, trap_resume\n"
	"  popal\n"
	"1: " SAVE_REGS
	"  movl stack_saved_esp, %esp\n popal\n ret\n");

void test_main(u32 magic, u32 mbi)
{
	u32 at;
	(void)magic;
	(void)mbi;
	plan(26);
	for (u32 i = 0; i < 4 * 1024; i++)
		pt_low[i / 1024][i % 1024] = (i << 12) | P | W;
	for (u32 i = 0; i < 4; i++)
		pd[i] = (u32)pt_low[i] | P | W;
	pd[TEST_BASE >> 22] = (u32)pt_test | P | W;
	pd[LARGE_BASE >> 22] = 0x00000000u | PS | P | W; /* 4 MiB page onto 0-4 MiB */
	*pte(TEST_BASE) = (u32)frames[0] | P | W;
	*pte(TEST_BASE + 0x1000) = (u32)frames[1] | P;          /* read-only */
	*pte(TEST_BASE + 0x3000) = (u32)code_frame | P | W;     /* alias of code */
	frames[0][0] = 0x11;
	frames[1][0] = 0x22;
	__asm__ volatile("movl %0, %%cr3\n"
			 "movl %%cr4, %%eax; orl $0x10, %%eax; movl %%eax, %%cr4\n" /* PSE */
			 "movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n" /* PG, WP */
			 "jmp 1f\n1:" : : "r"(pd) : "eax", "memory");
	u32 cr0;
	__asm__ volatile("movl %%cr0, %0" : "=r"(cr0));
	ok((cr0 & 0x80010000u) == 0x80010000u, "paging on, CR0.WP set");

	volatile u8 *t = (volatile u8 *)TEST_BASE;
	is_u32(*pte(TEST_BASE) & (A | D), 0, "A and D clear before any access");
	is_u32(t[0], 0x11, "a read through the mapping");
	is_u32(*pte(TEST_BASE) & (A | D), A, "a read sets A only");
	ok((pd[TEST_BASE >> 22] & A) != 0, "and A in the directory entry");
	t[1] = 0x33;
	is_u32(*pte(TEST_BASE) & (A | D), A | D, "a write sets D");
	is_u32(frames[0][1], 0x33, "the write reached the frame");

	EXPECT_TRAP(at, "movb (%%eax), %%al", "a"(TEST_BASE + 0x2000));
	u32 cr2;
	__asm__ volatile("movl %%cr2, %0" : "=r"(cr2));
	ok(last_trap.vector == 14 && last_trap.error == 0 && last_trap.eip == at && cr2 == TEST_BASE + 0x2000,
	   "#PF(0) and CR2 for a read of a non-present page");
	EXPECT_TRAP(at, "movb %%al, 5(%%ecx)", "a"(0), "c"(TEST_BASE + 0x2000));
	__asm__ volatile("movl %%cr2, %0" : "=r"(cr2));
	ok(last_trap.vector == 14 && last_trap.error == W && cr2 == TEST_BASE + 0x2005,
	   "#PF(W) for a write to a non-present page");
	EXPECT_TRAP(at, "movb %%al, (%%ecx)", "a"(0x44), "c"(TEST_BASE + 0x1000));
	ok(last_trap.vector == 14 && last_trap.error == (P | W) && frames[1][0] == 0x22,
	   "#PF(P|W) for a supervisor write to a read-only page with WP = 1");

	__asm__ volatile("movl %%cr0, %%eax; andl $~0x10000, %%eax; movl %%eax, %%cr0" : : : "eax");
	trap_reset();
	*(volatile u8 *)(TEST_BASE + 0x1000) = 0x55;
	ok(last_trap.count == 0 && frames[1][0] == 0x55, "with WP = 0 the supervisor writes a read-only page");
	__asm__ volatile("movl %%cr0, %%eax; orl $0x10000, %%eax; movl %%eax, %%cr0" : : : "eax");

	*pte(TEST_BASE) = (u32)frames[2] | P | W;
	frames[2][0] = 0x66;
	invlpg(TEST_BASE);
	is_u32(t[0], 0x66, "after invlpg the new mapping is seen");
	*pte(TEST_BASE) = (u32)frames[3] | P | W;
	frames[3][0] = 0x77;
	reload_cr3();
	is_u32(t[0], 0x77, "after a CR3 reload the new mapping is seen");

	volatile u32 *large = (volatile u32 *)(LARGE_BASE + (u32)&frames[3][0x10]);
	frames[3][0x10] = 0x88;
	__asm__ volatile("" : : : "memory");
	is_u32(*large & 0xFF, 0x88, "a 4 MiB page maps its 4 MiB of frames");
	ok((pd[LARGE_BASE >> 22] & (A | D)) == A, "a 4 MiB page's A bit is in the directory entry");

	/* Code in code_frame, run at its identity address, patched through the
	 * alias at TEST_BASE + 0x3000. */
	static const u8 ret42[] = {0xB8, 42, 0, 0, 0, 0xC3}; /* mov $42, %eax; ret */
	for (unsigned i = 0; i < sizeof ret42; i++)
		code_frame[i] = ret42[i];
	u32 (*fn)(void) = (u32 (*)(void))code_frame;
	u32 first = fn();
	*(volatile u8 *)(TEST_BASE + 0x3000 + 1) = 43;
	u32 second = fn();
	ok(first == 42 && second == 43, "a store through another alias reaches translated code");

	/* The same code run at both addresses reports where it runs: one
	 * physical page mapped twice is two translations (Linux's vDSO). */
	static const u8 where[] = {0xE8, 0, 0, 0, 0, 0x58, 0x83, 0xE8, 0x05, 0xC3}; /* call 1f; 1: pop; sub $5; ret */
	for (unsigned i = 0; i < sizeof where; i++)
		code_frame[i] = where[i];
	u32 here = fn();
	u32 there = ((u32 (*)(void))(TEST_BASE + 0x3000))();
	ok(here == (u32)code_frame && there == TEST_BASE + 0x3000, "code mapped twice runs at each address");

	/* mov $imm32, %eax; ret, with the opcode and the imm's low byte at the
	 * end of one page and the rest on the next, whose frame changes. */
	const u32 straddle = TEST_BASE + 0x5FFE;
	head_frame[4094] = 0xB8;
	head_frame[4095] = 0x11;
	for (u32 f = 0; f < 2; f++) {
		tail_frames[f][0] = (u8)(0x22 + f);
		tail_frames[f][1] = 0x33;
		tail_frames[f][2] = 0x44;
		tail_frames[f][3] = 0xC3;
	}
	*pte(straddle) = (u32)head_frame | P | W;
	*pte(straddle + 2) = (u32)tail_frames[0] | P | W;
	invlpg(straddle);
	invlpg(straddle + 2);
	u32 (*split)(void) = (u32 (*)(void))straddle;
	u32 v1 = split();
	*pte(straddle + 2) = (u32)tail_frames[1] | P | W;
	invlpg(straddle + 2);
	u32 v2 = split();
	ok(v1 == 0x44332211 && v2 == 0x44332311, "an instruction across two pages reads its tail from the current frame");
	*pte(straddle + 2) = 0;
	invlpg(straddle + 2);
	EXPECT_TRAP(at, "jmp *%1", "r"(straddle));
	u32 fault_cr2;
	__asm__ volatile("movl %%cr2, %0" : "=r"(fault_cr2));
	ok(last_trap.vector == 14 && last_trap.eip == straddle && fault_cr2 == straddle + 2 && last_trap.error == 0,
	   "fetching its tail from a non-present page is a #PF at the instruction, CR2 on the next page");
	*pte(straddle + 2) = (u32)tail_frames[0] | P | W;
	invlpg(straddle + 2);
	is_u32(split(), 0x44332211, "and once the page is present it runs");
	head2_frame[4094] = 0xB8;
	head2_frame[4095] = 0x55;
	*pte(straddle) = (u32)head2_frame | P | W;
	reload_cr3();
	is_u32(split(), 0x44332255, "after a CR3 reload code is fetched from the page's new frame");

	u32 cr3;
	__asm__ volatile("movl %%cr3, %0" : "=r"(cr3));
	is_u32(cr3, (u32)pd, "CR3 reads back");

	/* pushad and popad with the frame across pages 0 and 1 of TEST_BASE
	 * (page 1 made writable), then popad into the absent page 2. */
	*pte(TEST_BASE + 0x1000) = (u32)frames[1] | P | W;
	invlpg(TEST_BASE + 0x1000);
	stack_probe_esp = TEST_BASE + 0x1010;
	stack_probe();
	ok(stack_regs[0] == 0x11111111 && stack_regs[3] == 0x44444444 && stack_regs[6] == 0x77777777 &&
	   stack_regs[7] == TEST_BASE + 0x1010, "pushad then popad across a page boundary restore the registers");
	ok(*(volatile u32 *)(TEST_BASE + 0xFF0) == 0x77777777 && *(volatile u32 *)(TEST_BASE + 0xFFC) == TEST_BASE + 0x1010 &&
	   *(volatile u32 *)(TEST_BASE + 0x100C) == 0x11111111, "pushad's frame: EDI lowest, the original ESP, EAX highest");
	trap_reset();
	stack_probe_esp = TEST_BASE + 0x1FF0;
	popad_probe();
	__asm__ volatile("movl %%cr2, %0" : "=r"(cr2));
	ok(last_trap.vector == 14 && last_trap.error == 0 && cr2 == TEST_BASE + 0x2000,
	   "popad reading into an absent page: #PF(0), CR2 at the page");
	/* The SDM has a fault leave every register as it was; QEMU 7.2 keeps
	 * EDI, ESI and EBP, loaded before the fault (docs/architecture.md):
	 * only the others are compared. */
	ok(stack_regs[0] == 0x11111111 && stack_regs[1] == 0x22222222 && stack_regs[2] == 0x33333333 &&
	   stack_regs[3] == 0x44444444 && stack_regs[7] == TEST_BASE + 0x1FF0, "and EAX-EBX and ESP as they were");
}
