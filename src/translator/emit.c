#include "emit.h"

#include <cpuid.h>
#include <string.h>

#include "../cpu/vcpu_abi.h"
#include "../util.h"

void emit_bytes(struct emit *e, const void *p, unsigned n)
{
	if (e->pos + n > e->limit) {
		e->overflow = true;
		return;
	}
	memcpy(e->base + e->pos, p, n);
	e->pos += n;
}

void emit_u8(struct emit *e, uint8_t v)
{
	emit_bytes(e, &v, 1);
}

void emit_u32(struct emit *e, uint32_t v)
{
	emit_bytes(e, &v, 4);
}

void emit_set_rel32(struct emit *e, uint32_t at, uint32_t target)
{
	int32_t rel = (int32_t)(target - (at + 4));
	if (at + 4 <= e->limit)
		memcpy(e->base + at, &rel, 4);
}

uint32_t emit_jmp(struct emit *e, uint32_t target)
{
	emit_u8(e, 0xE9);
	uint32_t at = e->pos;
	emit_u32(e, 0);
	emit_set_rel32(e, at, target);
	return at;
}

uint32_t emit_jcc(struct emit *e, unsigned cc, uint32_t target)
{
	emit_u8(e, 0x0F);
	emit_u8(e, (uint8_t)(0x80 | cc));
	uint32_t at = e->pos;
	emit_u32(e, 0);
	emit_set_rel32(e, at, target);
	return at;
}

void emit_exit_stub(struct emit *e, uint32_t arg)
{
	emit_u8(e, 0x41); /* mov $arg, %r10d */
	emit_u8(e, 0xBA);
	emit_u32(e, arg);
	const uint8_t jmp[] = {0x41, 0xFF, 0x67, VC_EXIT_GATE}; /* jmp *VC_EXIT_GATE(%r15) */
	emit_bytes(e, jmp, sizeof jmp);
}

void emit_lookup(struct emit *e, uint32_t miss_stub)
{
	static const uint8_t probe[] = {
		0x47, 0x8D, 0x14, 0xC0,       /* lea (%r8,%r8,8), %r10d */
		0x41, 0x0F, 0xCA,             /* bswap %r10d */
		0x47, 0x8D, 0x14, 0x10,       /* lea (%r8,%r10), %r10d */
		0x45, 0x0F, 0xB7, 0xD2,       /* movzwl %r10w, %r10d: jtab_set(eip) */
		0x47, 0x8D, 0x14, 0x12,       /* lea (%r10,%r10), %r10d: its way 0 */
		0x49, 0x89, 0xCB,             /* mov %rcx, %r11 */
		0x43, 0x8B, 0x0C, 0xD6,       /* mov (%r14,%r10,8), %ecx   (-eip) */
		0x42, 0x8D, 0x0C, 0x01,       /* lea (%rcx,%r8), %ecx      (0 on a hit) */
		0xE3, 0x17,                   /* jrcxz hit */
		0x43, 0x8B, 0x4C, 0xD6, 0x08, /* mov 8(%r14,%r10,8), %ecx  (way 1) */
		0x42, 0x8D, 0x0C, 0x01,       /* lea (%rcx,%r8), %ecx */
		0xE3, 0x08,                   /* jrcxz hit1 */
		0x4C, 0x89, 0xD9,             /* mov %r11, %rcx */
	};
	static const uint8_t hit[] = {
		0x45, 0x8D, 0x52, 0x01,       /* hit1: lea 1(%r10), %r10d */
		0x47, 0x8B, 0x54, 0xD6, 0x04, /* hit: mov 4(%r14,%r10,8), %r10d */
		0x4C, 0x89, 0xD9,             /* mov %r11, %rcx */
		0x4D, 0x8D, 0x6D, 0x01,       /* lea 1(%r13), %r13   (hit count) */
		0x4F, 0x8D, 0x14, 0x16,       /* lea (%r14,%r10), %r10 */
		0x41, 0xFF, 0xE2,             /* jmp *%r10 */
	};
	emit_bytes(e, probe, sizeof probe);
	emit_jmp(e, miss_stub);          /* 5 bytes: the jrcxz to hit1 skips 3 + 5, the one to hit 5 + 4 + 2 + 8 + 4 */
	emit_bytes(e, hit, sizeof hit);
}

bool emit_attention_uses_exit(bool flags_dead, bool soft)
{
	return !flags_dead || soft;
}

uint32_t emit_attention_exit(struct emit *e)
{
	const uint8_t restore[] = {0x4C, 0x89, 0xD9}; /* mov %r11, %rcx */
	emit_bytes(e, restore, sizeof restore);
	return emit_jmp(e, 0);                       /* jmp attention stub */
}

/* A short jump (jrcxz 0xE3, jmp 0xEB) back to the way out at exit_at,
 * which lies before the block. */
static void emit_short_to_exit(struct emit *e, uint8_t opcode, uint32_t exit_at)
{
	int32_t rel = (int32_t)exit_at - (int32_t)(e->pos + 2);
	BT86_ASSERT(rel >= -128);
	emit_u8(e, opcode);
	emit_u8(e, (uint8_t)(int8_t)rel);
}

uint32_t emit_attention_irq_test(struct emit *e)
{
	const uint8_t irq[] = {0x41, 0x83, 0x7F, VC_ATTN_IRQ, 0x00}; /* cmpl $0, VC_ATTN_IRQ(%r15) */
	emit_bytes(e, irq, sizeof irq);
	return emit_jcc(e, 0x5, 0);                                  /* jne attention stub */
}

uint32_t emit_attention_check(struct emit *e, bool flags_dead, bool soft, uint32_t exit_at)
{
	if (!emit_attention_uses_exit(flags_dead, soft)) {
		/* Each half on its own: sti and popf store VC_ATTN_IRQ alone,
		 * and an 8-byte load of a 4-byte store just made cannot be
		 * forwarded from it (it waits for the store to retire: the nano
		 * guest's cli/sti loop spent ~8 cycles a turn so). */
		uint32_t at = emit_attention_irq_test(e), jne = at - 2;
		const uint8_t req[] = {0x41, 0x83, 0x7F, VC_ATTN_REQ, 0x00, /* cmpl $0, VC_ATTN_REQ(%r15) */
				       0x75};                                /* jne to the jne above */
		emit_bytes(e, req, sizeof req);
		emit_u8(e, (uint8_t)(int8_t)((int32_t)jne - (int32_t)(e->pos + 1)));
		return at;
	}
	const uint8_t save[] = {0x49, 0x89, 0xCB}; /* mov %rcx, %r11 */
	emit_bytes(e, save, sizeof save);
	if (emit_host_bmi2()) {
		/* RCX = VC_ONE >> attn_irq >> attn_req, zero exactly when
		 * either half is nonzero (vcpu_abi.h: the halves' values are
		 * below 64), so that the usual path falls through: a taken
		 * branch at every block entry cost up to 7 cycles a turn of a
		 * tight loop on the 2026-12-07 host, depending on where the
		 * cache put the code (the nano guest's kernel CRC loop 5.8 or
		 * 13 cycles a byte). */
		static const uint8_t test[] = {
			0x41, 0x8B, 0x4F, VC_ATTN_IRQ,           /* mov VC_ATTN_IRQ(%r15), %ecx */
			0x45, 0x8B, 0x57, VC_ATTN_REQ,           /* mov VC_ATTN_REQ(%r15), %r10d */
			0xC4, 0xC2, 0xF3, 0xF7, 0x8F, VC_ONE & 0xFF, VC_ONE >> 8, 0, 0, /* shrx %rcx, VC_ONE(%r15), %rcx */
			0xC4, 0xE2, 0xAB, 0xF7, 0xC9,            /* shrx %r10, %rcx, %rcx */
		};
		emit_bytes(e, test, sizeof test);
		emit_short_to_exit(e, 0xE3, exit_at);
	} else {
		static const uint8_t test[] = {
			0x49, 0x8B, 0x4F, VC_ATTN, /* mov VC_ATTN(%r15), %rcx */
			0xE3, 0x02,                /* jrcxz clear */
		};
		emit_bytes(e, test, sizeof test);
		emit_short_to_exit(e, 0xEB, exit_at);
	}
	if (soft) {
		/* A soft-TLB block also spends one of its space's block entries
		 * (stlb.h); the last one leaves through the attention stub too. */
		static const uint8_t budget[] = {
			0x49, 0x8B, 0x8F, VC_SOFT_BUDGET & 0xFF, VC_SOFT_BUDGET >> 8, 0, 0, /* mov VC_SOFT_BUDGET(%r15), %rcx */
			0x48, 0x8D, 0x49, 0xFF,                             /* lea -1(%rcx), %rcx */
			0x49, 0x89, 0x8F, VC_SOFT_BUDGET & 0xFF, VC_SOFT_BUDGET >> 8, 0, 0, /* mov %rcx, VC_SOFT_BUDGET(%r15) */
		};
		emit_bytes(e, budget, sizeof budget);
		emit_short_to_exit(e, 0xE3, exit_at);
	}
	const uint8_t restore[] = {0x4C, 0x89, 0xD9}; /* clear: mov %r11, %rcx */
	emit_bytes(e, restore, sizeof restore);
	return 0;
}

void emit_count(struct emit *e, uint32_t at)
{
	const uint8_t load[] = {0x4D, 0x8B, 0x96};             /* mov at(%r14), %r10 */
	const uint8_t inc[] = {0x4D, 0x8D, 0x52, 0x01};        /* lea 1(%r10), %r10 */
	const uint8_t store[] = {0x4D, 0x89, 0x96};            /* mov %r10, at(%r14) */
	emit_bytes(e, load, sizeof load);
	emit_u32(e, at);
	emit_bytes(e, inc, sizeof inc);
	emit_bytes(e, store, sizeof store);
	emit_u32(e, at);
}

/* The miss path: RCX back, the address and the instruction noted, and out
 * through the shared stub. */
static void emit_stlb_miss(struct emit *e, bool write, uint32_t insn_at, uint32_t miss_stub, bool rcx_saved)
{
	static const uint8_t restore[] = {0x49, 0x8B, 0x8F}; /* mov VC_RCX_SAVE(%r15), %rcx */
	static const uint8_t xchg[] = {0x4C, 0x87, 0xD9};    /* xchg %r11, %rcx */
	static const uint8_t lin[] = {0x45, 0x89, 0x97};     /* mov %r10d, VC_SOFT_LIN(%r15) */
	static const uint8_t at[] = {0x41, 0xC7, 0x87};      /* movl $insn_at, VC_SOFT_AT(%r15) */
	if (rcx_saved) {
		emit_bytes(e, restore, sizeof restore);
		emit_u32(e, VC_RCX_SAVE);
	} else {
		emit_bytes(e, xchg, sizeof xchg);
	}
	emit_bytes(e, lin, sizeof lin);
	emit_u32(e, VC_SOFT_LIN);
	emit_bytes(e, at, sizeof at);
	emit_u32(e, VC_SOFT_AT);
	emit_u32(e, insn_at | (write ? 0x80000000u : 0));
	emit_jmp(e, miss_stub);
}

bool emit_host_bmi2(void)
{
	return __builtin_cpu_supports("bmi2");
}

bool emit_host_sahf(void)
{
	static int known = -1; /* asked once: cpuid may trap to a hypervisor */
	if (known < 0) {
		unsigned a, b, c, d;
		known = __get_cpuid(0x80000001u, &a, &b, &c, &d) && (c & 1);
	}
	return known;
}

/* r11d = r10d >> 12, the page of the access, without touching the flags
 * (the guest's): shrx, or through xmm8 where the host has no BMI2 (guest
 * code never names xmm8-15). */
static void emit_page_index(struct emit *e)
{
	static const uint8_t bmi2[] = {
		0x41, 0xBB, 0x0C, 0x00, 0x00, 0x00, /* mov $12, %r11d */
		0xC4, 0x42, 0x23, 0xF7, 0xDA,       /* shrx %r11d, %r10d, %r11d */
	};
	static const uint8_t sse2[] = {
		0x66, 0x45, 0x0F, 0x6E, 0xC2,       /* movd %r10d, %xmm8 */
		0x66, 0x41, 0x0F, 0x72, 0xD0, 0x0C, /* psrld $12, %xmm8 */
		0x66, 0x45, 0x0F, 0x7E, 0xC3,       /* movd %xmm8, %r11d */
	};
	if (emit_host_bmi2())
		emit_bytes(e, bmi2, sizeof bmi2);
	else
		emit_bytes(e, sse2, sizeof sse2);
}

void emit_upper_half_test(struct emit *e)
{
	/* rorx $32, %rcx, %rcx, or bswap %rcx: either way ECX is zero exactly
	 * when the upper half was, and all ones when it was. */
	static const uint8_t rorx[] = {0xC4, 0xE3, 0xFB, 0xF0, 0xC9, 0x20};
	static const uint8_t bswap[] = {0x48, 0x0F, 0xC9};
	if (emit_host_bmi2())
		emit_bytes(e, rorx, sizeof rorx);
	else
		emit_bytes(e, bswap, sizeof bswap);
}

void emit_stlb_lookup(struct emit *e, bool write, bool kernel, unsigned size, uint32_t insn_at, uint32_t miss_stub)
{
	const uint32_t table = kernel ? (write ? VC_KSTLB_WRITE : VC_KSTLB_READ) : write ? VC_STLB_WRITE : VC_STLB_READ;

	if (size <= 1) {
		/* A byte never runs onto the next page: the entry alone. */
		static const uint8_t load[] = {0x4F, 0x8B, 0x9C, 0xDF}; /* mov table(%r15,%r11,8), %r11 */
		static const uint8_t test[] = {
			0x4C, 0x87, 0xD9,               /* xchg %r11, %rcx */
			0xE3, 0x05,                     /* jrcxz miss */
			0x4C, 0x87, 0xD9,               /* xchg %r11, %rcx */
			0xEB, 26,                       /* jmp over */
		};
		emit_page_index(e);
		emit_bytes(e, load, sizeof load);
		emit_u32(e, table);
		emit_bytes(e, test, sizeof test);
		uint32_t miss = e->pos;
		emit_stlb_miss(e, write, insn_at, miss_stub, false); /* miss: */
		BT86_ASSERT(e->overflow || e->pos - miss == 26);
		return;                                              /* over: */
	}
	/* RCX = 1 when the access's last byte lies on the next page: bit 32 of
	 * (offset in page + size - 1) << 20, rotated down to ECX. */
	static const uint8_t save[] = {0x49, 0x89, 0x8F};           /* mov %rcx, VC_RCX_SAVE(%r15) */
	static const uint8_t shift_bmi2[] = {
		0xB9, 0x14, 0x00, 0x00, 0x00,                   /* mov $20, %ecx */
		0xC4, 0xC2, 0x71, 0xF7, 0xCA,                   /* shlx %ecx, %r10d, %ecx */
	};
	static const uint8_t shift_sse2[] = {
		0x66, 0x45, 0x0F, 0x6E, 0xC2,                   /* movd %r10d, %xmm8 */
		0x66, 0x41, 0x0F, 0x72, 0xF0, 0x14,             /* pslld $20, %xmm8 */
		0x66, 0x44, 0x0F, 0x7E, 0xC1,                   /* movd %xmm8, %ecx */
	};
	static const uint8_t straddle[] = {0x48, 0x8D, 0x89}; /* lea (size - 1) << 20(%rcx), %rcx */
	static const uint8_t to_ecx_test[] = {0x67, 0xE3};   /* jecxz lookup */
	static const uint8_t via_view[] = {0x4D, 0x8B, 0x9F};      /* mov VC_UWIN_BASE|VC_KWIN_BASE(%r15), %r11 */
	static const uint8_t load[] = {0x4B, 0x8B, 0x8C, 0xDF};    /* mov table(%r15,%r11,8), %rcx */
	static const uint8_t take[] = {0x49, 0x89, 0xCB};          /* mov %rcx, %r11 */
	static const uint8_t restore[] = {0x49, 0x8B, 0x8F};       /* mov VC_RCX_SAVE(%r15), %rcx */

	emit_bytes(e, save, sizeof save);
	emit_u32(e, VC_RCX_SAVE);
	if (emit_host_bmi2())
		emit_bytes(e, shift_bmi2, sizeof shift_bmi2);
	else
		emit_bytes(e, shift_sse2, sizeof shift_sse2);
	emit_bytes(e, straddle, sizeof straddle);
	emit_u32(e, (size - 1) << 20);
	emit_upper_half_test(e);
	emit_bytes(e, to_ecx_test, sizeof to_ecx_test);
	uint32_t to_lookup = e->pos;
	emit_u8(e, 0);
	/* Straddling: through the view, whose mappings check both pages. */
	emit_bytes(e, via_view, sizeof via_view);
	emit_u32(e, kernel ? VC_KWIN_BASE : VC_UWIN_BASE);
	emit_u8(e, 0xEB);                                           /* jmp join */
	uint32_t to_join = e->pos;
	emit_u8(e, 0);
	uint32_t miss = e->pos;
	emit_stlb_miss(e, write, insn_at, miss_stub, true);
	uint32_t lookup = e->pos;                                   /* lookup: */
	emit_page_index(e);
	emit_bytes(e, load, sizeof load);
	emit_u32(e, table);
	emit_u8(e, 0xE3);                                           /* jrcxz miss */
	emit_u8(e, (uint8_t)(int8_t)((int32_t)miss - (int32_t)(e->pos + 1)));
	emit_bytes(e, take, sizeof take);
	uint32_t join = e->pos;                                     /* join: */
	emit_bytes(e, restore, sizeof restore);
	emit_u32(e, VC_RCX_SAVE);
	if (e->overflow)
		return;
	e->base[to_lookup] = (uint8_t)(lookup - (to_lookup + 1));
	e->base[to_join] = (uint8_t)(join - (to_join + 1));
}

void emit_guest_prefix(struct emit *e)
{
	if (e->seg)
		emit_u8(e, e->seg);
	emit_u8(e, 0x67);
}

void emit_store_below_esp(struct emit *e, unsigned from_r8, uint32_t imm, unsigned size)
{
	/* mov %r8d/%r8w or $imm, -size(%esp), with 32-bit addressing; the
	 * operand-size prefix goes first, REX last before the opcode. */
	uint8_t disp = (uint8_t)-(int8_t)size;

	if (size == 2)
		emit_u8(e, 0x66);
	emit_guest_prefix(e);
	if (from_r8) {
		const uint8_t st[] = {0x44, 0x89, 0x44, 0x24, disp};
		emit_bytes(e, st, sizeof st);
		return;
	}
	const uint8_t st[] = {0xC7, 0x44, 0x24, disp};
	emit_bytes(e, st, sizeof st);
	if (size == 2) {
		uint16_t v = (uint16_t)imm;
		emit_bytes(e, &v, 2);
	} else {
		emit_u32(e, imm);
	}
}

void emit_adjust_esp(struct emit *e, int32_t delta)
{
	/* lea delta(%rsp), %esp: 32-bit result, flags untouched */
	if (delta >= -128 && delta <= 127) {
		const uint8_t l[] = {0x8D, 0x64, 0x24, (uint8_t)(int8_t)delta};
		emit_bytes(e, l, sizeof l);
	} else {
		const uint8_t l[] = {0x8D, 0xA4, 0x24};
		emit_bytes(e, l, sizeof l);
		emit_u32(e, (uint32_t)delta);
	}
}

static bool is_legacy_prefix(uint8_t b)
{
	return b == 0x26 || b == 0x2E || b == 0x36 || b == 0x3E || b == 0x64 || b == 0x65 ||
	       b == 0x66 || b == 0x67 || b == 0xF0 || b == 0xF2 || b == 0xF3;
}

bool emit_encoded(struct emit *e, ZydisEncoderRequest *req, bool guest_mem)
{
	uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH + 1];
	ZyanUSize len = sizeof buf - 1;
	bool absolute = false;

	req->machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	if (guest_mem && e->seg)
		req->prefixes |= ZYDIS_ATTRIB_HAS_SEGMENT_GS;
	for (unsigned i = 0; i < req->operand_count; i++)
		if (req->operands[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    req->operands[i].mem.base == ZYDIS_REGISTER_NONE &&
		    req->operands[i].mem.index == ZYDIS_REGISTER_NONE)
			absolute = true;
	if (ZYAN_FAILED(ZydisEncoderEncodeInstruction(req, buf, &len)))
		return false;
	if (absolute && req->address_size_hint == ZYDIS_ADDRESS_SIZE_HINT_32) {
		/* Zydis encodes an absolute address with 64-bit addressing,
		 * where disp32 is sign-extended: add the address-size prefix
		 * so the address stays a 32-bit guest one. */
		bool has67 = false;
		for (ZyanUSize i = 0; i < len && is_legacy_prefix(buf[i]); i++)
			has67 |= buf[i] == 0x67;
		if (!has67) {
			memmove(buf + 1, buf, len);
			buf[0] = 0x67;
			len++;
		}
	}
	emit_bytes(e, buf, (unsigned)len);
	return true;
}
