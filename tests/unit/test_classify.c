/* The classifier: which guest instructions are copied, rewritten inline or
 * sent to the emulator.  Sensitive instructions must never be copied. */
#include <string.h>

#include "unit.h"

static enum xclass classify(const char *hex)
{
	uint8_t b[16];
	size_t n = 0;
	ZydisDecoder dec;
	ZydisDecodedInstruction d;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];

	for (const char *p = hex; *p; p += 2) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		unsigned v;
		sscanf(p, "%2x", &v);
		b[n++] = (uint8_t)v;
	}
	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
	ck_assert_msg(ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, b, n, &d, ops)), "decodes %s", hex);
	return xlate_classify(&d, ops);
}

static const struct {
	const char *hex, *what;
	enum xclass cls;
} cases[] = {
	{"90", "nop", XC_PLAIN},
	{"01 d8", "add %ebx,%eax", XC_PLAIN},
	{"8b 18", "mov (%eax),%ebx", XC_PLAIN},
	{"a1 78 56 34 12", "mov moffs,%eax", XC_PLAIN},
	{"f3 a4", "rep movsb", XC_PLAIN},
	{"40", "inc %eax (0x40 form)", XC_PLAIN},
	{"64 8b 00", "mov %fs:(%eax),%eax", XC_PLAIN},
	{"0f 0b", "ud2 (raises #UD natively)", XC_PLAIN},
	{"0f af c3", "imul %ebx,%eax", XC_PLAIN},
	{"f3 0f 1e fb", "endbr32 (a NOP without CET)", XC_PLAIN},
	{"f3 0f 1e fa", "endbr64", XC_PLAIN},
	{"fa", "cli", XC_CLI},
	{"fb", "sti", XC_STI},
	{"9c", "pushf", XC_PUSHF},
	{"9d", "popf", XC_POPF},
	{"50", "push %eax", XC_PUSH},
	{"6a 01", "push $1", XC_PUSH},
	{"ff 30", "push (%eax)", XC_PUSH},
	{"58", "pop %eax", XC_POP},
	{"8f 00", "pop (%eax)", XC_POP},
	{"c9", "leave", XC_LEAVE},
	{"8c d8", "mov %ds,%eax", XC_MOV_FROM_SREG},
	{"1e", "push %ds", XC_PUSH_SREG},
	{"eb fe", "jmp rel8", XC_JMP},
	{"74 00", "je rel8", XC_JCC},
	{"0f 84 00 00 00 00", "je rel32", XC_JCC},
	{"e2 fe", "loop", XC_LOOP},
	{"e3 fe", "jecxz", XC_LOOP},
	{"e8 00 00 00 00", "call rel32", XC_CALL},
	{"ff e0", "jmp *%eax", XC_JMP_IND},
	{"ff 15 00 10 00 00", "call *abs", XC_CALL_IND},
	{"c3", "ret", XC_RET},
	{"c2 08 00", "ret $8", XC_RET},
	{"cb", "lret", XC_EMULATE},
	{"cf", "iret", XC_SYSTEM},
	{"66 cf", "iretw", XC_EMULATE},
	{"cd 80", "int $0x80", XC_SYSTEM},
	{"cc", "int3", XC_SYSTEM},
	{"0f 34", "sysenter (an exit: never the host's instruction)", XC_SYSTEM},
	{"0f 35", "sysexit", XC_SYSTEM},
	{"3e cd 80", "ds int $0x80 (prefixed: emulated)", XC_EMULATE},
	{"ce", "into", XC_EMULATE},
	{"f4", "hlt", XC_EMULATE},
	{"e4 60", "in $0x60,%al", XC_EMULATE},
	{"ee", "out %al,(%dx)", XC_EMULATE},
	{"f3 6e", "rep outsb", XC_EMULATE},
	{"8e d8", "mov %eax,%ds", XC_SREG_RELOAD},
	{"8e e0", "mov %eax,%fs", XC_SREG_RELOAD},
	{"8e e8", "mov %eax,%gs", XC_EMULATE},
	{"8e d0", "mov %eax,%ss", XC_EMULATE},
	{"1f", "pop %ds", XC_SREG_RELOAD},
	{"0f a1", "pop %fs", XC_SREG_RELOAD},
	{"0f a9", "pop %gs", XC_EMULATE},
	{"0f 01 15 00 10 00 00", "lgdt", XC_EMULATE},
	{"0f 01 05 00 10 00 00", "sgdt", XC_EMULATE},
	{"0f 00 c8", "str %eax", XC_EMULATE},
	{"0f 01 e0", "smsw %eax", XC_EMULATE},
	{"0f 02 c0", "lar", XC_EMULATE},
	{"0f 20 c0", "mov %cr0,%eax", XC_EMULATE},
	{"0f 20 d3", "mov %cr2,%ebx", XC_MOV_FROM_CR2},
	{"0f 22 d0", "mov %eax,%cr2", XC_EMULATE},
	{"0f 23 c0", "mov %eax,%dr0", XC_EMULATE},
	{"0f 06", "clts", XC_EMULATE},
	{"0f 01 38", "invlpg", XC_EMULATE},
	{"0f a2", "cpuid", XC_EMULATE},
	{"0f 31", "rdtsc", XC_EMULATE},
	{"0f 32", "rdmsr", XC_EMULATE},
	{"0f 09", "wbinvd", XC_EMULATE},
	{"0f 05", "syscall (a host system call on AMD)", XC_EMULATE},
	{"ea 00 00 10 00 08 00", "ljmp", XC_EMULATE},
	{"60", "pushad", XC_PUSHA},
	{"61", "popad", XC_POPA},
	{"66 60", "pushaw (16-bit)", XC_EMULATE},
	{"66 61", "popaw (16-bit)", XC_EMULATE},
	{"62 00", "bound (EVEX in 64-bit mode)", XC_EMULATE},
	{"63 c0", "arpl (MOVSXD in 64-bit mode)", XC_EMULATE},
	{"c5 00", "lds (VEX in 64-bit mode)", XC_EMULATE},
	{"27", "daa", XC_EMULATE},
	{"c8 08 00 00", "enter", XC_EMULATE},
	{"67 8b 07", "mov (%bx),%eax (16-bit addressing)", XC_EMULATE},
	{"66 9c", "pushfw", XC_EMULATE},
	{"c5 f8 77", "vzeroupper (no AVX in the model)", XC_EMULATE},
	{"0f 01 d0", "xgetbv", XC_EMULATE},
	{"64 a4", "movsb with fs:", XC_EMULATE},
};

START_TEST(test_cases)
{
	const char *hex = cases[_i].hex;
	ck_assert_msg(classify(hex) == cases[_i].cls, "%s (%s): got class %d, want %d", cases[_i].what, hex,
		      classify(hex), cases[_i].cls);
}
END_TEST

Suite *classify_suite(void)
{
	Suite *s = suite_create("classify");
	TCase *t = tcase_create("cases");
	tcase_add_loop_test(t, test_cases, 0, (int)(sizeof cases / sizeof cases[0]));
	suite_add_tcase(s, t);
	return s;
}
