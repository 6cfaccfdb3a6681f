/* A process with more memory than host mappings can hold (run with -m 512):
 * 400 MiB of user pages on frames in a scattered order, written page by
 * page, read back in a random order, with stores and loads that run onto
 * the next page (whose frame lies elsewhere), then checked from the kernel
 * through the frames themselves.  bt86 serves the first pages through its
 * soft TLB (a young process), then the user view's host mappings, and
 * once those fill up the soft TLB again for good (stlb.h): every phase must
 * see the same memory. */
#include "rt/rt.h"

#define P 0x1u
#define W 0x2u
#define U 0x4u
#define PS 0x80u
#define WIN 0x40000000u           /* the process's memory: PAGES pages from here */
#define PAGES (400u * 256u)       /* 400 MiB */
#define PT_BASE 0x2000000u        /* its page tables: 100 of them at 32 MiB */
#define FRAME_BASE 0x4000000u     /* its frames: 64 MiB to 464 MiB */
#define RAM_PDES 128u             /* 512 MiB identity-mapped with 4 MiB pages */
#define CROSS_EVERY 7u            /* every 7th page gets a store running onto the next */

static u32 pd[1024] __attribute__((aligned(4096)));
static u32 tss[26];
static u8 kstack[8192] __attribute__((aligned(16)));
static u8 ustack[8192] __attribute__((aligned(16)));

/* Window page i lives on frame FRAME_BASE / 4 KiB + scatter(i): a
 * permutation (40503 is prime to 102400), so neighbours are far apart. */
static u32 scatter(u32 i)
{
	return (u32)(((u64)i * 40503u) % PAGES);
}

static u32 frame_of(u32 i)
{
	return FRAME_BASE + scatter(i) * 4096u;
}

/* What page i holds at offset 0x10. */
static u32 value(u32 i)
{
	return (i * 0x9E3779B1u) ^ 0x5BD1E995u;
}

/* What the store at page i's offset 0xFFE (running onto page i + 1) wrote. */
static u32 cross_value(u32 i)
{
	return (i * 0x85EBCA6Bu) ^ 0xC2B2AE35u;
}

static u32 rd(u32 addr)
{
	return *(volatile u32 *)addr;
}

/* The kernel's look at the frames: each page's value and each crossing
 * store's four bytes, two on each frame.  Returns the number of pages that
 * differ. */
static u32 check_frames(void)
{
	u32 bad = 0;
	for (u32 i = 0; i < PAGES; i++) {
		u32 f = frame_of(i);
		int good = rd(f + 0x10) == value(i);
		if (i % CROSS_EVERY == 0 && i + 1 < PAGES) {
			u32 v = cross_value(i), g = frame_of(i + 1);
			good &= *(volatile u16 *)(f + 0xFFE) == (v & 0xFFFF) && *(volatile u16 *)g == v >> 16;
		}
		bad += !good;
	}
	return bad;
}

/* System calls: rt's reports (user_report), 3 end, 4 check the frames
 * (the count of bad pages in eax). */
static void sys(struct trap_frame *f)
{
	if (user_report(f))
		return;
	if (f->eax == 3)
		done();
	if (f->eax == 4)
		f->eax = check_frames();
}

static void user_main(void)
{
	for (u32 i = 0; i < PAGES; i++)
		write32(WIN + i * 4096 + 0x10, value(i));
	for (u32 i = 0; i + 1 < PAGES; i += CROSS_EVERY)
		write32(WIN + i * 4096 + 0xFFE, cross_value(i));

	u32 bad = 0;
	for (u32 i = 0; i < PAGES; i++)
		bad += read32(WIN + i * 4096 + 0x10) != value(i);
	UIS(bad, 0, "400 MiB written page by page read back in order");

	bad = 0;
	u32 x = 12345;
	for (u32 n = 0; n < 300000; n++) {
		x = x * 1103515245u + 12345u;
		u32 i = (x >> 8) % PAGES;
		bad += read32(WIN + i * 4096 + 0x10) != value(i);
	}
	UIS(bad, 0, "300,000 reads of random pages");

	bad = 0;
	for (u32 i = 0; i + 1 < PAGES; i += CROSS_EVERY)
		bad += read32(WIN + i * 4096 + 0xFFE) != cross_value(i);
	UIS(bad, 0, "loads running onto the next page, whose frame is elsewhere");

	bad = 0;
	for (u32 i = PAGES; i-- > 0;) {
		u32 a = WIN + i * 4096 + 0x20;
		write32(a, read32(a - 0x10) + 1);
		bad += read32(a) != value(i) + 1;
	}
	UIS(bad, 0, "a second pass, top down, writes and reads each page again");

	u32 frames_bad;
	__asm__ volatile("int $0x80" : "=a"(frames_bad) : "a"(4) : "memory");
	UIS(frames_bad, 0, "each page's bytes are in its own frame");
	__asm__ volatile("int $0x80" : : "a"(3));
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	u32 mem_upper = ((volatile u32 *)mbi)[2]; /* KiB above 1 MiB */
	plan(1 + 5);
	if (mem_upper < 500u * 1024u) {
		ok(0, "the guest needs -m 512");
		done();
	}
	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	syscall_hook = sys;
	pic_pit_100hz(0xFF); /* no interrupts: the process runs alone */

	/* 0-16 MiB user-accessible (the test's code and stacks), the rest of
	 * RAM supervisor-only: all 4 MiB pages. */
	for (u32 i = 0; i < RAM_PDES; i++)
		pd[i] = (i << 22) | P | W | PS | (i < 4 ? U : 0);
	u32 *pt = (u32 *)PT_BASE;
	for (u32 i = 0; i < PAGES; i++)
		pt[i] = frame_of(i) | P | W | U;
	for (u32 t = 0; t < PAGES / 1024; t++)
		pd[(WIN >> 22) + t] = (PT_BASE + t * 4096u) | P | W | U;
	__asm__ volatile("movl %%cr4, %%eax; orl $0x10, %%eax; movl %%eax, %%cr4\n"
			 "movl %0, %%cr3\n"
			 "movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n"
			 "jmp 1f\n1:" : : "r"(pd) : "eax", "memory");
	ok(1, "paging on with 400 MiB of user pages");

	enter_user(user_main, (u32)ustack + sizeof ustack);
}
