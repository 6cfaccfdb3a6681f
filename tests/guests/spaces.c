/* Ring-0 code touching user pages across address spaces, as a kernel's
 * copy_to_user and get_user do: the same load, store, read-modify-write,
 * locked cmpxchg and rep movsb run under several page directories that map
 * one user address to different frames, more directories than bt86 keeps
 * windows for, and after the tables change with and without invlpg or a
 * CR3 load; A and D bits, #PF error codes, CR2, and the registers of a rep
 * movsb stopped by a fault. */
#include "rt/rt.h"

#define P 0x1u
#define W 0x2u
#define U 0x4u
#define A 0x20u
#define D 0x40u
#define SPACES 6

static u32 pds[SPACES][1024] __attribute__((aligned(4096)));
static u32 pts[SPACES][1024] __attribute__((aligned(4096)));    /* 0x40000000 - 0x403FFFFF */
static u32 pt_low[4][1024] __attribute__((aligned(4096)));      /* identity 0-16 MiB, supervisor */
static u8 frames[SPACES + 2][4096] __attribute__((aligned(4096)));
static u8 kbuf[64];

#define UPAGE 0x40000000u

static u32 *pte(int space, u32 lin)
{
	return &pts[space][(lin >> 12) & 0x3FF];
}

static void load_cr3(int space)
{
	__asm__ volatile("movl %0, %%cr3" : : "r"(pds[space]) : "memory");
}

static void reload_cr3(void)
{
	__asm__ volatile("movl %%cr3, %%eax; movl %%eax, %%cr3" : : : "eax", "memory");
}

static void invlpg(u32 lin)
{
	__asm__ volatile("invlpg (%0)" : : "r"(lin) : "memory");
}

/* One instruction each, at one address each, whatever space runs them. */
__attribute__((noinline)) static u32 kread(u32 addr)
{
	u32 v;
	__asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(addr) : "memory");
	return v;
}

__attribute__((noinline)) static void kadd(u32 addr, u32 n)
{
	__asm__ volatile("addl %1, (%0)" : : "r"(addr), "r"(n) : "memory", "cc");
}

__attribute__((noinline)) static u32 kcmpxchg(u32 addr, u32 old, u32 new)
{
	__asm__ volatile("lock cmpxchgl %2, (%1)" : "+a"(old) : "r"(addr), "r"(new) : "memory", "cc");
	return old;
}

__attribute__((noinline)) static void kcopy(u32 dst, u32 src, u32 n)
{
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

/* A store that may fault: run without one in two spaces first, so that
 * bt86 has seen it touch user pages under two CR3s (what makes it use
 * its kernel views) before it faults. */
static u32 store_at;
__attribute__((noinline)) static void kstore(u32 addr, u32 v)
{
	u32 at;
	EXPECT_TRAP(at, "movl %%eax, (%%ecx)", "a"(v), "c"(addr));
	store_at = at;
}

/* The same for rep movsb, returning ECX, ESI and EDI as it stopped. */
__attribute__((noinline)) static void kcopy_regs(u32 dst, u32 src, u32 n, u32 out[3])
{
	trap_reset();
	__asm__ volatile("movl $2f, trap_resume\n"
			 "1: rep movsb\n"
			 "2:\n" : "+D"(dst), "+S"(src), "+c"(n) : : "memory", "cc");
	out[0] = n;
	out[1] = src;
	out[2] = dst;
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(22);
	for (u32 i = 0; i < 4 * 1024; i++)
		pt_low[i / 1024][i % 1024] = (i << 12) | P | W;
	for (int s = 0; s < SPACES; s++) {
		for (u32 i = 0; i < 4; i++)
			pds[s][i] = (u32)pt_low[i] | P | W;
		pds[s][UPAGE >> 22] = (u32)pts[s] | P | W | U;
		*pte(s, UPAGE) = (u32)frames[s] | P | W | U;
		for (u32 i = 0; i < 4096; i += 4)
			*(u32 *)&frames[s][i] = 0x1000u * (u32)(s + 1) + i;
	}
	*pte(0, UPAGE + 0x1000) = (u32)frames[SPACES] | P | W | U; /* a second page in space 0 only */
	*(u32 *)&frames[SPACES][0] = 0x6A6A;
	load_cr3(0);
	__asm__ volatile("movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n" /* PG, WP */
			 "jmp 1f\n1:" : : : "eax", "memory");

	u32 good = 1;
	for (int round = 0; round < 3; round++)
		for (int s = 0; s < 2; s++) {
			load_cr3(s);
			good &= kread(UPAGE + 8) == 0x1000u * (u32)(s + 1) + 8;
		}
	ok(good, "one load reads each space's frame, three times over");

	load_cr3(1);
	kadd(UPAGE + 12, 5);
	load_cr3(0);
	kadd(UPAGE + 12, 7);
	is_u32(*(u32 *)&frames[1][12], 0x200Cu + 5, "an add to user memory lands in space 1's frame");
	is_u32(*(u32 *)&frames[0][12], 0x100Cu + 7, "and in space 0's");
	is_u32(*pte(1, UPAGE) & (A | D), A | D, "it set A and D in space 1's entry");

	load_cr3(1);
	u32 seen1 = kcmpxchg(UPAGE + 16, 0x2010, 0xC1);
	load_cr3(0);
	u32 seen0 = kcmpxchg(UPAGE + 16, 0x2010, 0xC0);
	ok(seen1 == 0x2010 && *(u32 *)&frames[1][16] == 0xC1 && seen0 == 0x1010 && *(u32 *)&frames[0][16] == 0x1010,
	   "lock cmpxchg compares against each space's own frame");

	load_cr3(1);
	kcopy((u32)kbuf, UPAGE + 32, 16);
	u32 from1 = *(u32 *)kbuf;
	load_cr3(0);
	kcopy((u32)kbuf, UPAGE + 32, 16);
	u32 from0 = *(u32 *)kbuf;
	ok(from1 == 0x2020 && from0 == 0x1020, "rep movsb copies in from each space's frame");
	*(u32 *)kbuf = 0xFEEDu;
	load_cr3(1);
	kcopy(UPAGE + 48, (u32)kbuf, 4);
	load_cr3(0);
	ok(*(u32 *)&frames[1][48] == 0xFEED && *(u32 *)&frames[0][48] == 0x1030,
	   "and copies out to the space it runs in");

	good = 1;
	for (int round = 0; round < 2; round++)
		for (int s = 0; s < SPACES; s++) {
			load_cr3(s);
			good &= kread(UPAGE + 4) == 0x1000u * (u32)(s + 1) + 4;
		}
	ok(good, "six spaces in turn, twice: each sees its own frame");

	/* Space 0's entry changes while space 1 runs, with no invlpg. */
	load_cr3(1);
	*pte(0, UPAGE) = (u32)frames[SPACES + 1] | P | W | U;
	*(u32 *)&frames[SPACES + 1][4] = 0x7777;
	load_cr3(0);
	is_u32(kread(UPAGE + 4), 0x7777, "a space's changed entry is seen at its next CR3 load");
	*pte(0, UPAGE) = (u32)frames[0] | P | W | U;
	reload_cr3();
	is_u32(kread(UPAGE + 4), 0x1004, "and at a reload of the same CR3");
	*pte(0, UPAGE) = (u32)frames[SPACES + 1] | P | W | U;
	invlpg(UPAGE);
	is_u32(kread(UPAGE + 4), 0x7777, "and after invlpg");
	*pte(0, UPAGE) = (u32)frames[0] | P | W | U;
	invlpg(UPAGE);

	load_cr3(1);
	*pte(0, UPAGE) &= ~(A | D);
	load_cr3(0);
	u32 v = kread(UPAGE + 4);
	ok(v == 0x1004 && (*pte(0, UPAGE) & (A | D)) == A, "A cleared while switched out is set again by a read");
	kadd(UPAGE + 4, 1);
	is_u32(*pte(0, UPAGE) & (A | D), A | D, "and D by a write");

	load_cr3(1);
	kstore(UPAGE + 20, 0x5050);
	load_cr3(0);
	kstore(UPAGE + 20, 0x5151);
	ok(last_trap.count == 0 && *(u32 *)&frames[0][20] == 0x5151 && *(u32 *)&frames[1][20] == 0x5050,
	   "a store to a user page, in two spaces");
	*pte(0, UPAGE) &= ~W;
	reload_cr3();
	kstore(UPAGE + 20, 0x5252);
	ok(last_trap.vector == 14 && last_trap.error == (P | W) && last_trap.eip == store_at && read_cr2() == UPAGE + 20 &&
	   *(u32 *)&frames[0][20] == 0x5151,
	   "the same store after the page turned read-only (CR3 reload): #PF(P|W) with WP = 1");
	load_cr3(2);
	load_cr3(0);
	kstore(UPAGE + 20, 0x5353);
	ok(last_trap.vector == 14 && last_trap.error == (P | W) && *(u32 *)&frames[0][20] == 0x5151,
	   "and after another space ran in between");
	*pte(0, UPAGE) |= W;
	reload_cr3();
	load_cr3(1);
	kstore(UPAGE + 0x1000, 1);
	ok(last_trap.vector == 14 && last_trap.error == W && read_cr2() == UPAGE + 0x1000,
	   "a store to a page space 1 does not map: #PF(W)");
	trap_reset();
	is_u32(kread(UPAGE + 8), 0x2008, "space 1 reads on");

	u32 regs[3];
	load_cr3(1);
	kcopy_regs((u32)kbuf, UPAGE + 0x100, 16, regs);
	load_cr3(0);
	kcopy_regs((u32)kbuf, UPAGE + 0xFF8, 16, regs);
	ok(last_trap.count == 0 && regs[0] == 0 && *(u32 *)&kbuf[8] == 0x6A6A,
	   "rep movsb runs on into space 0's second page");
	load_cr3(1);
	kcopy_regs((u32)kbuf, UPAGE + 0xFF8, 16, regs);
	ok(last_trap.vector == 14 && last_trap.error == 0 && read_cr2() == UPAGE + 0x1000,
	   "in space 1 it stops at the unmapped page with #PF(0)");
	ok(regs[0] == 8 && regs[1] == UPAGE + 0x1000 && regs[2] == (u32)kbuf + 8,
	   "with ECX, ESI and EDI where the copy stopped");
	trap_reset();
	load_cr3(0);
	is_u32(kread(UPAGE + 0xFF8), 0x1FF8, "and space 0 still reads its own frame");
}
