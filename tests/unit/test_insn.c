/* Instruction level: each register-only instruction runs twice on the host
 * CPU, natively (its encoding means the same in 64-bit mode) and as guest
 * code translated by bt86; registers and flags must agree exactly. */
#include <string.h>
#include <sys/mman.h>

#include "unit.h"

struct regs {
	uint32_t r[8]; /* eax ecx edx ebx (esp unused) ebp esi edi */
	uint32_t flags;
};

/* A native thunk: load regs and flags from *rdi, run the bytes, store back. */
static void run_native(const uint8_t *insn, size_t len, struct regs *st)
{
	static const uint8_t pro[] = {
		0x53, 0x55, 0x49, 0x89, 0xFB,                   /* push rbx; push rbp; mov %rdi,%r11 */
		0x41, 0xFF, 0x73, 0x20, 0x9D,                   /* push 0x20(%r11); popfq */
		0x41, 0x8B, 0x03, 0x41, 0x8B, 0x4B, 0x04,       /* mov (%r11),%eax; mov 4(%r11),%ecx */
		0x41, 0x8B, 0x53, 0x08, 0x41, 0x8B, 0x5B, 0x0C, /* edx, ebx */
		0x41, 0x8B, 0x6B, 0x14, 0x41, 0x8B, 0x73, 0x18, /* ebp, esi */
		0x41, 0x8B, 0x7B, 0x1C,                         /* edi */
	};
	static const uint8_t epi[] = {
		0x41, 0x89, 0x03, 0x41, 0x89, 0x4B, 0x04, 0x41, 0x89, 0x53, 0x08, 0x41, 0x89, 0x5B, 0x0C,
		0x41, 0x89, 0x6B, 0x14, 0x41, 0x89, 0x73, 0x18, 0x41, 0x89, 0x7B, 0x1C,
		0x9C, 0x41, 0x8F, 0x43, 0x20,                   /* pushfq; pop 0x20(%r11) */
		0xFC, 0x5D, 0x5B, 0xC3,                         /* cld; pop rbp; pop rbx; ret */
	};
	uint8_t *buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(buf, MAP_FAILED);
	memcpy(buf, pro, sizeof pro);
	memcpy(buf + sizeof pro, insn, len);
	memcpy(buf + sizeof pro + len, epi, sizeof epi);
	uint64_t frame[5];
	memcpy(frame, st, sizeof *st);
	frame[4] = st->flags; /* popfq reads 8 bytes at offset 0x20 */
	((void (*)(void *))buf)(frame);
	memcpy(st, frame, sizeof *st);
	st->flags = (uint32_t)frame[4];
	munmap(buf, 4096);
}

static struct machine m;

static void run_guest(const uint8_t *insn, size_t len, struct regs *st)
{
	for (int i = 0; i < 8; i++)
		if (i != R_ESP)
			m.v.hot->gpr[i] = st->r[i];
	vcpu_set_eflags(&m.v, (st->flags & FL_HOST_HELD) | 0x2);
	machine_run(&m, insn, len);
	for (int i = 0; i < 8; i++)
		if (i != R_ESP)
			st->r[i] = m.v.hot->gpr[i];
	st->flags = vcpu_eflags(&m.v);
}

/* Status flags the SDM leaves undefined after this instruction. */
static uint32_t undefined_flags(const uint8_t *insn, size_t len)
{
	ZydisDecoder dec;
	ZydisDecodedInstruction d;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
	ck_assert(ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, insn, len, &d, ops)));
	return d.cpu_flags ? d.cpu_flags->undefined : 0;
}

static const struct {
	const char *what;
	uint8_t bytes[8];
	uint8_t len;
} insns[] = {
	{"add %ebx,%eax", {0x01, 0xD8}, 2},      {"adc %ecx,%edx", {0x11, 0xCA}, 2},
	{"sub %esi,%edi", {0x29, 0xF7}, 2},      {"sbb %eax,%ebx", {0x19, 0xC3}, 2},
	{"and %ecx,%eax", {0x21, 0xC8}, 2},      {"or %edx,%ebx", {0x09, 0xD3}, 2},
	{"xor %esi,%eax", {0x31, 0xF0}, 2},      {"cmp %ebx,%eax", {0x39, 0xD8}, 2},
	{"neg %eax", {0xF7, 0xD8}, 2},           {"not %ebx", {0xF7, 0xD3}, 2},
	{"mul %ebx", {0xF7, 0xE3}, 2},           {"imul %ecx,%eax", {0x0F, 0xAF, 0xC1}, 3},
	{"shl %cl,%eax", {0xD3, 0xE0}, 2},       {"sar $5,%ebx", {0xC1, 0xFB, 0x05}, 3},
	{"rcl $3,%edx", {0xC1, 0xD2, 0x03}, 3},  {"ror %cl,%esi", {0xD3, 0xCE}, 2},
	{"bsf %ebx,%eax", {0x0F, 0xBC, 0xC3}, 3}, {"bt %ecx,%edx", {0x0F, 0xA3, 0xCA}, 3},
	{"bswap %eax", {0x0F, 0xC8}, 2},         {"xadd %ebx,%eax", {0x0F, 0xC1, 0xD8}, 3},
	{"cmpxchg %ecx,%edx", {0x0F, 0xB1, 0xCA}, 3}, {"setb %al", {0x0F, 0x92, 0xC0}, 3},
	{"cmovz %ebx,%ecx", {0x0F, 0x44, 0xCB}, 3}, {"lahf", {0x9F}, 1},
	{"sahf", {0x9E}, 1},                     {"cdq", {0x99}, 1},
	{"movsbl %bl,%eax", {0x0F, 0xBE, 0xC3}, 3}, {"lea 8(%ebx,%ecx,4),%eax", {0x8D, 0x44, 0x8B, 0x08}, 4},
	{"shld %cl,%ebx,%eax", {0x0F, 0xA5, 0xD8}, 3}, {"xchg %ebx,%esi", {0x87, 0xDE}, 2},
	{"adc %ah,%bl", {0x10, 0xE3}, 2},        {"cmc", {0xF5}, 1},
	{"std", {0xFD}, 1},
};

START_TEST(test_insn_matches_native)
{
	machine_init(&m, 0);
	uint32_t seed = 0x9E3779B9u * (uint32_t)(_i + 1);
	for (int round = 0; round < 8; round++) {
		struct regs in, nat, gst;
		for (int r = 0; r < 8; r++) {
			seed = seed * 1103515245u + 12345u;
			in.r[r] = round & 1 ? seed >> (round * 3) : seed;
		}
		in.r[R_ESP] = 0;
		in.flags = 0x202 | (seed & (FL_CF | FL_ZF | FL_SF | FL_OF | FL_PF | FL_AF));
		nat = gst = in;
		run_native(insns[_i].bytes, insns[_i].len, &nat);
		run_guest(insns[_i].bytes, insns[_i].len, &gst);
		for (int r = 0; r < 8; r++)
			ck_assert_msg(r == R_ESP || nat.r[r] == gst.r[r], "%s: reg %d native %#x, bt86 %#x",
				      insns[_i].what, r, nat.r[r], gst.r[r]);
		uint32_t mask = (FL_STATUS | FL_DF) & ~undefined_flags(insns[_i].bytes, insns[_i].len);
		ck_assert_msg((nat.flags & mask) == (gst.flags & mask), "%s: flags native %#x, bt86 %#x",
			      insns[_i].what, nat.flags & mask, gst.flags & mask);
	}
}
END_TEST

START_TEST(test_inc_short_form)
{
	/* 0x40 is inc %eax in 32-bit code but a REX prefix in 64-bit code: the
	 * translator must re-encode it.  Compare with the ff /0 form natively. */
	struct regs in = {{0x7FFFFFFF, 1, 2, 3, 0, 5, 6, 7}, 0x202}, nat = in, gst = in;
	machine_init(&m, 0);
	run_native((const uint8_t[]){0xFF, 0xC0}, 2, &nat);
	run_guest((const uint8_t[]){0x40}, 1, &gst);
	ck_assert_uint_eq(gst.r[R_EAX], nat.r[R_EAX]);
	ck_assert_uint_eq(gst.flags & FL_STATUS, nat.flags & FL_STATUS);
}
END_TEST

Suite *insn_suite(void)
{
	Suite *s = suite_create("instruction level");
	TCase *t = tcase_create("native vs translated");
	tcase_add_loop_test(t, test_insn_matches_native, 0, (int)(sizeof insns / sizeof insns[0]));
	tcase_add_test(t, test_inc_short_form);
	suite_add_tcase(s, t);
	return s;
}
