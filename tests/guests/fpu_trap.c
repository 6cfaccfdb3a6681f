/* CR0.TS and CR0.EM (SDM vol. 3 2.5, 13.4): with TS set x87, MMX and SSE
 * instructions take #NM at their own address, also one that ran many
 * times before; wait only with MP too; fences do not; clts lets them run
 * again; with EM x87 takes #NM and SSE #UD (the tasks guest checks that
 * a task switch sets TS). */
#include "rt/rt.h"

#define TS 0x8u
#define EM 0x4u
#define MP 0x2u

static u32 cr0_read(void)
{
	u32 v;
	__asm__ volatile("movl %%cr0, %0" : "=r"(v));
	return v;
}

static void cr0_set(u32 clear, u32 set)
{
	__asm__ volatile("movl %%cr0, %%eax; andl %0, %%eax; orl %1, %%eax; movl %%eax, %%cr0"
			 : : "r"(~clear), "r"(set) : "eax", "memory");
}

/* one_into(out): fld1; fistp: 1 into *out, the same instructions each
 * call; a #NM at its fld1 is counted and makes it return at once. */
void one_into(u32 *out);
void one_fld1(void);
void one_ret(void);
__asm__(".text\n one_into: movl 4(%esp), %eax\n one_fld1: fld1\n fistpl (%eax)\n one_ret: ret\n");
static u32 nm_count;

static int nm_hook(struct trap_frame *f)
{
	if (f->vector != 7 || f->eip != (u32)one_fld1)
		return 0;
	nm_count++;
	f->eip = (u32)one_ret;
	return 1;
}

void test_main(u32 magic, u32 mbi)
{
	u32 at, v = 0;
	(void)magic;
	(void)mbi;
	plan(14);
	__asm__ volatile("movl %%cr4, %%eax; orl $0x600, %%eax; movl %%eax, %%cr4\n" /* OSFXSR, OSXMMEXCPT */
			 "fninit" : : : "eax");
	cr0_set(TS | EM | MP, 0x20);
	fault_hook = nm_hook;

	for (int i = 0; i < 100; i++)
		one_into(&v);
	is_u32(v, 1, "TS clear: x87 runs");
	cr0_set(0, TS);
	EXPECT_TRAP(at, "fld1", "i"(0));
	ok(last_trap.vector == 7 && last_trap.eip == at, "TS set: fld1 takes #NM at its address");
	v = 0;
	one_into(&v);
	ok(nm_count == 1 && v == 0, "code that ran 100 times takes #NM too");
	EXPECT_TRAP(at, "movaps %%xmm1, %%xmm0", "i"(0));
	ok(last_trap.vector == 7, "an SSE instruction: #NM");
	EXPECT_TRAP(at, "movq %%mm1, %%mm0", "i"(0));
	ok(last_trap.vector == 7, "an MMX instruction: #NM (movq)");
	EXPECT_TRAP(at, "fxsave (%%eax)", "a"(0x200000));
	ok(last_trap.vector == 7, "fxsave: #NM");
	trap_reset();
	__asm__ volatile("wait\n lfence\n sfence");
	ok(last_trap.count == 0, "wait without MP, and fences, run with TS");
	cr0_set(0, MP);
	EXPECT_TRAP(at, "wait", "i"(0));
	ok(last_trap.vector == 7, "wait with TS and MP: #NM");
	ok(cr0_read() & TS, "TS still set");
	__asm__ volatile("clts");
	ok(!(cr0_read() & TS), "clts clears it");
	v = 0;
	one_into(&v);
	is_u32(v, 1, "and x87 runs again");

	cr0_set(0, EM);
	EXPECT_TRAP(at, "fld1", "i"(0));
	ok(last_trap.vector == 7, "EM set: x87 takes #NM");
	EXPECT_TRAP(at, "movaps %%xmm1, %%xmm0", "i"(0));
	ok(last_trap.vector == 6, "and SSE #UD");
	cr0_set(EM, 0);
	v = 0;
	one_into(&v);
	is_u32(v, 1, "EM clear: x87 runs");
}
