/* A task switch into virtual-8086 mode (SDM vol. 3 7.3, 20.2.5), paging
 * off: a far call to a 32-bit TSS whose EFLAGS has VM runs its task in
 * virtual-8086 mode (CPL 3, each segment's base sixteen times its
 * selector, from the TSS); its hlt (IOPL 0) takes #GP(0) to a ring-0
 * handler on the task's ring-0 stack from the same TSS, whose frame holds
 * the virtual-8086 state; the handler sets NT and irets, which returns to
 * the calling task through the back link. */
#include "rt/rt.h"

#define VM_BASE 0x7000u /* segment 0x0700 */
#define TSS_A 0x48
#define TSS_V 0x50

struct gp_frame {
	u32 error, eip, cs, eflags, esp, ss, es, ds, fs, gs;
};

u32 tss_a[26], tss_v[26];
static u8 kstack[8192] __attribute__((aligned(16)));
struct gp_frame gp_seen;
u32 gp_tr, gp_count;

extern char vt_start[], vt_end[], vt_code[], vt_hlt[], vt_mark[], vt_cs[], vt_ss[];
void vt_gp(void);

__asm__(".text\n .code16\n"
	"vt_start:\n"
	"vt_code: movw $0x1234, %ax\n movw %ax, vt_mark - vt_start\n"
	" movw %cs, %bx\n movw %bx, vt_cs - vt_start\n movw %ss, %bx\n movw %bx, vt_ss - vt_start\n"
	"vt_hlt: hlt\n jmp vt_hlt\n"
	"vt_mark: .word 0\n vt_cs: .word 0\n vt_ss: .word 0\n"
	"vt_end:\n .code32\n"
	/* #GP at ring 0 in the virtual-8086 task: DS is null here. */
	"vt_gp: movw $0x10, %ax\n movw %ax, %ds\n movw %ax, %es\n"
	" movl %esp, %esi\n movl $gp_seen, %edi\n movl $10, %ecx\n cld\n rep movsl\n"
	" str gp_tr\n incl gp_count\n"
	" addl $4, %esp\n pushfl\n orl $0x4000, (%esp)\n popfl\n iret\n");

static u32 vt16(const char *label)
{
	return *(volatile u16 *)(VM_BASE + (u32)(label - vt_start));
}

static u32 gdt_type(u32 sel)
{
	return (u32)(gdt[sel >> 3] >> 40) & 0xF;
}

void test_main(u32 magic, u32 mbi)
{
	(void)magic;
	(void)mbi;
	plan(14);
	blob_copy(VM_BASE, vt_start, vt_end);
	tss_v[1] = (u32)kstack + sizeof kstack; /* ESP0, SS0 */
	tss_v[2] = 0x10;
	tss_v[8] = (u32)(vt_code - vt_start);   /* EIP */
	tss_v[9] = 0x20002;                      /* EFLAGS: VM, IOPL 0 */
	tss_v[14] = 0x1000;                      /* ESP */
	for (int s = 0; s < 6; s++)
		tss_v[18 + s] = 0x0700;
	tss_v[25] = 104u << 16;
	tss_a[25] = 104u << 16;
	set_descriptor(TSS_A >> 3, (u32)tss_a, 103, 0x89, 0);
	set_descriptor(TSS_V >> 3, (u32)tss_v, 103, 0x89, 0);
	gdt_load();
	__asm__ volatile("ltr %w0" : : "r"(TSS_A));
	idt_set(13, vt_gp, 0);

	__asm__ volatile("lcall $0x50, $0" : : : "memory");
	is_u32(vt16(vt_mark), 0x1234, "the task ran, its DS based at sixteen times 0x0700");
	is_u32(vt16(vt_cs), 0x0700, "CS from the TSS");
	is_u32(vt16(vt_ss), 0x0700, "SS from the TSS");
	is_u32(gp_count, 1, "its hlt took #GP");
	is_u32(gp_seen.error, 0, "#GP(0)");
	is_u32(gp_seen.eip, (u32)(vt_hlt - vt_start), "at the hlt");
	is_u32(gp_seen.cs, 0x0700, "the frame's CS");
	ok(gp_seen.eflags & 0x20000, "and EFLAGS with VM");
	ok(gp_seen.eflags & 0x4000, "and NT (the task was called)");
	is_u32(gp_seen.esp, 0x1000, "SP");
	is_u32(gp_seen.ds, 0x0700, "and DS, in the virtual-8086 frame");
	is_u32(gp_tr, TSS_V, "on the task's ring-0 stack, TR the task's");
	is_u32(gdt_type(TSS_V), 0x9, "iret with NT returned to the caller, the task available");
	ok(!(read_eflags() & 0x4000), "the caller has no NT");
	done();
}
