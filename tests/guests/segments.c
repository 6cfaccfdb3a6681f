/* Segment registers and descriptor tables at ring 0. */
#include "rt/rt.h"

static u64 ldt[4];
static u32 tss[26];
static volatile u32 probe = 0x5EC7;
static volatile u32 cell[2];

static u16 read_sel(int which)
{
	u16 s = 0;
	switch (which) {
	case 0: __asm__ volatile("movw %%cs, %0" : "=r"(s)); break;
	case 1: __asm__ volatile("movw %%ds, %0" : "=r"(s)); break;
	case 2: __asm__ volatile("movw %%ss, %0" : "=r"(s)); break;
	case 3: __asm__ volatile("movw %%es, %0" : "=r"(s)); break;
	case 4: __asm__ volatile("movw %%fs, %0" : "=r"(s)); break;
	default: __asm__ volatile("movw %%gs, %0" : "=r"(s)); break;
	}
	return s;
}

static u32 far_target(void)
{
	u32 r;
	__asm__ volatile("movl $0x77, %0" : "=r"(r));
	return r;
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(34);
	is_u32(read_sel(0), 0x08, "mov %cs reads the guest's CS");
	is_u32(read_sel(1), 0x10, "mov %ds reads the guest's DS");
	is_u32(read_sel(2), 0x10, "mov %ss reads the guest's SS");

	u32 v;
	__asm__ volatile("movw $0x20, %%ax; movw %%ax, %%ds; movl %1, %0; movw $0x10, %%ax; movw %%ax, %%ds"
			 : "=r"(v) : "m"(probe) : "eax");
	is_u32(v, 0x5EC7, "data is reachable through a reloaded DS");
	ok((gdt[4] >> 40) & 1, "loading DS sets the descriptor's accessed bit");
	u16 es;
	__asm__ volatile("movw $0x20, %%ax; movw %%ax, %%fs; pushl %%fs; popl %%eax; movw %%ax, %0;"
			 "pushl %%ds; popl %%es" : "=r"(es) : : "eax");
	is_u32(es, 0x20, "push %fs / pop carries the selector");
	is_u32(read_sel(3), 0x10, "push %ds / pop %es");
	u16 mem16 = 0xFFFF;
	__asm__ volatile("movw %%fs, %0" : "=m"(mem16));
	is_u32(mem16, 0x20, "mov %fs to memory stores the selector");

	/* push and pop through GS with a non-zero base (glibc's TLS idiom;
	 * the translator computes these linear addresses itself). */
	set_descriptor(7, (u32)cell - 0x100, 0xFFFFF, 0x92, 0xC);
	cell[0] = 0x1234ABCD;
	u32 got;
	for (int i = 0; i < 3; i++) /* translated once, then run from the cache */
		__asm__ volatile("movw $0x38, %%ax; movw %%ax, %%gs; movl $0x100, %%eax\n"
				 "pushl %%gs:(%%eax); popl %0\n"
				 "pushl $0x600DF00D; popl %%gs:4(%%eax)\n"
				 "movw $0x10, %%ax; movw %%ax, %%gs"
				 : "=r"(got) : : "eax", "memory");
	ok(got == 0x1234ABCD && cell[1] == 0x600DF00D, "push and pop through GS with a segment base");

	__asm__ volatile("ljmp $0x18, $1f\n1:");
	is_u32(read_sel(0), 0x18, "far jump reloads CS");
	__asm__ volatile("pushl $0x08; pushl $1f; lret\n1:");
	is_u32(read_sel(0), 0x08, "far return reloads CS");
	u32 r;
	__asm__ volatile("lcall $0x18, $far_entry\n"
			 "jmp 2f\n"
			 "far_entry: movl $0x18, %0\n"
			 "lret\n"
			 "2:" : "=r"(r));
	is_u32(r, 0x18, "far call and far return");
	(void)far_target;

	struct __attribute__((packed)) { u16 limit; u32 base; } d;
	__asm__ volatile("sgdt %0" : "=m"(d));
	ok(d.limit == sizeof gdt - 1 && d.base == (u32)gdt, "sgdt returns what lgdt loaded");
	__asm__ volatile("sidt %0" : "=m"(d));
	ok(d.limit == 256 * 8 - 1, "sidt returns what lidt loaded");

	set_descriptor(5, (u32)tss, sizeof tss - 1, 0x89, 0x0);
	__asm__ volatile("ltr %w0" : : "r"(0x28));
	u16 tr;
	__asm__ volatile("str %w0" : "=r"(tr));
	is_u32(tr, 0x28, "str returns the selector ltr loaded");
	is_u32((u32)(gdt[5] >> 40) & 0xF, 0xB, "ltr marks the TSS busy");

	ldt[1] = 0x00CF92000000FFFFull; /* flat data */
	set_descriptor(6, (u32)ldt, sizeof ldt - 1, 0x82, 0x0);
	__asm__ volatile("lldt %w0" : : "r"(0x30));
	u16 ldtr;
	__asm__ volatile("sldt %w0" : "=r"(ldtr));
	is_u32(ldtr, 0x30, "sldt returns the selector lldt loaded");
	__asm__ volatile("movw $0x0C, %%ax; movw %%ax, %%es; movl %%es:%1, %0; movw $0x10, %%ax; movw %%ax, %%es"
			 : "=r"(v) : "m"(probe) : "eax");
	is_u32(v, 0x5EC7, "a data segment from the LDT");

	u32 cr0, msw;
	__asm__ volatile("movl %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("smsw %0" : "=r"(msw));
	is_u32(msw & 0xFFFF, cr0 & 0xFFFF, "smsw agrees with CR0");
	ok((cr0 & 0x11) == 0x11, "CR0 has PE and ET");
	__asm__ volatile("smsw %%ax; orw $8, %%ax; lmsw %%ax; smsw %0" : "=r"(msw) : : "eax");
	ok(msw & 8, "lmsw sets TS");
	__asm__ volatile("clts; smsw %0" : "=r"(msw));
	ok(!(msw & 8), "clts clears TS");

	u32 ar = 0, lim = 0;
	u8 zf_ar, zf_lim;
	__asm__ volatile("larl %2, %0; setz %1" : "=r"(ar), "=q"(zf_ar) : "r"(0x10u) : "cc");
	__asm__ volatile("lsll %2, %0; setz %1" : "=r"(lim), "=q"(zf_lim) : "r"(0x10u) : "cc");
	ok(zf_ar && (ar & 0x00F0FF00) == 0x00C09300, "lar on the data selector");
	ok(zf_lim && lim == 0xFFFFFFFF, "lsl on the data selector");
	u8 rd, wr;
	__asm__ volatile("verr %w2; setz %0; verw %w2; setz %1" : "=q"(rd), "=q"(wr) : "r"(0x08) : "cc");
	ok(rd && !wr, "verr/verw on the code selector");

	/* Reloading the selector a segment register already holds reads the
	 * descriptor again (bt86 skips only reloads that would change
	 * nothing): a cleared accessed bit is set again, a descriptor made
	 * not-present faults, both for mov and for pop. */
	u32 at;
	for (int i = 0; i < 2; i++) /* translated once, then run from the cache */
		__asm__ volatile("movw $0x20, %%ax; movw %%ax, %%es; movw %%ax, %%es" : : : "eax", "memory");
	gdt[4] &= ~(1ull << 40);
	__asm__ volatile("movw $0x20, %%ax; movw %%ax, %%es" : : : "eax", "memory");
	ok((gdt[4] >> 40) & 1, "reloading ES with its own selector sets a cleared accessed bit");
	gdt[4] &= ~(1ull << 47);
	EXPECT_TRAP(at, "movw %%ax, %%es", "a"(0x20));
	ok(last_trap.vector == 11 && last_trap.error == 0x20 && last_trap.eip == at,
	   "and reloading it after its descriptor was made not-present raises #NP");
	trap_reset();
	__asm__ volatile("movl $2f, trap_resume\n pushl $0x20\n popl %%ds\n jmp 3f\n"
			 "2: addl $4, %%esp\n 3:" : : : "memory");
	ok(last_trap.vector == 11 && last_trap.error == 0x20, "pop %ds of that selector raises #NP too");
	gdt[4] |= 1ull << 47;
	__asm__ volatile("pushl $0x20; popl %%ds; movw %%ds, %%ax; movw %%ax, %0; movw $0x10, %%ax; movw %%ax, %%ds; movw %%ax, %%es"
			 : "=r"(es) : : "eax");
	is_u32(es, 0x20, "present again, pop %ds loads it");

	/* FS alternating between two selectors (Linux's kernel and user FS),
	 * and null: each load takes effect, and a changed descriptor is
	 * read again. */
	u32 sum = 0, nulls = 0;
	for (int i = 0; i < 4; i++) {
		u32 a, b2;
		__asm__ volatile("movw $0x38, %%ax; movw %%ax, %%fs; movl %%fs:0x100, %0\n"
				 "pushl $0x20; popl %%fs; movl %%fs:%2, %1\n"
				 "pushl $0; popl %%fs; movw $0, %%ax; movw %%ax, %%fs"
				 : "=&r"(a), "=&r"(b2) : "m"(probe) : "eax", "memory");
		sum += (a == 0x1234ABCD) + (b2 == 0x5EC7);
		u16 fs;
		__asm__ volatile("movw %%fs, %0" : "=r"(fs));
		nulls += fs == 0;
	}
	ok(sum == 8 && nulls == 4, "FS loads alternating 0x38, 0x20 and null take effect every time");
	for (int i = 0; i < 2; i++) /* 0x38 and null are the last two FS loads */
		__asm__ volatile("movw $0x38, %%ax; movw %%ax, %%fs; movw $0, %%ax; movw %%ax, %%fs" : : : "eax", "memory");
	set_descriptor(7, (u32)cell - 0x104, 0xFFFFF, 0x92, 0xC);
	u32 moved;
	__asm__ volatile("movw $0x38, %%ax; movw %%ax, %%fs; movl %%fs:0x104, %0; movw $0, %%ax; movw %%ax, %%fs"
			 : "=r"(moved) : : "eax", "memory");
	is_u32(moved, 0x1234ABCD, "a reload of FS after its descriptor's base changed uses the new base");
	/* (An access through the null FS is #GP(0) by the SDM and in bt86;
	 * QEMU 7.2 lets it through, so it is not compared here.) */

	/* An fs: operand beside AH-DH (no REX form names them, so the
	 * emulator runs it), and fs: lods: found by the differential test. */
	static u32 words[2] = {0x11223344, 0x55667788};
	set_descriptor(7, (u32)words - 0x40, 0xFFFFF, 0x92, 0xC);
	u32 high, lodsd, ptr;
	__asm__ volatile("movw $0x38, %%ax; movw %%ax, %%fs\n"
			 "movl $0xA5C3, %%eax; movb %%ah, %%fs:0x41\n"
			 "movl $0x0100, %%ebx; addb %%fs:0x40, %%bh; movl %%ebx, %0\n"
			 "movl $0x44, %%esi; cld; fs lodsl; movl %%eax, %1; movl %%esi, %2\n"
			 "movw $0, %%ax; movw %%ax, %%fs"
			 : "=r"(high), "=r"(lodsd), "=r"(ptr) : : "eax", "ebx", "esi", "memory", "cc");
	is_u32(words[0], 0x1122A544, "movb %ah, %fs:m stores AH");
	is_u32(high, 0x4500, "addb %fs:m, %bh adds into BH");
	is_u32(lodsd ^ ptr, 0x55667788 ^ 0x48, "fs lodsl loads through FS and moves ESI");
}
