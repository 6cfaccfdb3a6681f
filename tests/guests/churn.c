/* A page that churns at ring 0: its PTE rewritten and invlpg'd over and
 * over, as Linux's kmap_atomic slots are.  bt86 moves the kernel
 * instructions that touch such a page to ring 0's soft TLB (stlb.h); the
 * checks are what any TLB must give, compared with QEMU: every remap seen
 * at once by reads of each size, writes, read-modify-writes and accesses
 * running onto the next page; the same instructions on ordinary pages; A
 * and D; #PF for a read-only page under WP = 1 and for an absent one, and
 * the write allowed under WP = 0; a store to a frame holding code, then
 * run; another page directory's mapping after a CR3 load. */
#include "rt/rt.h"

#define P 0x1u
#define W 0x2u
#define A 0x20u
#define D 0x40u

#define CHURN 0x40000000u
#define FRAMES 8

static u32 pd[1024] __attribute__((aligned(4096))), pd2[1024] __attribute__((aligned(4096)));
static u32 pt_low[4][1024] __attribute__((aligned(4096)));  /* identity 0-16 MiB */
static u32 pt_test[1024] __attribute__((aligned(4096)));    /* CHURN and the page after it */
static u32 pt_test2[1024] __attribute__((aligned(4096)));   /* the same under pd2 */
static u8 frames[FRAMES][4096] __attribute__((aligned(4096)));
static u8 next_frame[4096] __attribute__((aligned(4096)));
static u8 code_frame[4096] __attribute__((aligned(4096)));

static void remap(u32 entry)
{
	pt_test[0] = entry;
	__asm__ volatile("invlpg (%0)" : : "r"(CHURN) : "memory");
}

static u8 pattern(u32 frame, u32 off)
{
	return (u8)(frame * 31u + off * 7u + 1u);
}

/* Little-endian bytes at `off` of frame `f`, running into next_frame. */
static u32 expect(u32 f, u32 off, u32 size)
{
	u32 v = 0;
	for (u32 i = 0; i < size; i++) {
		u32 o = off + i;
		v |= (u32)(o < 4096 ? frames[f][o] : next_frame[o - 4096]) << (8 * i);
	}
	return v;
}

/* Each access one instruction at one site, so that the sites seen on the
 * churning page are the ones marked. */
static __attribute__((noinline)) u32 rd8(u32 a)
{
	u32 v;
	__asm__ volatile("movzbl (%1), %0" : "=r"(v) : "r"(a) : "memory");
	return v;
}
static __attribute__((noinline)) u32 rd16(u32 a)
{
	u32 v;
	__asm__ volatile("movzwl (%1), %0" : "=r"(v) : "r"(a) : "memory");
	return v;
}
static __attribute__((noinline)) u32 rd32(u32 a)
{
	u32 v;
	__asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(a) : "memory");
	return v;
}
static __attribute__((noinline)) u32 add32(u32 a, u32 v)
{
	__asm__ volatile("addl (%1), %0" : "+r"(v) : "r"(a) : "memory", "cc");
	return v;
}
static __attribute__((noinline)) void wr32(u32 a, u32 v)
{
	__asm__ volatile("movl %1, (%0)" : : "r"(a), "r"(v) : "memory");
}
static __attribute__((noinline)) void wr8(u32 a, u32 v)
{
	__asm__ volatile("movb %b1, (%0)" : : "r"(a), "q"(v) : "memory");
}
static __attribute__((noinline)) void inc32(u32 a)
{
	__asm__ volatile("incl (%0)" : : "r"(a) : "memory", "cc");
}

static void set_wp(int on)
{
	if (on)
		__asm__ volatile("movl %%cr0, %%eax; orl $0x10000, %%eax; movl %%eax, %%cr0" : : : "eax");
	else
		__asm__ volatile("movl %%cr0, %%eax; andl $~0x10000, %%eax; movl %%eax, %%cr0" : : : "eax");
}

void test_main(u32 magic, u32 mbi)
{
	u32 at, bad;
	(void)magic;
	(void)mbi;
	plan(16);
	for (u32 i = 0; i < 4 * 1024; i++)
		pt_low[i / 1024][i % 1024] = (i << 12) | P | W;
	for (u32 i = 0; i < 4; i++)
		pd[i] = pd2[i] = (u32)pt_low[i] | P | W;
	pd[CHURN >> 22] = (u32)pt_test | P | W;
	pd2[CHURN >> 22] = (u32)pt_test2 | P | W;
	for (u32 f = 0; f < FRAMES; f++)
		for (u32 o = 0; o < 4096; o++)
			frames[f][o] = pattern(f, o);
	for (u32 o = 0; o < 4096; o++)
		next_frame[o] = pattern(FRAMES, o);
	pt_test[0] = (u32)frames[0] | P | W;
	pt_test[1] = (u32)next_frame | P | W;
	pt_test2[0] = (u32)frames[5] | P | W;
	__asm__ volatile("movl %0, %%cr3\n"
			 "movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n" /* PG, WP */
			 "jmp 1f\n1:" : : "r"(pd) : "eax", "memory");

	/* Reads of each size after each remap, some running onto the next
	 * page, and the same instructions on an ordinary page between. */
	bad = 0;
	for (u32 i = 0; i < 200; i++) {
		u32 f = (i * 3) % FRAMES, off = (i * 997u) % 4096;
		if (i % 16 == 5)
			off = 4093 + i % 3; /* a 4-byte read runs onto the next page */
		remap((u32)frames[f] | P | W);
		bad += rd8(CHURN + off) != expect(f, off, 1);
		bad += rd16(CHURN + off) != expect(f, off, 2);
		bad += rd32(CHURN + off) != expect(f, off, 4);
		bad += add32(CHURN + off, 5) != expect(f, off, 4) + 5;
		bad += rd32((u32)&frames[7][off & ~3u]) != expect(7, off & ~3u, 4);
	}
	is_u32(bad, 0, "each remap of the churning page is seen by the next read of every size");

	/* Writes, and read-modify-writes, land in the frame mapped now. */
	bad = 0;
	for (u32 i = 0; i < 100; i++) {
		u32 f = (i * 5) % FRAMES, off = (i * 613u) % 4092;
		remap((u32)frames[f] | P | W);
		wr32(CHURN + off, 0xA5000000u | i);
		inc32(CHURN + off);
		wr8(CHURN + off + 3, 0x5A);
		u32 got = frames[f][off] | frames[f][off + 1] << 8 | frames[f][off + 2] << 16 |
			  (u32)frames[f][off + 3] << 24;
		bad += got != (0x5A000000u | (i + 1));
	}
	is_u32(bad, 0, "writes through the churning page reach the frame mapped at the time");
	remap((u32)frames[6] | P | W);
	wr32(CHURN + 4094, 0x11223344u);
	ok(frames[6][4094] == 0x44 && frames[6][4095] == 0x33 && next_frame[0] == 0x22 && next_frame[1] == 0x11,
	   "a write running onto the next page splits between the two frames");

	/* A and D as the walk sets them. */
	remap((u32)frames[2] | P | W);
	rd32(CHURN + 8);
	is_u32(pt_test[0] & (A | D), A, "a read through a fresh mapping sets A only");
	wr32(CHURN + 8, 1);
	is_u32(pt_test[0] & (A | D), A | D, "a write then sets D");
	remap((u32)frames[3] | P | W | A);
	add32(CHURN + 12, 0);
	inc32(CHURN + 12);
	is_u32(pt_test[0] & (A | D), A | D, "a read-modify-write of a clean page sets D");

	/* Faults: the same store site, writable mappings first, then
	 * read-only ones under WP = 1 (#PF with P|W), then under WP = 0. */
	bad = 0;
	for (u32 i = 0; i < 8; i++) {
		remap((u32)frames[4] | P | (i < 4 ? W : 0));
		EXPECT_TRAP(at, "movl %%eax, (%%ecx)", "a"(0xC0DE0000u | i), "c"(CHURN + 64));
		int want_count = i < 4 ? 0 : 1;
		bad += last_trap.count != want_count;
		if (i >= 4)
			bad += last_trap.vector != 14 || last_trap.error != (P | W) || last_trap.eip != at ||
			       read_cr2() != CHURN + 64;
	}
	is_u32(bad, 0, "a store to the page made read-only faults with #PF(P|W) and CR2 under WP = 1");
	is_u32(rd32((u32)&frames[4][64]), 0xC0DE0003u, "and the frame holds the last allowed store");
	set_wp(0);
	bad = 0;
	for (u32 i = 0; i < 4; i++) {
		remap((u32)frames[4] | P);
		EXPECT_TRAP(at, "movl %%eax, (%%ecx)", "a"(0xBEEF0000u | i), "c"(CHURN + 64));
		bad += last_trap.count != 0;
	}
	set_wp(1);
	ok(bad == 0 && rd32((u32)&frames[4][64]) == 0xBEEF0003u, "under WP = 0 the supervisor store goes through");
	bad = 0;
	for (u32 i = 0; i < 8; i++) {
		remap(i < 4 ? ((u32)frames[1] | P | W) : 0);
		EXPECT_TRAP(at, "cmpl $0, (%%ecx)", "c"(CHURN + 100));
		bad += last_trap.count != (i < 4 ? 0 : 1);
		if (i >= 4)
			bad += last_trap.vector != 14 || last_trap.error != 0 || last_trap.eip != at ||
			       read_cr2() != CHURN + 100;
	}
	is_u32(bad, 0, "a read of the page once absent faults with #PF(0) and CR2");
	remap(0);
	EXPECT_TRAP(at, "movl %%eax, (%%ecx)", "a"(0), "c"(CHURN + 200));
	ok(last_trap.count == 1 && last_trap.error == W && read_cr2() == CHURN + 200,
	   "and a store to it with #PF(W)");

	/* A frame holding code, written through the churning page. */
	static const u8 code[] = {0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3}; /* mov $1, %eax; ret */
	for (u32 i = 0; i < sizeof code; i++)
		code_frame[i] = code[i];
	u32 (*fn)(void) = (u32(*)(void))(void *)code_frame;
	is_u32(fn(), 1, "the code frame runs");
	remap((u32)code_frame | P | W);
	wr8(CHURN + 1, 2);
	is_u32(fn(), 2, "a store to it through the churning page changes what runs");
	wr32(CHURN + 1, 3);
	is_u32(fn(), 3, "and so does the next");

	/* Another page directory maps the page elsewhere. */
	remap((u32)frames[0] | P | W);
	u32 here = rd32(CHURN + 16);
	__asm__ volatile("movl %0, %%cr3" : : "r"(pd2) : "memory");
	u32 there = rd32(CHURN + 16);
	__asm__ volatile("movl %0, %%cr3" : : "r"(pd) : "memory");
	ok(here == expect(0, 16, 4) && there == expect(5, 16, 4) && rd32(CHURN + 16) == here,
	   "a CR3 load brings the other directory's mapping, and back");
	remap((u32)frames[1] | P | W);
	ok(rd32(CHURN + 20) == expect(1, 20, 4), "and the page still follows its remaps");
	done();
}
