/* The translator's output: what host code a guest instruction becomes
 * (disassembled with Capstone), and that the rewrites compute what the guest
 * instruction would. */
#include <capstone/capstone.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "translator/emit.h"
#include "unit.h"

static char listing[8192];

static struct tc_block *last_block;

/* Translates the guest bytes for `mode` (XMODE_*) and returns the host
 * code as Intel text. */
static const char *translate_in(struct machine *m, const uint8_t *code, size_t len, uint32_t mode)
{
	csh cs;
	cs_insn *insn;

	memcpy(m->mem.ram + GUEST_CODE, code, len);
	m->mem.ram[GUEST_CODE + len] = 0xF4;
	struct tc_block *b = last_block = xlate_block(&m->x, GUEST_CODE, GUEST_CODE, mode, TC_PHYS2_ANY);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(cs_open(CS_ARCH_X86, CS_MODE_64, &cs), CS_ERR_OK);
	size_t n = cs_disasm(cs, tc_ptr(&m->tc, b->host), b->host_len, 0, 0, &insn);
	listing[0] = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(listing);
		snprintf(listing + l, sizeof listing - l, "%s %s\n", insn[i].mnemonic, insn[i].op_str);
	}
	cs_free(insn, n);
	cs_close(&cs);
	return listing;
}

static const char *translate(struct machine *m, const uint8_t *code, size_t len)
{
	return translate_in(m, code, len, 0);
}

#define HAS(text, needle) ck_assert_msg(strstr(text, needle), "expected '%s' in:\n%s", needle, text)
#define LACKS(text, needle) ck_assert_msg(!strstr(text, needle), "unexpected '%s' in:\n%s", needle, text)

START_TEST(test_memory_operand_gets_32bit_address)
{
	struct machine m;
	machine_init(&m, 0);
	const char *t = translate(&m, (const uint8_t[]){0x8B, 0x18}, 2); /* mov (%eax),%ebx */
	HAS(t, "mov ebx, dword ptr [eax]");
}
END_TEST

/* Ring 3 of a young address space reaches memory through the soft TLB
 * (stlb.h): the linear address into r10d, its page's entry into r11 (the
 * write table for a store), an empty one leaving for the monitor with the
 * address and the instruction's code offset, the access through
 * (r11,r10) in the frame region; an access of more than one byte first
 * tests whether its last byte lies on the next page, and then goes through
 * the user view (r11 = VC_UWIN_BASE); each block entry spends one of the
 * space's budget.  An old space's ring 3 uses gs: alone, and so does an
 * instruction that cannot take a REX prefix. */
START_TEST(test_young_ring3_goes_through_the_soft_tlb)
{
	struct machine m;
	const uint32_t young = 3 | XMODE_PAGING | XMODE_SOFT;
	machine_init(&m, 0);
	const char *t = translate_in(&m, (const uint8_t[]){0x8B, 0x18}, 2, young); /* mov (%eax),%ebx */
	HAS(t, "lea r10d, [eax]");
	HAS(t, "mov qword ptr [r15 + 0xa0], rcx");        /* RCX borrowed */
	HAS(t, "shlx ecx, r10d, ecx");
	HAS(t, "lea rcx, [rcx + 0x300000]");              /* (4 - 1) << 20 */
	HAS(t, "rorx rcx, rcx, 0x20");
	HAS(t, "jecxz");
	HAS(t, "mov r11, qword ptr [r15 + 0x110]");       /* runs onto the next page: the user view */
	HAS(t, "shrx r11d, r10d, r11d");
	HAS(t, "mov rcx, qword ptr [r15 + r11*8 + 0x1000]");
	HAS(t, "jrcxz");
	HAS(t, "mov rcx, qword ptr [r15 + 0xa0]");
	HAS(t, "mov rcx, qword ptr [r15 + 0x130]");      /* the space's block budget */
	HAS(t, "mov dword ptr [r15 + 0x124], r10d");
	HAS(t, "mov ebx, dword ptr [r11 + r10]");
	HAS(t, "mov dword ptr [r15 + 0x128], 0x");
	LACKS(t, "gs:");

	t = translate_in(&m, (const uint8_t[]){0x8A, 0x18}, 2, young); /* mov (%eax),%bl */
	HAS(t, "mov r11, qword ptr [r15 + r11*8 + 0x1000]");  /* a byte: the entry alone */
	LACKS(t, "rorx");
	HAS(t, "mov bl, byte ptr [r11 + r10]");

	t = translate_in(&m, (const uint8_t[]){0x83, 0x00, 0x01, 0x50}, 4, young); /* addl $1,(%eax); push %eax */
	HAS(t, "+ 0x801000]");
	HAS(t, "add dword ptr [r11 + r10], 1");
	HAS(t, "lea r10d, [esp - 4]");
	HAS(t, "mov dword ptr [r11 + r10], eax");

	t = translate_in(&m, (const uint8_t[]){0x8A, 0x20}, 2, young); /* mov (%eax),%ah */
	HAS(t, "mov ah, byte ptr gs:[eax]");
	LACKS(t, "shrx r11d");
	t = translate_in(&m, (const uint8_t[]){0x8B, 0x18}, 2, 3 | XMODE_PAGING);
	HAS(t, "mov ebx, dword ptr gs:[eax]");
	LACKS(t, "shrx r11d");
	LACKS(t, "0x130]");
}
END_TEST

START_TEST(test_absolute_address_is_not_rip_relative)
{
	struct machine m;
	machine_init(&m, 0);
	const char *t = translate(&m, (const uint8_t[]){0x8B, 0x0D, 0x78, 0x56, 0x34, 0x12}, 6);
	HAS(t, "mov ecx, dword ptr [0x12345678]");
	LACKS(t, "rip");
}
END_TEST

START_TEST(test_push_pop_use_the_guest_stack)
{
	struct machine m;
	machine_init(&m, 0);
	const char *t = translate(&m, (const uint8_t[]){0x50, 0x5B}, 2); /* push %eax; pop %ebx */
	HAS(t, "mov dword ptr [esp - 4], eax");
	HAS(t, "lea esp, [rsp - 4]");
	HAS(t, "mov ebx, dword ptr [esp]");
	LACKS(t, "push rax");
}
END_TEST

START_TEST(test_cli_sti_are_inline_stores)
{
	struct machine m;
	machine_init(&m, 0);
	const char *t = translate(&m, (const uint8_t[]){0xFA, 0xFB, 0x90}, 3);
	HAS(t, "mov dword ptr [r15 + 0x28], 0\n");
	HAS(t, "mov dword ptr [r15 + 0x28], 0x200");
	LACKS(t, "cli");
	LACKS(t, "sti");
}
END_TEST

START_TEST(test_fs_override_adds_the_segment_base)
{
	struct machine m;
	machine_init(&m, 0);
	const char *t = translate(&m, (const uint8_t[]){0x64, 0x8B, 0x48, 0x04}, 4); /* mov %fs:4(%eax),%ecx */
	HAS(t, "lea r8d, [eax + 4]");
	HAS(t, "lea r8d, [r8 + r9]");
	HAS(t, "mov ecx, dword ptr [r8d]");
}
END_TEST

START_TEST(test_call_through_absolute_high_address)
{
	struct machine m;
	machine_init(&m, 0);
	/* call *0xc0001000: the operand must stay a 32-bit address */
	const char *t = translate(&m, (const uint8_t[]){0xFF, 0x15, 0x00, 0x10, 0x00, 0xC0}, 6);
	HAS(t, "mov r8d, dword ptr [0xc0001000]");
	LACKS(t, "0xffffffffc0001000");
}
END_TEST

START_TEST(test_fs_absolute_high_address)
{
	struct machine m;
	machine_init(&m, 0);
	/* sub %fs:0xcde5e6e0, %eax (Linux's per-CPU accesses look like this) */
	const char *t = translate(&m, (const uint8_t[]){0x64, 0x2B, 0x05, 0xE0, 0xE6, 0xE5, 0xCD}, 7);
	HAS(t, "mov r8d, 0xcde5e6e0");
	HAS(t, "sub eax, dword ptr [r8d]");
}
END_TEST

START_TEST(test_sensitive_instruction_exits)
{
	struct machine m;
	machine_init(&m, 0);
	const char *t = translate(&m, (const uint8_t[]){0x0F, 0xA2}, 2); /* cpuid */
	LACKS(t, "cpuid");
	HAS(t, "jmp qword ptr [r15 + 0x50]");
}
END_TEST

/* in and out at CPL 0 are port exits described by the translator, the
 * block going on after them; at CPL 3 (IOPL, the I/O bitmap) they end the
 * block for the emulator. */
START_TEST(test_port_io_exits_and_continues)
{
	struct machine m;
	machine_init(&m, 0);
	/* out %al, $0x80; in (%dx), %eax; inc %ebx */
	translate(&m, (const uint8_t[]){0xE6, 0x80, 0xED, 0x43}, 4);
	ck_assert_uint_eq(last_block->guest_len, 5); /* through the hlt after them */
	unsigned ports = 0;
	for (unsigned i = 0; i < last_block->n_exits; i++) {
		const struct tc_exit *ex = &last_block->exits[i];
		if (ex->kind != TCX_PORT)
			continue;
		if (ex->guest_eip == GUEST_CODE)
			ck_assert_uint_eq(ex->io, 1u | 2u << 4 | 0x80u << 16);
		else
			ck_assert_uint_eq(ex->io, 4u | 1u << 4 | TC_IO_IN | TC_IO_DX);
		ck_assert_uint_gt(ex->resume, last_block->host);
		ports++;
	}
	ck_assert_uint_eq(ports, 2);
	translate_in(&m, (const uint8_t[]){0xE6, 0x80, 0x43}, 3, 3);
	ck_assert_uint_eq(last_block->guest_len, 2);
	ck_assert_uint_eq(last_block->exits[last_block->n_exits - 1].kind, TCX_EMULATE);
}
END_TEST

/* invlpg at CPL 0 computes its linear address into VC_TARGET and ends
 * the block with an exit of its own; elsewhere the emulator's #GP. */
START_TEST(test_invlpg_exits_with_its_address)
{
	struct machine m;
	machine_init(&m, 0);
	const char *t = translate(&m, (const uint8_t[]){0x0F, 0x01, 0x7C, 0x83, 0x10}, 5); /* invlpg 0x10(%ebx,%eax,4) */
	HAS(t, "lea r8d, [ebx + eax*4 + 0x10]");
	HAS(t, "mov dword ptr [r15 + 0x40], r8d");
	ck_assert_uint_eq(last_block->guest_len, 5);
	const struct tc_exit *ex = &last_block->exits[last_block->n_exits - 1];
	ck_assert_uint_eq(ex->kind, TCX_INVLPG);
	ck_assert_uint_eq(ex->io >> 4, 5);
	translate_in(&m, (const uint8_t[]){0x0F, 0x01, 0x38}, 3, 3); /* invlpg (%eax) at CPL 3 */
	ck_assert_uint_eq(last_block->exits[last_block->n_exits - 1].kind, TCX_EMULATE);
}
END_TEST

/* Execution of rewrites: guest code computes, the test checks registers. */
START_TEST(test_push_pop_call_ret_execute)
{
	struct machine m;
	machine_init(&m, 0);
	/* push $0x1234; pop %ebx; call f; jmp end; f: mov $7,%ecx; ret; end: */
	const uint8_t code[] = {0x68, 0x34, 0x12, 0, 0, 0x5B, 0xE8, 0x02, 0, 0, 0, 0xEB, 0x06,
				0xB9, 7, 0, 0, 0, 0xC3};
	uint32_t esp = m.v.hot->gpr[R_ESP];
	machine_run(&m, code, sizeof code);
	ck_assert_uint_eq(m.v.hot->gpr[R_EBX], 0x1234);
	ck_assert_uint_eq(m.v.hot->gpr[R_ECX], 7);
	ck_assert_uint_eq(m.v.hot->gpr[R_ESP], esp);
}
END_TEST

START_TEST(test_pushf_popf_virtual_if_and_iopl)
{
	struct machine m;
	machine_init(&m, 0);
	/* sti; pushf; pop %eax; push $0x3002; popf; pushf; pop %ebx; cli; pushf; pop %ecx */
	const uint8_t code[] = {0xFB, 0x9C, 0x58, 0x68, 0x02, 0x30, 0, 0, 0x9D, 0x9C, 0x5B, 0xFA, 0x9C, 0x59};
	machine_run(&m, code, sizeof code);
	ck_assert_uint_eq(m.v.hot->gpr[R_EAX] & 0x3200, 0x200);
	ck_assert_uint_eq(m.v.hot->gpr[R_EBX] & 0x3200, 0x3000);
	ck_assert_uint_eq(m.v.hot->gpr[R_ECX] & 0x3200, 0x3000);
	ck_assert_uint_eq(m.v.hot->vsys & FL_IOPL, 0x3000);
}
END_TEST

/* popf of an image that changes only status flags loads them in line
 * (sahf and an add for OF where the host has sahf); one that changes DF
 * goes to the emulator, which runs the popf again. */
START_TEST(test_popf_loads_status_flags_in_line)
{
	struct machine m;
	machine_init(&m, 0);
	/* push $0x8d7; popf; pushf; pop %eax (OF SF ZF AF PF CF);
	 * push $0x402; popf; pushf; pop %ebx (DF); cld */
	const uint8_t code[] = {0x68, 0xD7, 0x08, 0, 0, 0x9D, 0x9C, 0x58,
				0x68, 0x02, 0x04, 0, 0, 0x9D, 0x9C, 0x5B, 0xFC};
	machine_run(&m, code, sizeof code);
	ck_assert_uint_eq(m.v.hot->gpr[R_EAX] & 0xCFF, 0x8D7);
	ck_assert_uint_eq(m.v.hot->gpr[R_EBX] & 0xCFF, 0x402);
	if (emit_host_sahf())
		ck_assert_uint_eq(m.stats.insn_emulated, 2); /* the second popf and the hlt */
}
END_TEST

START_TEST(test_loop_and_jump_table_execute)
{
	struct machine m;
	machine_init(&m, 0);
	/* mov $10,%ecx; xor %eax,%eax; l: add %ecx,%eax; loop l; jecxz t; mov $1,%ebx; t: */
	const uint8_t code[] = {0xB9, 10, 0, 0, 0, 0x31, 0xC0, 0x01, 0xC8, 0xE2, 0xFC, 0xE3, 0x05,
				0xBB, 1, 0, 0, 0};
	machine_run(&m, code, sizeof code);
	ck_assert_uint_eq(m.v.hot->gpr[R_EAX], 55);
	ck_assert_uint_eq(m.v.hot->gpr[R_EBX], 0);
	ck_assert_uint_gt(m.stats.chains_made, 0);
}
END_TEST

START_TEST(test_page_zero_access_is_emulated)
{
	struct machine m;
	machine_init(&m, 0);
	/* mov $0xabcd,%eax; mov %eax,0x10; mov 0x10,%ebx (host page 0 is never mapped) */
	const uint8_t code[] = {0xB8, 0xCD, 0xAB, 0, 0, 0xA3, 0x10, 0, 0, 0, 0x8B, 0x1D, 0x10, 0, 0, 0};
	machine_run(&m, code, sizeof code);
	ck_assert_uint_eq(m.v.hot->gpr[R_EBX], 0xABCD);
	ck_assert_uint_eq(m.mem.ram[0x10], 0xCD);
	ck_assert_uint_ge(m.stats.insn_emulated, 2);
}
END_TEST

START_TEST(test_store_into_next_instruction)
{
	struct machine m;
	machine_init(&m, 0);
	/* movb $0x2a, next+1; next: mov $0,%al */
	uint32_t next = GUEST_CODE + 7;
	const uint8_t code[] = {0xC6, 0x05, (uint8_t)(next + 1), (uint8_t)((next + 1) >> 8),
				(uint8_t)((next + 1) >> 16), 0, 0x2A, 0xB0, 0x00};
	machine_run(&m, code, sizeof code);
	ck_assert_uint_eq(m.v.hot->gpr[R_EAX] & 0xFF, 0x2A);
	ck_assert_uint_eq(m.stats.invalidations[INVAL_GUEST_WRITE], 1);
}
END_TEST

static void *stop_later(void *arg)
{
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	vcpu_request_stop(arg);
	return NULL;
}

/* A block's attention test falls through while the word is clear (no
 * taken branch on the usual path) and leaves when a request arrives: a
 * loop chained to itself ends at a stop asked for from another thread,
 * through the test's way out before the block. */
START_TEST(test_attention_test_leaves_a_chained_loop)
{
	struct machine m;
	pthread_t th;
	machine_init(&m, 0);
	/* l: lea 1(%eax),%eax; jmp l (no flag write: the RCX form of the test) */
	const uint8_t code[] = {0x8D, 0x40, 0x01, 0xEB, 0xFB};
	const char *t = translate_in(&m, code, sizeof code, 0);
	HAS(t, "mov r11, rcx");
	if (emit_host_bmi2())
		HAS(t, "shrx rcx, qword ptr [r15 + 0x138], rcx");
	HAS(t, "jrcxz 0xfffffffffffffff8"); /* back to the way out, 8 bytes before the entry */
	m.v.hot->eip = GUEST_CODE;
	ck_assert_int_eq(pthread_create(&th, NULL, stop_later, &m.v), 0);
	vcpu_run(&m.v, &m.x);
	pthread_join(th, NULL);
	ck_assert(m.v.stopped);
	ck_assert_uint_gt(m.v.hot->gpr[R_EAX], 1000);
	ck_assert_uint_gt(m.stats.chains_made, 0);
	ck_assert_uint_ge(m.stats.exits[EXIT_ATTENTION], 1);
}
END_TEST

/* The world switch (switch.S): the x87 state stays the guest's, live in
 * the CPU, and the monitor never touches it; the guest's MXCSR and XMM
 * registers are in VC_FX_GUEST after the exit, and the monitor has its own
 * MXCSR back. */
START_TEST(test_fpu_state_follows_the_world_switch)
{
	struct machine m;
	uint32_t mxcsr_before, mxcsr_after;
	uint16_t fcw_after;
	uint32_t env[7];
	machine_init(&m, 0);
	gmem_write(&m.mem, 0x200000, 4, 0x7F80); /* round toward zero, exceptions masked */
	gmem_write(&m.mem, 0x200004, 2, 0x0C7F); /* x87: truncate, 64-bit precision */
	for (unsigned i = 0; i < 4; i++)
		gmem_write(&m.mem, 0x200010 + 4 * i, 4, 0x11223344u * (i + 1));
	/* ldmxcsr 0x200000; fldcw 0x200004; fld1; fld1; movups 0x200010,%xmm3 */
	const uint8_t code[] = {0x0F, 0xAE, 0x15, 0x00, 0x00, 0x20, 0x00, 0xD9, 0x2D, 0x04, 0x00, 0x20, 0x00,
				0xD9, 0xE8, 0xD9, 0xE8, 0x0F, 0x10, 0x1D, 0x10, 0x00, 0x20, 0x00};
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr_before));
	machine_run(&m, code, sizeof code);
	__asm__ volatile("stmxcsr %0; fnstcw %1; fnstenv %2" : "=m"(mxcsr_after), "=m"(fcw_after), "=m"(env));
	__asm__ volatile("fninit");
	ck_assert_uint_eq(mxcsr_after, mxcsr_before);
	ck_assert_uint_eq(fcw_after, 0x0C7F);
	ck_assert_uint_eq(env[2] & 0xFFFF, 0x0FFF); /* two values pushed: ST0 and ST1 valid */
	uint32_t guest_mxcsr, xmm3[4];
	memcpy(&guest_mxcsr, m.v.hot->fx_guest + FX_MXCSR, 4);
	memcpy(xmm3, m.v.hot->fx_guest + FX_XMM + 3 * 16, 16);
	ck_assert_uint_eq(guest_mxcsr, 0x7F80);
	for (unsigned i = 0; i < 4; i++)
		ck_assert_uint_eq(xmm3[i], 0x11223344u * (i + 1));
}
END_TEST

Suite *rewrite_suite(void)
{
	Suite *s = suite_create("rewrite");
	TCase *t = tcase_create("emitted code");
	tcase_add_test(t, test_memory_operand_gets_32bit_address);
	tcase_add_test(t, test_absolute_address_is_not_rip_relative);
	tcase_add_test(t, test_young_ring3_goes_through_the_soft_tlb);
	tcase_add_test(t, test_push_pop_use_the_guest_stack);
	tcase_add_test(t, test_cli_sti_are_inline_stores);
	tcase_add_test(t, test_fs_override_adds_the_segment_base);
	tcase_add_test(t, test_call_through_absolute_high_address);
	tcase_add_test(t, test_fs_absolute_high_address);
	tcase_add_test(t, test_sensitive_instruction_exits);
	tcase_add_test(t, test_port_io_exits_and_continues);
	tcase_add_test(t, test_invlpg_exits_with_its_address);
	suite_add_tcase(s, t);
	t = tcase_create("execution");
	tcase_add_test(t, test_push_pop_call_ret_execute);
	tcase_add_test(t, test_pushf_popf_virtual_if_and_iopl);
	tcase_add_test(t, test_popf_loads_status_flags_in_line);
	tcase_add_test(t, test_loop_and_jump_table_execute);
	tcase_add_test(t, test_page_zero_access_is_emulated);
	tcase_add_test(t, test_store_into_next_instruction);
	tcase_add_test(t, test_fpu_state_follows_the_world_switch);
	tcase_add_test(t, test_attention_test_leaves_a_chained_loop);
	suite_add_tcase(s, t);
	return s;
}
