/* Exceptions and software interrupts through the guest IDT at ring 0:
 * vector, error code, and the EIP the CPU pushes for faults and traps. */
#include "rt/rt.h"

extern void trap_stub_13(void);

void test_main(u32 magic, u32 mbi)
{
	u32 at;
	(void)magic;
	(void)mbi;
	plan(23);

	EXPECT_TRAP(at, "divl %%ecx", "a"(1), "d"(0), "c"(0));
	ok(last_trap.vector == 0 && last_trap.eip == at, "#DE from div by zero, EIP of the div");
	EXPECT_TRAP(at, "idivl %%ecx", "a"(0x80000000), "d"(0xFFFFFFFF), "c"(-1));
	ok(last_trap.vector == 0 && last_trap.eip == at, "#DE from idiv overflow");
	EXPECT_TRAP(at, "ud2");
	ok(last_trap.vector == 6 && last_trap.eip == at, "#UD from ud2, EIP of the ud2");
	EXPECT_TRAP(at, ".byte 0x0f, 0xff");
	ok(last_trap.vector == 6 && last_trap.eip == at, "#UD from an undefined opcode");
	EXPECT_TRAP(at, ".byte 0xf3, 0x0f, 0xae, 0xd8"); /* wrgsbase %eax: 64-bit mode only */
	ok(last_trap.vector == 6 && last_trap.eip == at, "#UD from wrgsbase's bytes in ring 0");
	EXPECT_TRAP(at, "movw %%ax, %%ds", "a"(0x80));
	ok(last_trap.vector == 13 && last_trap.error == 0x80 && last_trap.eip == at,
	   "#GP(selector) loading DS past the GDT limit");
	EXPECT_TRAP(at, "movw %%ax, %%ss", "a"(0x08));
	ok(last_trap.vector == 13 && last_trap.error == 0x08, "#GP(selector) loading SS with code");
	EXPECT_TRAP(at, "movw %%ax, %%ds", "a"(0x28 | 0));
	ok(last_trap.vector == 13 || last_trap.vector == 11, "#GP or #NP for a null descriptor slot");
	EXPECT_TRAP(at, "int $0x81");
	ok(last_trap.vector == 13 && last_trap.error == 0x81 * 8 + 2 && last_trap.eip == at,
	   "#GP(IDT vector) for int to an empty gate");
	EXPECT_TRAP(at, "movl %%cr1, %%eax", "a"(0));
	ok(last_trap.vector == 6, "#UD for mov from CR1");
	static u8 sse_buf[64] __attribute__((aligned(16)));
	__asm__ volatile("movl %%cr4, %%eax; orl $0x200, %%eax; movl %%eax, %%cr4" : : : "eax");
	EXPECT_TRAP(at, "movaps (%%eax), %%xmm0", "a"(sse_buf + 1));
	ok(last_trap.vector == 13 && last_trap.error == 0 && last_trap.eip == at,
	   "#GP(0) from a misaligned movaps, raised by the host CPU");
	ok(last_trap.cs == 0x08, "the frame holds the interrupted CS");

	trap_reset();
	__asm__ volatile("int3\n1: movl $1b, %0" : "=r"(at));
	ok(last_trap.vector == 3 && last_trap.eip == at, "#BP from int3, EIP after it");
	trap_reset();
	__asm__ volatile("int $48\n1: movl $1b, %0" : "=r"(at));
	ok(last_trap.vector == 48 && last_trap.eip == at, "int $48 through its gate, EIP after it");
	trap_reset();
	__asm__ volatile("movl $0x7fffffff, %%eax; addl $1, %%eax; into\n1: movl $1b, %0" : "=r"(at) : : "eax", "cc");
	ok(last_trap.vector == 4 && last_trap.eip == at, "into with OF set raises #OF");
	trap_reset();
	__asm__ volatile("xorl %%eax, %%eax; into" : : : "eax", "cc");
	ok(last_trap.count == 0, "into with OF clear does nothing");

	__asm__ volatile("sti");
	trap_reset();
	__asm__ volatile("int $48");
	ok(!(read_eflags() & 0x200) == 0 && (last_trap.eflags & 0x200), "the frame holds IF = 1 and iret restores it");
	__asm__ volatile("cli");
	trap_reset();
	__asm__ volatile("int $48");
	ok(!(last_trap.eflags & 0x200), "the frame holds IF = 0");

	u32 esp_before, esp_after;
	__asm__ volatile("movl %%esp, %0" : "=r"(esp_before));
	EXPECT_TRAP(at, "ud2");
	__asm__ volatile("movl %%esp, %0" : "=r"(esp_after));
	is_u32(esp_after, esp_before, "ESP is balanced after a fault and iret");

	/* A #GP whose gate is not present: #NP while delivering #GP -> #DF. */
	u64 *idt;
	struct __attribute__((packed)) { u16 limit; u32 base; } d;
	__asm__ volatile("sidt %0" : "=m"(d));
	idt = (u64 *)d.base;
	u64 saved = idt[13];
	idt[13] &= ~(1ull << 47);
	EXPECT_TRAP(at, "movw %%ax, %%ds", "a"(0x80));
	idt[13] = saved;
	ok(last_trap.vector == 8 && last_trap.error == 0, "#NP while delivering #GP becomes #DF(0)");
	EXPECT_TRAP(at, "movl %%eax, %%ds:0", "a"(0));
	ok(last_trap.count == 0, "no fault for a store to linear 0 with paging off");
	u32 val = 0;
	__asm__ volatile("movl $0x12345678, %%eax; movl %%eax, %%ds:8; movl %%ds:8, %0" : "=r"(val) : : "eax", "memory");
	is_u32(val, 0x12345678, "memory at linear 8 reads back");
	(void)trap_stub_13;
	u32 sum = 0;
	for (int i = 0; i < 200; i++) {
		EXPECT_TRAP(at, "ud2");
		sum += last_trap.vector;
	}
	is_u32(sum, 200 * 6, "200 faults in a loop");
}
