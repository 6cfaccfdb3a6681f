/* SMAP (run against QEMU with -cpu qemu32,+smap): with CR4.SMAP, ring 0's
 * data reads and writes of a user page take #PF (P, and W for a write)
 * unless EFLAGS.AC is set (stac, or popf), and clac makes them fault
 * again; the same instruction keeps obeying AC after it has run many
 * times (translated code marked as the kernel's access to user memory
 * checks AC itself), string instructions too; without SMAP ring 0 reads
 * user pages whatever AC says; stac and clac at ring 3 are #UD. */
#include "rt/rt.h"

#define USER_PAGE 0x7u  /* P, W, U */
#define KERNEL_4M 0x83u /* P, W, PS */
#define UDATA 0x400000u
#define SMAP 0x200000u

static u32 pd[1024] __attribute__((aligned(4096)));
static u32 pt[1024] __attribute__((aligned(4096)));
static u32 udata[1024] __attribute__((aligned(4096)));
static u8 kbuf[64];
static u32 tss[26];
static u8 kstack[8192] __attribute__((aligned(16)));

/* One load from an address, the same instruction each call; a #PF there
 * is counted and makes it return 0xDEADDEAD. */
void user_load(void);
void user_load_end(void);
__asm__(".text\n user_load: movl (%eax), %eax\n user_load_end: ret\n");
static u32 load_faults, load_error;

static u32 load_from(u32 addr)
{
	u32 v;
	__asm__ volatile("call user_load" : "=a"(v) : "a"(addr) : "memory", "cc");
	return v;
}

static int load_fault(struct trap_frame *f)
{
	if (f->vector != 14 || f->eip != (u32)user_load)
		return 0;
	load_faults++;
	load_error = f->error;
	f->eax = 0xDEADDEAD;
	f->eip = (u32)user_load_end;
	return 1;
}

static void user_main(void)
{
	u32 at;
	EXPECT_TRAP(at, "stac", "i"(0));
	UOK(last_trap.vector == 6, "stac at ring 3: #UD");
	EXPECT_TRAP(at, "clac", "i"(0));
	UOK(last_trap.vector == 6, "clac at ring 3: #UD");
	UIS(load_from(UDATA), 0x5EC0DE, "ring 3 reads its page");
	__asm__ volatile("int $0x80" : : "a"(3));
}

static void sys(struct trap_frame *f)
{
	if (user_report(f))
		return;
	if (f->eax == 3)
		done();
}

void test_main(u32 magic, u32 mbi)
{
	u32 at, r[4], v;
	(void)magic;
	(void)mbi;
	plan(20);

	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(7), "c"(0));
	ok(r[1] & (1u << 20), "CPUID.7.0:EBX reports SMAP");

	fault_hook = load_fault;
	udata[0] = 0x5EC0DE;
	for (u32 i = 0; i < 16; i++)
		udata[16 + i] = 0x01010101u * i;
	pd[0] = 0 | KERNEL_4M; /* the kernel's 4 MiB */
	pd[1] = (u32)pt | USER_PAGE;
	pt[0] = (u32)udata | USER_PAGE;
	__asm__ volatile("movl %%cr4, %%eax; orl $0x10, %%eax; movl %%eax, %%cr4\n"
			 "movl %0, %%cr3\n"
			 "movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n"
			 "jmp 1f\n1:" : : "r"(pd) : "eax", "memory");

	is_u32(load_from(UDATA), 0x5EC0DE, "without SMAP ring 0 reads a user page");
	cr4_set_bits(SMAP, SMAP);
	EXPECT_TRAP(at, "movl (%%eax), %%eax", "a"(UDATA));
	v = read_cr2();
	printf_serial("SMAP read: vector %u error %x cr2 %x\n", last_trap.vector, last_trap.error, v);
	ok(last_trap.vector == 14 && last_trap.error == 1 && v == UDATA && last_trap.eip == at,
	   "with SMAP and AC clear a read takes #PF(P)");
	EXPECT_TRAP(at, "movl %%eax, 4(%%eax)", "a"(UDATA));
	printf_serial("SMAP write: vector %u error %x cr2 %x\n", last_trap.vector, last_trap.error, read_cr2());
	ok(last_trap.vector == 14 && last_trap.error == 3 && read_cr2() == UDATA + 4, "a write #PF(P | W)");
	__asm__ volatile("stac");
	ok(read_eflags() & 0x40000, "stac sets AC");
	is_u32(load_from(UDATA), 0x5EC0DE, "with AC the read goes through");
	*(volatile u32 *)(UDATA + 8) = 0x1234;
	is_u32(udata[2], 0x1234, "and so does a write");
	__asm__ volatile("clac");
	ok(!(read_eflags() & 0x40000), "clac clears AC");
	EXPECT_TRAP(at, "movl (%%eax), %%eax", "a"(UDATA));
	ok(last_trap.vector == 14 && last_trap.error == 1, "and the read faults again");

	/* The same load many times with AC, then without. */
	u32 sum = 0;
	__asm__ volatile("stac");
	for (u32 i = 0; i < 1000; i++)
		sum += load_from(UDATA + 64 + 4 * (i & 15));
	__asm__ volatile("clac");
	is_u32(sum, (1000 / 16 * 120 + 28) * 0x01010101u, "one load run 1,000 times with AC");
	is_u32(load_from(UDATA), 0xDEADDEAD, "and faults once AC is clear");
	ok(load_faults == 1 && load_error == 1 && read_cr2() == UDATA, "with #PF(P) at the address");

	/* String instructions. */
	u32 si = UDATA + 64, di = (u32)kbuf, cx = 64;
	__asm__ volatile("stac\n cld\n rep movsb\n clac" : "+S"(si), "+D"(di), "+c"(cx) : : "memory");
	is_u32(*(u32 *)(kbuf + 60), 0x0F0F0F0Fu, "rep movsb from a user page with AC");
	EXPECT_TRAP(at, "cld\n rep movsb", "S"(UDATA + 64), "D"(kbuf), "c"(64));
	ok(last_trap.vector == 14 && last_trap.error == 1, "and without: #PF");

	/* AC from popf. */
	__asm__ volatile("pushfl\n orl $0x40000, (%%esp)\n popfl" : : : "memory", "cc");
	is_u32(load_from(UDATA), 0x5EC0DE, "AC set by popf lets the read through");
	__asm__ volatile("pushfl\n andl $~0x40000, (%%esp)\n popfl" : : : "memory", "cc");
	EXPECT_TRAP(at, "movl (%%eax), %%eax", "a"(UDATA));
	ok(last_trap.vector == 14, "and cleared by popf it faults");

	cr4_set_bits(SMAP, 0);
	is_u32(load_from(UDATA), 0x5EC0DE, "SMAP cleared: ring 0 reads it again without AC");

	/* Ring 3 runs the test's own code: the kernel's 4 MiB become user
	 * pages (SMAP is off now). */
	pd[0] |= 0x4;
	__asm__ volatile("movl %0, %%cr3" : : "r"(pd) : "memory");
	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	syscall_hook = sys;
	enter_user(user_main, UDATA + 4096);
}
