/* Ring-3 compute under paging: the harness's CRC-32 kernel over 64 KiB, 4,096
 * times, each round's result folded into the buffer, in a process that
 * enters the kernel only to report.  The kernel prints the results, so
 * QEMU checks them; with --ring3=direct it is the guest whose time goes
 * almost all to direct execution (the guest_direct_compute3 and nested
 * tests read that from --stats). */
#include "rt/rt.h"
#include "../../bench/compute_kernel.h" /* relative to tests/guests */

#define ROUNDS 4096

static u32 pd[1024] __attribute__((aligned(4096)));
static u32 tss[26];
static u8 kstack[8192] __attribute__((aligned(16)));
static u8 ustack[8192] __attribute__((aligned(16)));
static unsigned char buf[KERNEL_BYTES];

/* System calls: rt's reports, 5 print ebx (a round's CRC), 3 the end. */
static void sys(struct trap_frame *f)
{
	if (user_report(f))
		return;
	if (f->eax == 5)
		printf_serial("crc %x\n", f->ebx);
	if (f->eax == 3) {
		ok((f->cs & 3) == 3, "the program ends by a system call from ring 3");
		done();
	}
}

static void user_main(void)
{
	u32 c = 0;
	for (u32 r = 0; r < ROUNDS; r++) {
		buf[(r * 4099u) % KERNEL_BYTES] ^= (unsigned char)c;
		c = crc_kernel(buf, KERNEL_BYTES);
		if (r % 2048 == 2047)
			__asm__ volatile("int $0x80" : : "a"(5), "b"(c) : "memory");
	}
	UOK(c != 0, "ring 3 computed");
	__asm__ volatile("int $0x80" : : "a"(3));
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(2);
	crc_init();
	for (u32 i = 0; i < KERNEL_BYTES; i++)
		buf[i] = (unsigned char)(i * 7 + (i >> 8));
	for (u32 i = 0; i < 4; i++)
		pd[i] = (i << 22) | 0x87; /* 16 MiB identity, 4 MiB user pages */
	user_mode_setup(tss, sizeof tss, (u32)kstack + sizeof kstack);
	syscall_hook = sys;
	pic_pit_100hz(0xFF); /* no interrupts: the process runs alone */
	__asm__ volatile("movl %%cr4, %%eax; orl $0x10, %%eax; movl %%eax, %%cr4\n"
			 "movl %0, %%cr3\n"
			 "movl %%cr0, %%eax; orl $0x80010000, %%eax; movl %%eax, %%cr0\n"
			 "jmp 1f\n1:" : : "r"(pd) : "eax", "memory");
	enter_user(user_main, (u32)ustack + sizeof ustack);
}
