/* The memory-scaling sweep (run with -m 1024): for each working-set size
 * from 16 MiB to 512 MiB, a fresh address space whose ring-3 process first
 * touches every page (each touch a #PF that the kernel resolves by mapping
 * a frame, taken from a pool in a scattered order, as a kernel's allocator
 * hands them out) and then reads random words of it.  Prints
 * "sweep SIZE_MIB touch CYCLES_x100 read CYCLES_x100": cycles per first
 * touch and per random read, timed with rdtsc inside the guest, so the
 * figures of bt86 and QEMU are in the same host cycles. */
#include "rt/rt.h"

#define P 0x1u
#define W 0x2u
#define U 0x4u
#define PS 0x80u
#define USER_CS 0x3B
#define USER_DS 0x43
#define WIN 0x40000000u           /* the process's memory */
#define MAX_PAGES (512u * 256u)   /* 512 MiB */
#define PT_BASE 0x2000000u        /* its page tables, at 32 MiB */
#define FRAME_BASE 0x4000000u     /* the frame pool: 64 MiB to 576 MiB */
#define RAM_PDES 256u             /* 1 GiB identity-mapped with 4 MiB pages */
#define READS (1u << 20)

/* The first size warms up (the code translated, the caches primed) and
 * is not reported. */
static const u32 sizes_mib[] = {4, 16, 32, 64, 128, 256, 512};
#define SIZES (sizeof sizes_mib / sizeof sizes_mib[0])

static u32 pds[SIZES][1024] __attribute__((aligned(4096)));
static u32 tss[26];
static u8 kstack[8192] __attribute__((aligned(16)));
static u8 ustack[8192] __attribute__((aligned(16)));
static u32 next_frame;
static volatile u32 sink;

static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

/* The n-th frame the pool hands out: a permutation of its pages (40503 is
 * odd, so prime to the pool's 2^17 pages), neighbours far apart. */
static u32 pool_frame(u32 n)
{
	return FRAME_BASE + (u32)(((u64)n * 40503u) % MAX_PAGES) * 4096u;
}

/* #PF in the window: map the next frame there. */
static int page_fault(struct trap_frame *f)
{
	u32 cr2;
	if (f->vector != 14)
		return 0;
	__asm__ volatile("movl %%cr2, %0" : "=r"(cr2));
	if (cr2 < WIN || cr2 >= WIN + MAX_PAGES * 4096u)
		return 0;
	((u32 *)PT_BASE)[(cr2 - WIN) >> 12] = pool_frame(next_frame++) | P | W | U;
	return 1;
}

/* A fresh address space for sizes_mib[k]: nothing mapped in the window. */
static void new_space(u32 k)
{
	u32 pages = sizes_mib[k] * 256u;
	u32 *pt = (u32 *)PT_BASE;
	for (u32 i = 0; i < pages; i++)
		pt[i] = 0;
	for (u32 i = 0; i < RAM_PDES; i++)
		pds[k][i] = (i << 22) | P | W | PS | (i < 4 ? U : 0);
	for (u32 t = 0; t < pages / 1024; t++)
		pds[k][(WIN >> 22) + t] = (PT_BASE + t * 4096u) | P | W | U;
	next_frame = 0;
	__asm__ volatile("movl %0, %%cr3" : : "r"(pds[k]) : "memory");
}

/* System calls: 3 end, 4 a new space for size index ebx, 5 the figures
 * of size index ebx (cycles x100 a touch in ecx, a read in edx). */
static void sys(struct trap_frame *f)
{
	if (f->eax == 3)
		done();
	if (f->eax == 4)
		new_space(f->ebx);
	if (f->eax == 5 && f->ebx > 0)
		printf_serial("sweep %u touch %u read %u\n", sizes_mib[f->ebx], f->ecx, f->edx);
}

static void user_main(void)
{
	for (u32 k = 0; k < SIZES; k++) {
		u32 pages = sizes_mib[k] * 256u;
		__asm__ volatile("int $0x80" : : "a"(4), "b"(k) : "memory");
		u64 t0 = rdtsc();
		for (u32 i = 0; i < pages; i++)
			*(volatile u32 *)(WIN + i * 4096u) = i;
		u64 t1 = rdtsc();
		u32 x = 12345, sum = 0;
		for (u32 n = 0; n < READS; n++) {
			x = x * 1103515245u + 12345u;
			sum += *(volatile u32 *)(WIN + ((x >> 2) % pages) * 4096u + (x & 0xFFCu));
		}
		u64 t2 = rdtsc();
		u32 touch = (u32)((t1 - t0) * 100 / pages), read = (u32)((t2 - t1) * 100 / READS);
		sink = sum;
		__asm__ volatile("int $0x80" : : "a"(5), "b"(k), "c"(touch), "d"(read) : "memory");
	}
	__asm__ volatile("int $0x80" : : "a"(3));
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	u32 mem_upper = ((volatile u32 *)mbi)[2]; /* KiB above 1 MiB */
	if (mem_upper < 1000u * 1024u) {
		puts_serial("memsweep: needs -m 1024\n");
		done();
	}
	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	syscall_hook = sys;
	fault_hook = page_fault;
	pic_pit_100hz(0xFF); /* no interrupts: the process runs alone */
	new_space(0);
	__asm__ volatile("movl %%cr4, %%eax; orl $0x10, %%eax; movl %%eax, %%cr4\n"
			 "movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n"
			 "jmp 1f\n1:" : : : "eax", "memory");
	__asm__ volatile("pushl %0\n pushl %1\n pushl $0x202\n pushl %2\n pushl %3\n"
			 "movw %w0, %%ax\n movw %%ax, %%ds\n movw %%ax, %%es\n"
			 "iret" : : "r"(USER_DS), "r"((u32)ustack + sizeof ustack), "r"(USER_CS),
			 "r"((u32)user_main) : "eax", "memory");
}
