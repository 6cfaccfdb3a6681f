#include "translate.h"

#include <stdlib.h>
#include <string.h>

#include "../cache/tc.h"
#include "../cpu/emulate.h"
#include "../cpu/vcpu_abi.h"
#include "../mem/gmem.h"
#include "../mem/layout.h"
#include "../util.h"
#include "emit.h"

struct pending_exit {
	uint32_t patch;     /* rel32 that jumps to the stub */
	uint32_t guest_eip;
	uint8_t kind;
	bool chainable;
	uint32_t io;        /* TCX_PORT's, as tc_exit's */
	uint32_t resume;
};

struct builder {
	struct xlate *x;
	struct emit e;
	uint32_t start;     /* code offset of the block */
	uint32_t page;      /* guest linear page of the entry */
	bool paging;
	bool soft;          /* ring 3 under paging: guest memory through the soft TLB */
	bool smap;          /* XMODE_SMAP */
	bool kernel_soft;   /* emitting an XC_KSOFT_MEM: ring 0's soft-TLB tables */
	uint32_t insn_at;   /* code offset of the instruction being emitted */
	struct pending_exit exits[2 * XLATE_MAX_INSNS + 4];
	unsigned n_exits;
	struct tc_insn_map map[XLATE_MAX_INSNS + 1];
	unsigned n_insns;
};

struct insn {
	ZydisDecodedInstruction d;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	const uint8_t *bytes;
	uint8_t gathered[ZYDIS_MAX_INSTRUCTION_LENGTH]; /* a straddling instruction's bytes */
	uint32_t eip;
	enum xclass cls;
};

void xlate_init(struct xlate *x, struct tc *tc, struct gmem *mem, struct stats *stats)
{
	x->tc = tc;
	x->mem = mem;
	x->stats = stats;
	ZydisDecoderInit(&x->dec, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
	memset(x->site, 0, sizeof x->site);
	memset(x->site_kind, 0, sizeof x->site_kind);
	x->n_sites = 0;
	x->stop_before = NULL;
	x->stop_ctx = NULL;
}

/* The slot of `eip` in the marked set, or of the empty entry where it
 * would go. */
static uint32_t site_slot(const struct xlate *x, uint32_t eip)
{
	_Static_assert(XLATE_SITE_SLOTS == 1u << 12, "a 12-bit hash");
	uint32_t i = (eip * 0x9E3779B1u) >> 20;
	while (x->site[i] && x->site[i] != eip)
		i = (i + 1) % XLATE_SITE_SLOTS;
	return i;
}

/* The marks (XLATE_SITE_*) of the instruction at `eip`. */
static unsigned site_kind(const struct xlate *x, uint32_t eip)
{
	uint32_t i = site_slot(x, eip);
	return eip && x->site[i] == eip ? x->site_kind[i] : 0;
}

bool xlate_mark(struct xlate *x, uint32_t eip, unsigned kind)
{
	uint32_t i = site_slot(x, eip);
	if (!eip || (x->site[i] == eip && (x->site_kind[i] & kind)))
		return false;
	if (!x->site[i]) {
		/* A quarter stays empty, so that probes end soon. */
		if (x->n_sites >= XLATE_SITE_SLOTS / 4 * 3)
			return false;
		x->site[i] = eip;
		x->n_sites++;
	}
	x->site_kind[i] |= (uint8_t)kind;
	if (kind == XLATE_SITE_UACCESS)
		x->stats->uaccess_sites++;
	else
		x->stats->ksoft_sites++;
	return true;
}

static bool is_sreg(ZydisRegister r)
{
	return r >= ZYDIS_REGISTER_ES && r <= ZYDIS_REGISTER_GS;
}

/* ES, DS and FS: the segment registers whose repeated loads translated
 * ring-0 code may do itself (segment.h). */
static bool is_reloadable(ZydisRegister r)
{
	return r == ZYDIS_REGISTER_ES || r == ZYDIS_REGISTER_DS || r == ZYDIS_REGISTER_FS;
}

static bool is_gpr32(ZydisRegister r)
{
	return r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_EDI;
}

static unsigned gpr_num(ZydisRegister r)
{
	return (unsigned)(r - ZYDIS_REGISTER_EAX);
}

static int mem_operand(const ZydisDecodedInstruction *d, const ZydisDecodedOperand *ops)
{
	for (unsigned i = 0; i < d->operand_count; i++)
		if (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY)
			return (int)i;
	return -1;
}

static bool is_fs_gs(ZydisRegister seg)
{
	return seg == ZYDIS_REGISTER_FS || seg == ZYDIS_REGISTER_GS;
}

/* Categories whose instructions behave in 64-bit mode exactly as in 32-bit
 * protected mode once their addresses are made 32-bit. */
static bool category_is_plain(ZydisInstructionCategory c)
{
	switch (c) {
	case ZYDIS_CATEGORY_AES:
	case ZYDIS_CATEGORY_BINARY:
	case ZYDIS_CATEGORY_BITBYTE:
	case ZYDIS_CATEGORY_CMOV:
	case ZYDIS_CATEGORY_CONVERT:
	case ZYDIS_CATEGORY_DATAXFER:
	case ZYDIS_CATEGORY_FCMOV:
	case ZYDIS_CATEGORY_FLAGOP:
	case ZYDIS_CATEGORY_LOGICAL:
	case ZYDIS_CATEGORY_LOGICAL_FP:
	case ZYDIS_CATEGORY_MISC:
	case ZYDIS_CATEGORY_MMX:
	case ZYDIS_CATEGORY_NOP:
	case ZYDIS_CATEGORY_WIDENOP:
	case ZYDIS_CATEGORY_PCLMULQDQ:
	case ZYDIS_CATEGORY_PREFETCH:
	case ZYDIS_CATEGORY_ROTATE:
	case ZYDIS_CATEGORY_SEMAPHORE:
	case ZYDIS_CATEGORY_SETCC:
	case ZYDIS_CATEGORY_SHIFT:
	case ZYDIS_CATEGORY_SSE:
	case ZYDIS_CATEGORY_STRINGOP:
	case ZYDIS_CATEGORY_STTNI:
	case ZYDIS_CATEGORY_X87_ALU:
		return true;
	default:
		return false;
	}
}

/* What a TCX_SYSTEM exit tells emu_system of an instruction, 0 for one
 * that is not such (prefixed forms go to the emulator). */
static uint32_t system_io(const ZydisDecodedInstruction *d)
{
	unsigned op, vector = 0;
	switch (d->mnemonic) {
	case ZYDIS_MNEMONIC_INT:
		op = EMU_SYS_INT;
		vector = d->raw.imm[0].value.u & 0xFF;
		break;
	case ZYDIS_MNEMONIC_INT3:
		op = EMU_SYS_INT;
		vector = EXC_BP;
		break;
	case ZYDIS_MNEMONIC_IRETD:
		op = EMU_SYS_IRET;
		break;
	case ZYDIS_MNEMONIC_SYSENTER:
		op = EMU_SYS_SYSENTER;
		break;
	case ZYDIS_MNEMONIC_SYSEXIT:
		op = EMU_SYS_SYSEXIT;
		break;
	default:
		return 0;
	}
	if (d->raw.prefix_count)
		return 0;
	return op | (uint32_t)d->length << 4 | vector << 8; /* never 0: the length */
}

enum xclass xlate_classify(const ZydisDecodedInstruction *d, const ZydisDecodedOperand *ops)
{
	bool addr16 = d->address_width == 16;
	bool op32 = d->operand_width == 32;
	int m = mem_operand(d, ops);

	if (d->encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY)
		return XC_EMULATE; /* VEX/EVEX/XOP/3DNow!: the virtual CPU has none */
	if (addr16 && (m >= 0 || d->meta.category == ZYDIS_CATEGORY_COND_BR))
		return XC_EMULATE; /* 16-bit addressing has no 64-bit-mode form */
	/* An implicit operand through FS or GS (string instructions, xlat)
	 * would reach the host's FS/GS: the monitor's TLS. */
	for (unsigned i = 0; i < d->operand_count; i++)
		if (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    ops[i].visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN && is_fs_gs(ops[i].mem.segment) &&
		    d->meta.category != ZYDIS_CATEGORY_PUSH && d->meta.category != ZYDIS_CATEGORY_POP)
			return XC_EMULATE;

	if (system_io(d))
		return XC_SYSTEM;
	switch (d->mnemonic) {
	case ZYDIS_MNEMONIC_PUSH:
		if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER && is_sreg(ops[0].reg.value))
			return XC_PUSH_SREG;
		return op32 ? XC_PUSH : XC_EMULATE;
	case ZYDIS_MNEMONIC_POP:
		if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER && is_sreg(ops[0].reg.value))
			return op32 && is_reloadable(ops[0].reg.value) ? XC_SREG_RELOAD : XC_EMULATE;
		return op32 ? XC_POP : XC_EMULATE;
	case ZYDIS_MNEMONIC_PUSHFD:
		return XC_PUSHF;
	case ZYDIS_MNEMONIC_POPFD:
		return XC_POPF;
	case ZYDIS_MNEMONIC_LEAVE:
		return op32 ? XC_LEAVE : XC_EMULATE;
	case ZYDIS_MNEMONIC_PUSHAD:
		return XC_PUSHA;
	case ZYDIS_MNEMONIC_POPAD:
		return XC_POPA;
	case ZYDIS_MNEMONIC_JMP:
	case ZYDIS_MNEMONIC_CALL:
		if (!op32 || d->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR ||
		    ops[0].type == ZYDIS_OPERAND_TYPE_POINTER)
			return XC_EMULATE;
		if (ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
			return d->mnemonic == ZYDIS_MNEMONIC_JMP ? XC_JMP : XC_CALL;
		return d->mnemonic == ZYDIS_MNEMONIC_JMP ? XC_JMP_IND : XC_CALL_IND;
	case ZYDIS_MNEMONIC_RET:
		if (d->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
			return XC_EMULATE; /* lret */
		return op32 ? XC_RET : XC_EMULATE;
	case ZYDIS_MNEMONIC_LOOP:
	case ZYDIS_MNEMONIC_LOOPE:
	case ZYDIS_MNEMONIC_LOOPNE:
	case ZYDIS_MNEMONIC_JECXZ:
		return op32 ? XC_LOOP : XC_EMULATE;
	case ZYDIS_MNEMONIC_JCXZ:
		return XC_EMULATE;
	case ZYDIS_MNEMONIC_CLI:
		return XC_CLI;
	case ZYDIS_MNEMONIC_STI:
		return XC_STI;
	case ZYDIS_MNEMONIC_STAC:
	case ZYDIS_MNEMONIC_CLAC:
		return XC_SET_AC;
	case ZYDIS_MNEMONIC_MOV:
		if (ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER && ops[1].reg.value == ZYDIS_REGISTER_CR2)
			return XC_MOV_FROM_CR2;
		for (unsigned i = 0; i < d->operand_count_visible; i++)
			if (ops[i].type == ZYDIS_OPERAND_TYPE_REGISTER &&
			    !is_sreg(ops[i].reg.value) &&
			    ZydisRegisterGetClass(ops[i].reg.value) != ZYDIS_REGCLASS_GPR8 &&
			    ZydisRegisterGetClass(ops[i].reg.value) != ZYDIS_REGCLASS_GPR16 &&
			    ZydisRegisterGetClass(ops[i].reg.value) != ZYDIS_REGCLASS_GPR32)
				return XC_EMULATE; /* control and debug registers */
		if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER && is_sreg(ops[0].reg.value))
			return is_reloadable(ops[0].reg.value) && ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER
				       ? XC_SREG_RELOAD : XC_EMULATE;
		if (ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER && is_sreg(ops[1].reg.value))
			return XC_MOV_FROM_SREG;
		break;
	case ZYDIS_MNEMONIC_ENDBR32: /* CET landing pads: hint NOPs without CET */
	case ZYDIS_MNEMONIC_ENDBR64:
		return XC_PLAIN;
	case ZYDIS_MNEMONIC_BOUND:  /* 62: EVEX in 64-bit mode */
	case ZYDIS_MNEMONIC_ARPL:   /* 63: MOVSXD */
	case ZYDIS_MNEMONIC_LDS:    /* C5: VEX */
	case ZYDIS_MNEMONIC_LES:    /* C4: VEX */
	case ZYDIS_MNEMONIC_LSS:
	case ZYDIS_MNEMONIC_LFS:
	case ZYDIS_MNEMONIC_LGS:
	case ZYDIS_MNEMONIC_SALC:
	case ZYDIS_MNEMONIC_ENTER:
	case ZYDIS_MNEMONIC_PUSHF:  /* 16-bit forms */
	case ZYDIS_MNEMONIC_POPF:
	case ZYDIS_MNEMONIC_CPUID:
	case ZYDIS_MNEMONIC_RDTSC:
	case ZYDIS_MNEMONIC_RDTSCP:
	case ZYDIS_MNEMONIC_RDPMC:
	case ZYDIS_MNEMONIC_RDPID:
	case ZYDIS_MNEMONIC_XGETBV:
	case ZYDIS_MNEMONIC_UD0:
	case ZYDIS_MNEMONIC_UD1:
		return XC_EMULATE;
	default:
		break;
	}
	if (d->meta.category == ZYDIS_CATEGORY_COND_BR)
		return op32 ? XC_JCC : XC_EMULATE;
	if (!category_is_plain(d->meta.category))
		return XC_EMULATE;
	/* Anything else that moves the stack pointer implicitly. */
	for (unsigned i = d->operand_count_visible; i < d->operand_count; i++)
		if (ops[i].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    (ops[i].reg.value == ZYDIS_REGISTER_ESP || ops[i].reg.value == ZYDIS_REGISTER_SP))
			return XC_EMULATE;
	return XC_PLAIN;
}

static void add_exit(struct builder *b, uint32_t patch, uint32_t eip, uint8_t kind, bool chainable)
{
	BT86_ASSERT(b->n_exits < ARRAY_SIZE(b->exits));
	b->exits[b->n_exits++] = (struct pending_exit){patch, eip, kind, chainable, 0, 0};
}

/* in and out at CPL 0 (where every port is allowed): an exit that the
 * monitor serves from what the translator decoded, the block going on
 * after it (the monitor's loop takes a pending interrupt first).  String
 * forms, and other rings with their IOPL and I/O bitmap, go to the
 * emulator. */
static void emit_port_exit(struct builder *b, const struct insn *in)
{
	ZydisMnemonic mn = in->d.mnemonic;
	const ZydisDecodedOperand *acc = &in->ops[mn == ZYDIS_MNEMONIC_IN ? 0 : 1];
	const ZydisDecodedOperand *port = &in->ops[mn == ZYDIS_MNEMONIC_IN ? 1 : 0];
	uint32_t io = acc->size / 8u | in->d.length << 4 | (mn == ZYDIS_MNEMONIC_IN ? TC_IO_IN : 0);
	if (port->type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
		io |= (uint32_t)port->imm.value.u << 16;
	else
		io |= TC_IO_DX;
	uint32_t at = emit_jmp(&b->e, 0);
	add_exit(b, at, in->eip, TCX_PORT, false);
	b->exits[b->n_exits - 1].io = io;
	b->exits[b->n_exits - 1].resume = b->e.pos;
}

/* Whether a branch to `eip` may be chained: its target is on the block's
 * own page and, under paging, not in the page's last bytes, where the
 * block found may hold an instruction running onto the next page (never
 * chained: its key includes where that page maps, tc.h). */
static bool same_page(const struct builder *b, uint32_t eip)
{
	return (eip >> PAGE_SHIFT_4K) == b->page &&
	       !(b->paging && (eip & (PAGE_SIZE_4K - 1)) > PAGE_SIZE_4K - ZYDIS_MAX_INSTRUCTION_LENGTH);
}

static void exit_to(struct builder *b, uint32_t target)
{
	uint32_t at = emit_jmp(&b->e, 0);
	add_exit(b, at, target, TCX_BRANCH, same_page(b, target));
}

static void init_request_from(ZydisEncoderRequest *req, const struct insn *in)
{
	ZydisEncoderDecodedInstructionToEncoderRequest(&in->d, in->ops, in->d.operand_count_visible,
						       req);
	req->address_size_hint = ZYDIS_ADDRESS_SIZE_HINT_32;
}

/* A memory operand of the guest's as an encoder operand (32-bit address). */
static void mem_from(ZydisEncoderOperand *o, const ZydisDecodedOperand *src, uint16_t size)
{
	memset(o, 0, sizeof *o);
	o->type = ZYDIS_OPERAND_TYPE_MEMORY;
	o->mem.base = src->mem.base;
	o->mem.index = src->mem.index;
	o->mem.scale = src->mem.index != ZYDIS_REGISTER_NONE ? src->mem.scale : 0;
	o->mem.displacement = src->mem.disp.has_displacement ? src->mem.disp.value : 0;
	o->mem.size = size;
}

/* lea of a guest memory operand (plus `adjust`) into r8d or r10d (reg 0
 * or 2), with an FS or GS base (r9 or r12) added modulo 4 GiB like the
 * guest's own address arithmetic: the linear address to access. */
static bool emit_lea(struct builder *b, const ZydisDecodedOperand *m, int32_t adjust, unsigned reg)
{
	ZydisEncoderRequest lea;

	memset(&lea, 0, sizeof lea);
	lea.mnemonic = ZYDIS_MNEMONIC_LEA;
	lea.operand_count = 2;
	lea.address_size_hint = ZYDIS_ADDRESS_SIZE_HINT_32;
	lea.operands[0].type = ZYDIS_OPERAND_TYPE_REGISTER;
	lea.operands[0].reg.value = reg == 0 ? ZYDIS_REGISTER_R8D : ZYDIS_REGISTER_R10D;
	mem_from(&lea.operands[1], m, 4);
	lea.operands[1].mem.displacement = (int32_t)(lea.operands[1].mem.displacement + adjust);
	if (lea.operands[1].mem.base == ZYDIS_REGISTER_NONE &&
	    lea.operands[1].mem.index == ZYDIS_REGISTER_NONE) {
		/* lea of an absolute address is a mov of it: mov $disp, %r8d|%r10d */
		emit_u8(&b->e, 0x41);
		emit_u8(&b->e, (uint8_t)(0xB8 + reg));
		emit_u32(&b->e, (uint32_t)lea.operands[1].mem.displacement);
	} else if (!emit_encoded(&b->e, &lea, false)) {
		return false;
	}
	if (!is_fs_gs(m->mem.segment))
		return true;
	/* lea (%reg,%r9|%r12), %reg32 */
	uint8_t idx = m->mem.segment == ZYDIS_REGISTER_FS ? 1 : 4;
	const uint8_t add[] = {0x47, 0x8D, (uint8_t)(reg << 3 | 4), (uint8_t)(idx << 3 | reg)};
	emit_bytes(&b->e, add, sizeof add);
	return true;
}

/* Soft-TLB accesses (ring 3 of a young space under paging, stlb.h): r10d =
 * the linear address, r11 = its page's entry (an empty one exits to the
 * monitor, which resumes the instruction from its start), and the access
 * through gs:(%r11,%r10). */

static void emit_soft_lookup(struct builder *b, bool write, unsigned size)
{
	emit_stlb_lookup(&b->e, write, b->kernel_soft, size, b->insn_at, b->x->tc->soft_miss_stub);
}

/* r10d = ESP + disp (32-bit arithmetic), then the lookup. */
static void emit_soft_esp(struct builder *b, int8_t disp, bool write)
{
	const uint8_t lea[] = {0x67, 0x44, 0x8D, 0x54, 0x24, (uint8_t)disp}; /* lea disp(%esp), %r10d */
	emit_bytes(&b->e, lea, sizeof lea);
	emit_soft_lookup(b, write, 4);
}

/* mov between (%r11,%r10) and register `reg` (0-15, r8 = 8): `op` is
 * 0x89 (store) or 0x8B (load); 8, 16 or 32 bits. */
static void emit_soft_mov(struct builder *b, uint8_t op, unsigned reg, unsigned size)
{
	if (size == 2)
		emit_u8(&b->e, 0x66);
	if (size == 1)
		op--; /* 0x88, 0x8A */
	const uint8_t mov[] = {(uint8_t)(0x43 | (reg & 8) >> 1), op, (uint8_t)(0x04 | (reg & 7) << 3), 0x13};
	emit_bytes(&b->e, mov, sizeof mov);
}

/* movl $imm, (%r11,%r10) */
static void emit_soft_store_imm(struct builder *b, uint32_t imm)
{
	const uint8_t mov[] = {0x43, 0xC7, 0x04, 0x13};
	emit_bytes(&b->e, mov, sizeof mov);
	emit_u32(&b->e, imm);
}

/* Stores r8d or `imm` (4 bytes) below ESP, as a push does before moving
 * ESP. */
static void emit_push_store(struct builder *b, bool from_r8, uint32_t imm)
{
	if (!b->soft) {
		emit_store_below_esp(&b->e, from_r8, imm, 4);
		return;
	}
	emit_soft_esp(b, -4, true);
	if (from_r8)
		emit_soft_mov(b, 0x89, 8, 4);
	else
		emit_soft_store_imm(b, imm);
}

/* mov (%esp), %r8d: what pop and ret load. */
static void emit_load_top_r8(struct builder *b)
{
	if (b->soft) {
		emit_soft_esp(b, 0, false);
		emit_soft_mov(b, 0x8B, 8, 4);
		return;
	}
	const uint8_t ld[] = {0x44, 0x8B, 0x04, 0x24};
	emit_guest_prefix(&b->e);
	emit_bytes(&b->e, ld, sizeof ld);
}

/* mov M, %r8d (load) or mov %r8d, M (store) through the soft TLB. */
static bool emit_soft_r8_mem(struct builder *b, const ZydisDecodedOperand *m, bool load, int32_t adjust,
			     uint16_t size)
{
	if (!emit_lea(b, m, adjust, 2))
		return false;
	emit_soft_lookup(b, !load, size);
	emit_soft_mov(b, load ? 0x8B : 0x89, 8, size);
	return true;
}

/* mov M, %r8d (load) or mov %r8d, M (store) for a guest memory operand. */
static bool emit_r8_mem(struct builder *b, const ZydisDecodedOperand *m, bool load, int32_t adjust,
			uint16_t size)
{
	ZydisEncoderRequest req;

	if (b->soft)
		return emit_soft_r8_mem(b, m, load, adjust, size);
	memset(&req, 0, sizeof req);
	req.mnemonic = ZYDIS_MNEMONIC_MOV;
	req.operand_count = 2;
	req.address_size_hint = ZYDIS_ADDRESS_SIZE_HINT_32;
	unsigned r = load ? 0 : 1, mm = load ? 1 : 0;
	req.operands[r].type = ZYDIS_OPERAND_TYPE_REGISTER;
	req.operands[r].reg.value = size == 1 ? ZYDIS_REGISTER_R8B : size == 2 ? ZYDIS_REGISTER_R8W : ZYDIS_REGISTER_R8D;
	mem_from(&req.operands[mm], m, size);
	req.operands[mm].mem.displacement = (int32_t)(req.operands[mm].mem.displacement + adjust);
	if (is_fs_gs(m->mem.segment)) {
		/* Through the linear address: r8d for a load (it becomes the
		 * value), r10d for a store (r8d holds the value). */
		unsigned via = load ? 0 : 2;
		if (!emit_lea(b, m, adjust, via))
			return false;
		req.operands[mm].mem.base = via == 0 ? ZYDIS_REGISTER_R8D : ZYDIS_REGISTER_R10D;
		req.operands[mm].mem.index = ZYDIS_REGISTER_NONE;
		req.operands[mm].mem.scale = 0;
		req.operands[mm].mem.displacement = 0;
	}
	return emit_encoded(&b->e, &req, true);
}

/* The instruction with memory operand `m` replaced by (base,index), its
 * segment override dropped; `guest_mem` as emit_encoded's. */
static bool emit_rebased(struct builder *b, const struct insn *in, int m, ZydisRegister base, ZydisRegister index,
			 bool guest_mem)
{
	ZydisEncoderRequest req;

	init_request_from(&req, in);
	req.address_size_hint = ZYDIS_ADDRESS_SIZE_HINT_NONE; /* the registers' width says */
	req.prefixes &= ~(ZyanU64)ZYDIS_ATTRIB_HAS_SEGMENT;
	ZydisEncoderOperand *o = &req.operands[m];
	o->mem.base = base;
	o->mem.index = index;
	o->mem.scale = index != ZYDIS_REGISTER_NONE ? 1 : 0;
	o->mem.displacement = 0;
	return emit_encoded(&b->e, &req, guest_mem);
}

/* A copy whose memory operand goes through FS or GS: compute the linear
 * address into r8d (wrapping at 4 GiB like the guest) and access (%r8d). */
static bool emit_seg_based(struct builder *b, const struct insn *in, int m)
{
	return emit_lea(b, &in->ops[m], 0, 0) && emit_rebased(b, in, m, ZYDIS_REGISTER_R8D, ZYDIS_REGISTER_NONE, true);
}

/* The largest access the soft TLB's page-crossing test covers (an SSE
 * operand); fxsave and the x87 environments go through the user view. */
#define SOFT_MAX_ACCESS 16u

/* A copy whose explicit memory operand goes through the soft TLB; false
 * (nothing emitted) when it has none, when it is larger than
 * SOFT_MAX_ACCESS, or when the encoder cannot give it (%r11,%r10) (ah-dh
 * cannot share an instruction with a REX prefix): the user view serves it
 * directly then. */
static bool emit_soft_plain(struct builder *b, const struct insn *in)
{
	int m = mem_operand(&in->d, in->ops);
	if (m < 0 || in->ops[m].visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN ||
	    in->ops[m].mem.type != ZYDIS_MEMOP_TYPE_MEM || in->ops[m].size > 8 * SOFT_MAX_ACCESS)
		return false;
	uint32_t at = b->e.pos;
	if (emit_lea(b, &in->ops[m], 0, 2)) {
		emit_soft_lookup(b, in->ops[m].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE, in->ops[m].size / 8u);
		if (emit_rebased(b, in, m, ZYDIS_REGISTER_R11, ZYDIS_REGISTER_R10, false))
			return true;
	}
	b->e.pos = at;
	return false;
}

static bool emit_encoded_without_segment(struct builder *b, const struct insn *in)
{
	ZydisEncoderRequest req;
	init_request_from(&req, in);
	req.prefixes &= ~(ZyanU64)(ZYDIS_ATTRIB_HAS_SEGMENT_FS | ZYDIS_ATTRIB_HAS_SEGMENT_GS);
	return emit_encoded(&b->e, &req, false);
}

static bool emit_plain(struct builder *b, const struct insn *in)
{
	const ZydisDecodedInstruction *d = &in->d;
	int m = mem_operand(d, in->ops);

	if (m >= 0 && in->ops[m].visibility != ZYDIS_OPERAND_VISIBILITY_HIDDEN &&
	    is_fs_gs(in->ops[m].mem.segment)) {
		if (in->ops[m].mem.type != ZYDIS_MEMOP_TYPE_MEM)
			return emit_encoded_without_segment(b, in); /* lea, nop: no access */
		return emit_seg_based(b, in, m);
	}
	if (d->opcode_map == ZYDIS_OPCODE_MAP_DEFAULT &&
	    ((d->opcode >= 0x40 && d->opcode <= 0x4F) || d->opcode == 0x82)) {
		/* inc/dec r32 (REX prefixes in 64-bit mode) and the 0x82 alias
		 * of group 1: the encoder picks the 64-bit-mode forms. */
		ZydisEncoderRequest req;
		init_request_from(&req, in);
		return emit_encoded(&b->e, &req, m >= 0);
	}
	unsigned skip = 0; /* legacy prefixes to copy from, past the ones we drop */
	if (m >= 0) {
		emit_guest_prefix(&b->e);
		/* In the user view the gs: prefix must be the only segment
		 * override (cs/ds/es/ss mean base 0 anyway). */
		while (b->e.seg && skip < d->raw.prefix_count) {
			uint8_t p = in->bytes[skip];
			if (p != 0x26 && p != 0x2E && p != 0x36 && p != 0x3E)
				break;
			skip++;
		}
	}
	if (m >= 0 && (d->attributes & ZYDIS_ATTRIB_HAS_MODRM) && d->raw.modrm.mod == 0 &&
	    d->raw.modrm.rm == 5) {
		/* disp32 alone is RIP-relative in 64-bit mode: use the SIB form. */
		unsigned mo = d->raw.modrm.offset;
		emit_bytes(&b->e, in->bytes + skip, mo - skip);
		emit_u8(&b->e, (uint8_t)((in->bytes[mo] & 0xF8) | 4));
		emit_u8(&b->e, 0x25);
		emit_bytes(&b->e, in->bytes + mo + 1, d->length - mo - 1);
		return true;
	}
	emit_bytes(&b->e, in->bytes + skip, d->length - skip);
	return true;
}

static bool emit_push(struct builder *b, const struct insn *in)
{
	const ZydisDecodedOperand *o = &in->ops[0];

	switch (o->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER: {
		if (!is_gpr32(o->reg.value))
			return false;
		if (b->soft) {
			emit_soft_esp(b, -4, true);
			emit_soft_mov(b, 0x89, gpr_num(o->reg.value), 4);
			break;
		}
		/* mov %reg, -4(%esp) */
		const uint8_t st[] = {0x89, (uint8_t)(0x44 | gpr_num(o->reg.value) << 3), 0x24, 0xFC};
		emit_guest_prefix(&b->e);
		emit_bytes(&b->e, st, sizeof st);
		break;
	}
	case ZYDIS_OPERAND_TYPE_IMMEDIATE:
		emit_push_store(b, false, (uint32_t)o->imm.value.s);
		break;
	case ZYDIS_OPERAND_TYPE_MEMORY:
		if (!emit_r8_mem(b, o, true, 0, 4))
			return false;
		emit_push_store(b, true, 0);
		break;
	default:
		return false;
	}
	emit_adjust_esp(&b->e, -4);
	return true;
}

/* pushad: EAX, ECX, EDX, EBX, the original ESP, EBP, ESI and EDI stored
 * from ESP - 4 down, in the CPU's order (so the first store to fault is
 * the one the CPU's would be), then ESP moved.  In the soft-TLB form the
 * emulator does it. */
static bool emit_pusha(struct builder *b)
{
	if (b->soft)
		return false;
	for (unsigned r = 0; r < 8; r++) {
		/* mov %r32, -4 * (r + 1)(%esp): the register numbers are the push order */
		const uint8_t st[] = {0x89, (uint8_t)(0x44 | r << 3), 0x24, (uint8_t)(-4 * (int)(r + 1))};
		emit_guest_prefix(&b->e);
		emit_bytes(&b->e, st, sizeof st);
	}
	emit_adjust_esp(&b->e, -32);
	return true;
}

/* popad: EDI, ESI, EBP, (ESP skipped), EBX, EDX, ECX and EAX loaded from
 * ESP up, then ESP moved.  The frame's eight words are first loaded into
 * r8d in the CPU's order, so that the first load to fault is the one the
 * CPU's would be (CR2 at the first byte of an absent page) and leaves
 * every guest register as it was, as the SDM has a fault do (QEMU 7.2
 * keeps the registers loaded before the fault). */
static bool emit_popa(struct builder *b)
{
	if (b->soft)
		return false;
	for (unsigned i = 0; i < 8; i++) {
		const uint8_t probe[] = {0x44, 0x8B, 0x44, 0x24, (uint8_t)(4 * i)}; /* mov 4i(%esp), %r8d */
		emit_guest_prefix(&b->e);
		emit_bytes(&b->e, probe, sizeof probe);
	}
	for (unsigned r = 0; r < 8; r++) {
		if (r == 4)
			continue; /* the saved ESP is skipped */
		/* mov 28 - 4 * r(%esp), %r32 */
		const uint8_t ld[] = {0x8B, (uint8_t)(0x44 | r << 3), 0x24, (uint8_t)(28 - 4 * r)};
		emit_guest_prefix(&b->e);
		emit_bytes(&b->e, ld, sizeof ld);
	}
	emit_adjust_esp(&b->e, 32);
	return true;
}

static bool emit_pop(struct builder *b, const struct insn *in)
{
	const ZydisDecodedOperand *o = &in->ops[0];

	if (o->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		if (!is_gpr32(o->reg.value))
			return false;
		if (b->soft) {
			emit_soft_esp(b, 0, false);
			emit_soft_mov(b, 0x8B, gpr_num(o->reg.value), 4);
		} else {
			/* mov (%esp), %reg */
			const uint8_t ld[] = {0x8B, (uint8_t)(0x04 | gpr_num(o->reg.value) << 3), 0x24};
			emit_guest_prefix(&b->e);
			emit_bytes(&b->e, ld, sizeof ld);
		}
		if (o->reg.value == ZYDIS_REGISTER_ESP)
			return true; /* pop %esp: the loaded value wins */
	} else if (o->type == ZYDIS_OPERAND_TYPE_MEMORY) {
		emit_load_top_r8(b);
		/* An ESP-based destination is addressed after the increment. */
		int32_t adj = o->mem.base == ZYDIS_REGISTER_ESP ? 4 : 0;
		if (!emit_r8_mem(b, o, false, adj, 4))
			return false;
	} else {
		return false;
	}
	emit_adjust_esp(&b->e, 4);
	return true;
}

/* pushfq/popfq run on a scratch stack in the VCPU: the guest's stack is
 * guest memory, reached only through 32-bit addresses. */
static const uint8_t to_scratch_stack[] = {
	0x49, 0x89, 0xE3,                           /* mov %rsp, %r11 */
	0x49, 0x8D, 0xA7, VC_SCRATCH_TOP, 0, 0, 0,  /* lea VC_SCRATCH_TOP(%r15), %rsp */
};
static const uint8_t from_scratch_stack[] = {0x4C, 0x89, 0xDC}; /* mov %r11, %rsp */

static void emit_pushf(struct builder *b)
{
	emit_bytes(&b->e, to_scratch_stack, sizeof to_scratch_stack);
	const uint8_t seq[] = {
		0x9C,                               /* pushfq */
		0x41, 0x58,                         /* pop %r8 */
		0x4C, 0x89, 0xDC,                   /* mov %r11, %rsp */
		0x45, 0x8B, 0x57, VC_VIF,           /* mov VC_VIF(%r15), %r10d */
		0x47, 0x8D, 0x84, 0x10, 0x00, 0xFE, 0xFF, 0xFF, /* lea -0x200(%r8,%r10), %r8d */
		0x45, 0x8B, 0x57, VC_VSYS,          /* mov VC_VSYS(%r15), %r10d */
		0x47, 0x8D, 0x04, 0x10,             /* lea (%r8,%r10), %r8d */
	};
	emit_bytes(&b->e, seq, sizeof seq);
	emit_store_below_esp(&b->e, 1, 0, 4);
	emit_adjust_esp(&b->e, -4);
}

/* popfq costs ~14 cycles (the 2026-12-07 host), so when the image changes
 * none of the host-held bits beyond the status flags and sets no TF (DF,
 * NT and ID as they are: pushf then popf, as Linux's irqsave and
 * irqrestore do), OF comes from an add and the others from sahf, ~1 cycle,
 * RAX kept in R11 meanwhile.  Any other image goes to the emulator before
 * anything is stored (the test clobbers only flags the popf replaces),
 * which runs the popf and single-steps from it under TF; so does every
 * popf while the host steps the block (its TF differs from the image's).
 * Without sahf, TF alone is tested and popfq loads the host-held bits. */
static void emit_popf(struct builder *b, const struct insn *in)
{
	bool sahf = emit_host_sahf();
	uint32_t at;
	const uint8_t load[] = {0x44, 0x8B, 0x04, 0x24}; /* mov (%esp), %r8d */
	emit_guest_prefix(&b->e);
	emit_bytes(&b->e, load, sizeof load);
	if (sahf) {
		emit_bytes(&b->e, to_scratch_stack, sizeof to_scratch_stack);
		const uint8_t read[] = {
			0x9C,                               /* pushfq */
			0x41, 0x5A,                         /* pop %r10 */
			0x4C, 0x89, 0xDC,                   /* mov %r11, %rsp */
			0x45, 0x31, 0xC2,                   /* xor %r8d, %r10d */
			0x41, 0xF7, 0xC2,                   /* test $(TF|DF|NT|ID), %r10d */
		};
		emit_bytes(&b->e, read, sizeof read);
		emit_u32(&b->e, FL_TF | (FL_HOST_HELD & ~FL_STATUS));
	} else {
		const uint8_t tf[] = {0x41, 0xF7, 0xC0, 0x00, 0x01, 0x00, 0x00}; /* test $TF, %r8d */
		emit_bytes(&b->e, tf, sizeof tf);
	}
	at = emit_jcc(&b->e, 0x5, 0); /* jnz: to the emulator */
	add_exit(b, at, in->eip, TCX_EMULATE, false);
	const uint8_t rest[] = {
		0x45, 0x89, 0xC2,                   /* mov %r8d, %r10d */
		0x41, 0x81, 0xE2, 0x00, 0x02, 0x00, 0x00, /* and $IF, %r10d */
		0x45, 0x89, 0x57, VC_VIF,           /* mov %r10d, VC_VIF(%r15) */
		0x45, 0x89, 0xC2,                   /* mov %r8d, %r10d */
		0x41, 0x81, 0xE2, 0x00, 0x30, 0x04, 0x00, /* and $(IOPL|AC), %r10d */
		0x45, 0x89, 0x57, VC_VSYS,          /* mov %r10d, VC_VSYS(%r15) */
		0x45, 0x89, 0xC2,                   /* mov %r8d, %r10d */
		0x41, 0xC1, 0xEA, 0x09,             /* shr $9, %r10d */
		0x41, 0x83, 0xE2, 0x01,             /* and $1, %r10d */
		0x45, 0x23, 0x57, VC_IRQ_WAIT,      /* and VC_IRQ_WAIT(%r15), %r10d */
		0x45, 0x89, 0x57, VC_ATTN_IRQ,      /* mov %r10d, VC_ATTN_IRQ(%r15) */
	};
	emit_bytes(&b->e, rest, sizeof rest);
	if (sahf) {
		const uint8_t status[] = {
			0x49, 0x89, 0xC3,                   /* mov %rax, %r11 */
			0x45, 0x89, 0xC2,                   /* mov %r8d, %r10d */
			0x41, 0xC1, 0xEA, 0x04,             /* shr $4, %r10d: OF to bit 7 */
			0x41, 0x80, 0xE2, 0x80,             /* and $0x80, %r10b */
			0x44, 0x89, 0xC0,                   /* mov %r8d, %eax */
			0xC1, 0xE0, 0x08,                   /* shl $8, %eax: AH = the image's low byte */
			0x44, 0x88, 0xD0,                   /* mov %r10b, %al */
			0x04, 0x80,                         /* add $0x80, %al: OF as in the image */
			0x9E,                               /* sahf: SF ZF AF PF CF */
			0x4C, 0x89, 0xD8,                   /* mov %r11, %rax */
		};
		emit_bytes(&b->e, status, sizeof status);
	} else {
		const uint8_t host_held[] = {0x41, 0x81, 0xE0}; /* and $FL_HOST_HELD, %r8d */
		emit_bytes(&b->e, host_held, sizeof host_held);
		emit_u32(&b->e, FL_HOST_HELD);
		const uint8_t load_flags[] = {0x41, 0x50, 0x9D}; /* push %r8; popfq */
		emit_bytes(&b->e, to_scratch_stack, sizeof to_scratch_stack);
		emit_bytes(&b->e, load_flags, sizeof load_flags);
		emit_bytes(&b->e, from_scratch_stack, sizeof from_scratch_stack);
	}
	emit_adjust_esp(&b->e, 4);
}

static bool emit_mov_from_sreg(struct builder *b, const struct insn *in)
{
	const ZydisDecodedOperand *dst = &in->ops[0];
	uint32_t off = VC_SEL + 4 * (uint32_t)(in->ops[1].reg.value - ZYDIS_REGISTER_ES);

	if (dst->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		ZydisRegisterClass c = ZydisRegisterGetClass(dst->reg.value);
		unsigned r = (unsigned)ZydisRegisterGetId(dst->reg.value);
		if (c == ZYDIS_REGCLASS_GPR32) {
			const uint8_t l[] = {0x41, 0x8B, (uint8_t)(0x87 | r << 3)}; /* mov off32(%r15), %r32 */
			emit_bytes(&b->e, l, sizeof l);
			emit_u32(&b->e, off);
			return true;
		}
		if (c == ZYDIS_REGCLASS_GPR16) {
			const uint8_t l[] = {0x66, 0x41, 0x8B, (uint8_t)(0x87 | r << 3)};
			emit_bytes(&b->e, l, sizeof l);
			emit_u32(&b->e, off);
			return true;
		}
		return false;
	}
	const uint8_t l[] = {0x45, 0x8B, 0x87}; /* mov off32(%r15), %r8d */
	emit_bytes(&b->e, l, sizeof l);
	emit_u32(&b->e, off);
	return emit_r8_mem(b, dst, false, 0, 2);
}

static void emit_push_sreg(struct builder *b, const struct insn *in)
{
	uint32_t off = VC_SEL + 4 * (uint32_t)(in->ops[0].reg.value - ZYDIS_REGISTER_ES);
	const uint8_t l[] = {0x45, 0x8B, 0x87}; /* mov off32(%r15), %r8d */
	unsigned size = in->d.operand_width / 8;

	emit_bytes(&b->e, l, sizeof l);
	emit_u32(&b->e, off);
	emit_store_below_esp(&b->e, 1, 0, size);
	emit_adjust_esp(&b->e, -(int32_t)size);
}

static bool load_target_r8(struct builder *b, const struct insn *in)
{
	const ZydisDecodedOperand *o = &in->ops[0];

	if (o->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		if (!is_gpr32(o->reg.value))
			return false;
		const uint8_t mv[] = {0x41, 0x89, (uint8_t)(0xC0 | gpr_num(o->reg.value) << 3)}; /* mov %reg, %r8d */
		emit_bytes(&b->e, mv, sizeof mv);
		return true;
	}
	return o->type == ZYDIS_OPERAND_TYPE_MEMORY && emit_r8_mem(b, o, true, 0, 4);
}

/* A string instruction run with 64-bit addresses: the guest's own bytes
 * (no address-size prefix, so RSI, RDI and RCX), with ESI and EDI lifted
 * into a space window by adding its base, which `load_base` puts in r8,
 * and dropped back after; lea and mov leave the flags alone.  Guest
 * registers are 32-bit values zero-extended and window bases are 4 GiB-
 * aligned, so a signal handler's 32-bit view of RSI/RDI mid-instruction is
 * the guest's.  A run leaving the window faults at its edge instead of
 * wrapping at 4 GiB (layout.h keeps never-mapped pages there), and the
 * fault sends the rest to the emulator, which wraps as the CPU does. */
static void emit_biased_string(struct builder *b, const struct insn *in, const uint8_t *load_base, unsigned n)
{
	const uint8_t bias[] = {
		0x4A, 0x8D, 0x3C, 0x07,             /* lea (%rdi,%r8), %rdi */
		0x4A, 0x8D, 0x34, 0x06,             /* lea (%rsi,%r8), %rsi */
		0x89, 0xC9,                         /* mov %ecx, %ecx */
	};
	const uint8_t unbias[] = {0x89, 0xFF, 0x89, 0xF6}; /* mov %edi, %edi; mov %esi, %esi */
	emit_bytes(&b->e, load_base, n);
	emit_bytes(&b->e, bias, sizeof bias);
	emit_bytes(&b->e, in->bytes, in->d.length);
	emit_bytes(&b->e, unbias, sizeof unbias);
}

/* mov VC_KWIN_BASE or VC_UWIN_BASE (at `field`) (%r15), %r8 (reg 0) or
 * %r11 (reg 3): a space window's base. */
#define BASE_LOAD_LEN 7u
static void window_base_load(uint8_t out[BASE_LOAD_LEN], unsigned field, unsigned reg)
{
	const uint8_t load[BASE_LOAD_LEN] = {0x4D, 0x8B, (uint8_t)(0x87 | reg << 3), (uint8_t)field,
					     (uint8_t)(field >> 8), 0, 0};
	memcpy(out, load, BASE_LOAD_LEN);
}

/* A ring-3 movs/stos/cmps/scas in the user view (ES:EDI cannot take the
 * gs: prefix), or a marked ring-0 string instruction in the kernel view. */
static void emit_window_string(struct builder *b, const struct insn *in, unsigned field)
{
	uint8_t load[BASE_LOAD_LEN];
	window_base_load(load, field, 0);
	emit_biased_string(b, in, load, BASE_LOAD_LEN);
}

/* A marked ring-0 instruction's explicit memory operand `m`, in the
 * current kernel view: its linear address into r10d, the view's base into
 * r11, and the instruction with (%r11,%r10) as the operand. */
static bool emit_kwin_mem(struct builder *b, const struct insn *in, int m)
{
	uint8_t load[BASE_LOAD_LEN];

	if (!emit_lea(b, &in->ops[m], 0, 2))
		return false;
	window_base_load(load, VC_KWIN_BASE, 3);
	emit_bytes(&b->e, load, BASE_LOAD_LEN);
	return emit_rebased(b, in, m, ZYDIS_REGISTER_R11, ZYDIS_REGISTER_R10, false);
}

static void emit_disp32(struct builder *b, const uint8_t *op, unsigned n, uint32_t disp)
{
	emit_bytes(&b->e, op, n);
	emit_u32(&b->e, disp);
}

/* Under SMAP, a marked instruction (the kernel's access to user memory,
 * which the kernel view maps) runs only with EFLAGS.AC set; with AC clear
 * the emulator does it, whose check raises the #PF.  RCX is borrowed for
 * jrcxz, which leaves the flags alone; nothing in between can fault. */
static void emit_smap_check(struct builder *b, const struct insn *in)
{
	if (!b->smap)
		return;
	emit_disp32(b, (const uint8_t[]){0x49, 0x89, 0x8F}, 3, VC_RCX_SAVE);         /* mov %rcx, save */
	emit_bytes(&b->e, (const uint8_t[]){0x41, 0x0F, 0xB6, 0x4F, VC_VSYS + 2}, 5); /* movzbl AC's byte, %ecx */
	emit_bytes(&b->e, (const uint8_t[]){0xE3, 0x09}, 2);                          /* jrcxz deny */
	emit_disp32(b, (const uint8_t[]){0x49, 0x8B, 0x8F}, 3, VC_RCX_SAVE);          /* mov save, %rcx */
	emit_bytes(&b->e, (const uint8_t[]){0xEB, 0x0C}, 2);                          /* jmp on */
	emit_disp32(b, (const uint8_t[]){0x49, 0x8B, 0x8F}, 3, VC_RCX_SAVE);          /* deny: mov save, %rcx */
	uint32_t at = emit_jmp(&b->e, 0);                                              /* 5 bytes */
	add_exit(b, at, in->eip, TCX_EMULATE, false);
}

/* A ring-0 load of ES or DS (mov from a register, pop): when the selector
 * is the one loaded last and the descriptor's 8 bytes in the GDT are those
 * it was loaded from (segment.h), the load would change nothing, and it is
 * skipped; otherwise the emulator does it.  The compares borrow RCX (for
 * jrcxz, which leaves the flags alone) only after the descriptor read,
 * the one access that may fault, so a signal sees the guest's registers. */
/* r8d = the selector a mov or pop loads. */
static void emit_load_selector(struct builder *b, const struct insn *in)
{
	if (in->d.mnemonic == ZYDIS_MNEMONIC_POP) {
		static const uint8_t ld[] = {0x44, 0x0F, 0xB7, 0x04, 0x24}; /* movzwl (%esp), %r8d */
		emit_guest_prefix(&b->e);
		emit_bytes(&b->e, ld, sizeof ld);
	} else {
		/* movzwl %reg16, %r8d */
		const uint8_t ld[] = {0x44, 0x0F, 0xB7, (uint8_t)(0xC0 | ZydisRegisterGetId(in->ops[1].reg.value))};
		emit_bytes(&b->e, ld, sizeof ld);
	}
}

/* A ring-0 load of ES, DS or FS repeating a recorded one (segment.h): for
 * each of the register's records, the selector is compared first (no
 * memory access), then, unless it is null, the descriptor's bytes in the
 * GDT.  On a match the selector goes to the VCPU (and for FS the base to
 * r9d and the VCPU), the monitor updating its segment cache at the next
 * exit; otherwise the emulator does the load.  RCX, which jrcxz needs to
 * compare without touching the flags, is borrowed only between accesses
 * that cannot fault, so a signal always sees the guest's registers. */
static void emit_sreg_reload(struct builder *b, const struct insn *in)
{
	static const uint8_t cmp_sel[] = {0x47, 0x8D, 0x1C, 0x18};          /* lea (%r8,%r11), %r11d */
	static const uint8_t sel_to_rcx[] = {0x44, 0x89, 0xD9};             /* mov %r11d, %ecx */
	static const uint8_t load_desc[] = {0x4D, 0x8B, 0x12};              /* mov (%r10), %r10 */
	static const uint8_t cmp_desc[] = {0x4F, 0x8D, 0x14, 0x1A};         /* lea (%r10,%r11), %r10 */
	static const uint8_t desc_to_rcx[] = {0x4C, 0x89, 0xD1};            /* mov %r10, %rcx */
	ZydisRegister reg = in->ops[0].reg.value;
	bool fs = reg == ZYDIS_REGISTER_FS;
	unsigned first = reg == ZYDIS_REGISTER_ES ? 0 : reg == ZYDIS_REGISTER_DS ? 1 : 2, n = fs ? 2 : 1;
	uint32_t miss[2] = {0, 0}, hit[2];

	emit_load_selector(b, in);
	for (unsigned k = 0; k < n; k++) {
		uint32_t at = VC_SREG_RELOAD + (first + k) * SREG_RELOAD_SIZE, null_hit = 0;
		for (unsigned i = 0; i < 2 && k > 0; i++)
			emit_set_rel32(&b->e, miss[i], b->e.pos);
		for (unsigned step = 0; step < 2; step++) {
			if (step == 0) {
				emit_disp32(b, (const uint8_t[]){0x45, 0x8B, 0x9F}, 3, at + SREG_RELOAD_SELNEG);
				emit_bytes(&b->e, cmp_sel, sizeof cmp_sel);
			} else {
				if (fs) {
					/* A null selector has no descriptor to compare
					 * (only FS records one: segment.c). */
					emit_disp32(b, (const uint8_t[]){0x49, 0x89, 0x8F}, 3, VC_RCX_SAVE);
					emit_disp32(b, (const uint8_t[]){0x41, 0x8B, 0x8F}, 3, at + SREG_RELOAD_NULL);
					emit_bytes(&b->e, (const uint8_t[]){0xE3, 0x0C}, 2);          /* jrcxz has_desc */
					emit_disp32(b, (const uint8_t[]){0x49, 0x8B, 0x8F}, 3, VC_RCX_SAVE);
					null_hit = emit_jmp(&b->e, 0);
					emit_disp32(b, (const uint8_t[]){0x49, 0x8B, 0x8F}, 3, VC_RCX_SAVE); /* has_desc: */
				}
				emit_disp32(b, (const uint8_t[]){0x45, 0x8B, 0x97}, 3, at + SREG_RELOAD_DESC_AT);
				emit_bytes(&b->e, load_desc, sizeof load_desc);
				emit_disp32(b, (const uint8_t[]){0x4D, 0x8B, 0x9F}, 3, at + SREG_RELOAD_DESCNEG);
				emit_bytes(&b->e, cmp_desc, sizeof cmp_desc);
			}
			emit_disp32(b, (const uint8_t[]){0x49, 0x89, 0x8F}, 3, VC_RCX_SAVE); /* mov %rcx, save */
			if (step == 0)
				emit_bytes(&b->e, sel_to_rcx, sizeof sel_to_rcx);
			else
				emit_bytes(&b->e, desc_to_rcx, sizeof desc_to_rcx);
			emit_bytes(&b->e, (const uint8_t[]){0xE3, 0x0C}, 2);                  /* jrcxz equal */
			emit_disp32(b, (const uint8_t[]){0x49, 0x8B, 0x8F}, 3, VC_RCX_SAVE);  /* mov save, %rcx */
			miss[step] = emit_jmp(&b->e, 0);                                        /* the next record */
			emit_disp32(b, (const uint8_t[]){0x49, 0x8B, 0x8F}, 3, VC_RCX_SAVE);  /* equal: mov save, %rcx */
		}
		if (fs) {
			emit_set_rel32(&b->e, null_hit, b->e.pos);
			/* mov base(%r15), %r9d */
			emit_disp32(b, (const uint8_t[]){0x45, 0x8B, 0x8F}, 3, at + SREG_RELOAD_BASE);
		}
		hit[k] = emit_jmp(&b->e, 0);
	}
	for (unsigned i = 0; i < 2; i++)
		emit_set_rel32(&b->e, miss[i], b->e.pos);
	uint32_t slow = emit_jmp(&b->e, 0);
	add_exit(b, slow, in->eip, TCX_EMULATE, false);
	for (unsigned k = 0; k < n; k++)
		emit_set_rel32(&b->e, hit[k], b->e.pos);
	if (fs)
		emit_disp32(b, (const uint8_t[]){0x45, 0x89, 0x8F}, 3, VC_FS_BASE);   /* mov %r9d, fs_base */
	/* mov %r8d, sel[reg] (es cs ss ds fs gs) */
	emit_disp32(b, (const uint8_t[]){0x45, 0x89, 0x87}, 3, VC_SEL + 4 * (uint32_t)(reg - ZYDIS_REGISTER_ES));
	if (in->d.mnemonic == ZYDIS_MNEMONIC_POP)
		emit_adjust_esp(&b->e, 4);
}

/* div and idiv raise #DE from a test ahead of them, not through a host
 * SIGFPE: div faults exactly when the high half of its dividend (AH, DX,
 * EDX) is not below the divisor, a zero divisor included; idiv is tested
 * for a zero divisor only (its signed overflow stays with the signal).
 * #DE pushes the flags of before the instruction, so the test leaves them
 * alone: with r8 = ~divisor and r10 = the high half, both zero-extended,
 * RCX = high - divisor (0 - divisor for idiv) in 64 bits has its upper
 * half all ones exactly when the instruction will not fault; rorx (or
 * bswap) brings that half down, and a not makes ECX zero for jecxz.  Divisors in
 * AH-BH (no REX form can name them beside r8) keep the signal.  False
 * when nothing was emitted. */
static bool emit_div_check(struct builder *b, const struct insn *in)
{
	const ZydisDecodedOperand *o = &in->ops[0];
	uint16_t size = o->size / 8;
	uint32_t at = b->e.pos;

	if (o->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		ZydisRegister r = o->reg.value;
		if (r == ZYDIS_REGISTER_AH || r == ZYDIS_REGISTER_CH || r == ZYDIS_REGISTER_DH || r == ZYDIS_REGISTER_BH)
			return false;
		ZydisEncoderRequest req;
		memset(&req, 0, sizeof req);
		req.mnemonic = ZYDIS_MNEMONIC_MOV;
		req.operand_count = 2;
		req.operands[0].type = ZYDIS_OPERAND_TYPE_REGISTER;
		req.operands[0].reg.value = ZYDIS_REGISTER_R8D;
		req.operands[1].type = ZYDIS_OPERAND_TYPE_REGISTER;
		req.operands[1].reg.value = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_COMPAT_32, r);
		if (!emit_encoded(&b->e, &req, false))
			return false;
	} else if (o->type != ZYDIS_OPERAND_TYPE_MEMORY || !emit_r8_mem(b, o, true, 0, size)) {
		b->e.pos = at;
		return false;
	}
	if (size == 1)
		emit_bytes(&b->e, (const uint8_t[]){0x45, 0x0F, 0xB6, 0xC0}, 4); /* movzx %r8b, %r8d */
	else if (size == 2)
		emit_bytes(&b->e, (const uint8_t[]){0x45, 0x0F, 0xB7, 0xC0}, 4); /* movzx %r8w, %r8d */
	emit_disp32(b, (const uint8_t[]){0x49, 0x89, 0x8F}, 3, VC_RCX_SAVE);     /* mov %rcx, save */
	if (in->d.mnemonic == ZYDIS_MNEMONIC_IDIV) {
		emit_bytes(&b->e, (const uint8_t[]){0x49, 0xF7, 0xD0}, 3);          /* not %r8 */
		emit_bytes(&b->e, (const uint8_t[]){0x49, 0x8D, 0x48, 0x01}, 4);    /* lea 1(%r8), %rcx */
	} else {
		if (size == 4)
			emit_bytes(&b->e, (const uint8_t[]){0x41, 0x89, 0xD2}, 3);  /* mov %edx, %r10d */
		else if (size == 2)
			emit_bytes(&b->e, (const uint8_t[]){0x44, 0x0F, 0xB7, 0xD2}, 4); /* movzx %dx, %r10d */
		else if (emit_host_bmi2()) /* AX against divisor << 8: AH >= divisor exactly when AX >= divisor * 256 */
			emit_bytes(&b->e, (const uint8_t[]){0x44, 0x0F, 0xB7, 0xD0, /* movzx %ax, %r10d */
							    0xC4, 0x43, 0x7B, 0xF0, 0xC0, 0x18}, /* rorx $24, %r8d, %r8d */
				   10);
		else /* the same, << 8 as three flag-free lea's (8 * 8 * 4) */
			emit_bytes(&b->e, (const uint8_t[]){0x44, 0x0F, 0xB7, 0xD0,                   /* movzx %ax, %r10d */
							    0x4E, 0x8D, 0x04, 0xC5, 0, 0, 0, 0,       /* lea (,%r8,8), %r8 */
							    0x4E, 0x8D, 0x04, 0xC5, 0, 0, 0, 0,       /* lea (,%r8,8), %r8 */
							    0x4E, 0x8D, 0x04, 0x85, 0, 0, 0, 0},      /* lea (,%r8,4), %r8 */
				   28);
		emit_bytes(&b->e, (const uint8_t[]){0x49, 0xF7, 0xD0}, 3);                /* not %r8 */
		emit_bytes(&b->e, (const uint8_t[]){0x4B, 0x8D, 0x4C, 0x02, 0x01}, 5);    /* lea 1(%r10,%r8), %rcx */
	}
	emit_upper_half_test(&b->e);
	emit_bytes(&b->e, (const uint8_t[]){0xF7, 0xD1, /* not %ecx */
					    0x67, 0xE3, 0x0C}, /* jecxz no_fault */
		   5);
	emit_disp32(b, (const uint8_t[]){0x49, 0x8B, 0x8F}, 3, VC_RCX_SAVE); /* mov save, %rcx */
	uint32_t fault = emit_jmp(&b->e, 0);
	add_exit(b, fault, in->eip, TCX_DIVIDE_ERROR, false);
	emit_disp32(b, (const uint8_t[]){0x49, 0x8B, 0x8F}, 3, VC_RCX_SAVE); /* no_fault: mov save, %rcx */
	return true;
}

static uint32_t branch_target(const struct insn *in)
{
	ZyanU64 t = 0;
	ZydisCalcAbsoluteAddress(&in->d, &in->ops[0], in->eip, &t);
	return (uint32_t)t;
}

/* Emits one guest instruction; returns true when it ends the block. */
static bool emit_insn(struct builder *b, struct insn *in)
{
	struct stats *st = b->x->stats;
	uint32_t next = in->eip + in->d.length;
	bool ok = true;

	switch (in->cls) {
	case XC_PLAIN: {
		bool checked = (in->d.mnemonic == ZYDIS_MNEMONIC_DIV || in->d.mnemonic == ZYDIS_MNEMONIC_IDIV) &&
			       emit_div_check(b, in);
		if (b->soft && emit_soft_plain(b, in))
			break;
		ok = emit_plain(b, in);
		if (ok && !checked) {
			st->insn_verbatim++;
			return false;
		}
		break;
	}
	case XC_PUSH:
		ok = emit_push(b, in);
		break;
	case XC_POP:
		ok = emit_pop(b, in);
		break;
	case XC_PUSHF:
		emit_pushf(b);
		break;
	case XC_PUSHA:
		ok = emit_pusha(b);
		break;
	case XC_POPA:
		ok = emit_popa(b);
		break;
	case XC_POPF:
		emit_popf(b, in);
		break;
	case XC_LEAVE: {
		const uint8_t seq[] = {
			0x44, 0x8B, 0x45, 0x00,       /* mov 0(%ebp), %r8d */
			0x8D, 0x65, 0x04,             /* lea 4(%rbp), %esp */
			0x44, 0x89, 0xC5,             /* mov %r8d, %ebp */
		};
		if (b->soft) {
			const uint8_t lea[] = {0x67, 0x44, 0x8D, 0x55, 0x00}; /* lea 0(%ebp), %r10d */
			emit_bytes(&b->e, lea, sizeof lea);
			emit_soft_lookup(b, false, 4);
			emit_soft_mov(b, 0x8B, 8, 4);
			emit_bytes(&b->e, seq + 4, sizeof seq - 4);
			break;
		}
		emit_guest_prefix(&b->e);
		emit_bytes(&b->e, seq, sizeof seq);
		break;
	}
	case XC_CLI:
	case XC_STI: {
		const uint8_t set_vif[] = {0x41, 0xC7, 0x47, VC_VIF, 0, in->cls == XC_STI ? 2 : 0, 0, 0};
		emit_bytes(&b->e, set_vif, sizeof set_vif);
		if (in->cls == XC_STI) {
			const uint8_t window[] = {
				0x45, 0x8B, 0x57, VC_IRQ_WAIT, /* mov VC_IRQ_WAIT(%r15), %r10d */
				0x45, 0x89, 0x57, VC_ATTN_IRQ, /* mov %r10d, VC_ATTN_IRQ(%r15) */
			};
			emit_bytes(&b->e, window, sizeof window);
		}
		break;
	}
	case XC_SET_AC: {
		/* VC_VSYS holds only IOPL (bits 12-13) and AC (bit 18): its third
		 * byte is AC alone, so a byte store sets or clears it without
		 * touching the flags. */
		const uint8_t set_ac[] = {0x41, 0xC6, 0x47, VC_VSYS + 2, in->d.mnemonic == ZYDIS_MNEMONIC_STAC ? 0x04 : 0x00};
		emit_bytes(&b->e, set_ac, sizeof set_ac);
		break;
	}
	case XC_MOV_FROM_SREG:
		ok = emit_mov_from_sreg(b, in);
		break;
	case XC_PUSH_SREG:
		emit_push_sreg(b, in);
		break;
	case XC_JMP:
		exit_to(b, branch_target(in));
		st->insn_retargeted++;
		return true;
	case XC_JCC: {
		unsigned cc = in->d.opcode & 0xF;
		uint32_t target = branch_target(in);
		uint32_t at = emit_jcc(&b->e, cc, 0);
		add_exit(b, at, target, TCX_BRANCH, same_page(b, target));
		exit_to(b, next);
		st->insn_retargeted++;
		return true;
	}
	case XC_LOOP: {
		/* 67 E0..E3 +2 (ECX-based); jmp +5; jmp taken */
		const uint8_t seq[] = {0x67, (uint8_t)in->d.opcode, 0x02, 0xEB, 0x05};
		emit_bytes(&b->e, seq, sizeof seq);
		exit_to(b, branch_target(in));
		exit_to(b, next);
		st->insn_retargeted++;
		return true;
	}
	case XC_CALL:
		emit_push_store(b, false, next);
		emit_adjust_esp(&b->e, -4);
		exit_to(b, branch_target(in));
		st->insn_rewritten++;
		return true;
	case XC_JMP_IND:
	case XC_CALL_IND:
		if (!load_target_r8(b, in)) {
			ok = false;
			break;
		}
		if (in->cls == XC_CALL_IND) {
			emit_push_store(b, false, next);
			emit_adjust_esp(&b->e, -4);
		}
		emit_lookup(&b->e, b->x->tc->miss_stub);
		st->insn_rewritten++;
		return true;
	case XC_RET: {
		uint16_t imm = in->d.operand_count_visible ? (uint16_t)in->ops[0].imm.value.u : 0;
		emit_load_top_r8(b);
		emit_adjust_esp(&b->e, 4 + imm);
		emit_lookup(&b->e, b->x->tc->miss_stub);
		st->insn_rewritten++;
		return true;
	}
	case XC_USER_STRING:
		emit_window_string(b, in, VC_UWIN_BASE);
		break;
	case XC_KWIN_STRING:
		emit_smap_check(b, in);
		emit_window_string(b, in, VC_KWIN_BASE);
		break;
	case XC_KWIN_MEM:
		emit_smap_check(b, in);
		ok = emit_kwin_mem(b, in, mem_operand(&in->d, in->ops));
		break;
	case XC_KSOFT_MEM: {
		b->kernel_soft = true;
		bool done = emit_soft_plain(b, in);
		b->kernel_soft = false;
		if (done)
			break;
		if (emit_plain(b, in)) { /* the encoder could not give it (%r11,%r10) */
			st->insn_verbatim++;
			return false;
		}
		ok = false;
		break;
	}
	case XC_SREG_RELOAD:
		emit_sreg_reload(b, in);
		break;
	case XC_MOV_FROM_CR2:
		/* mov VC_CR2(%r15), %r32 */
		emit_disp32(b, (const uint8_t[]){0x41, 0x8B, (uint8_t)(0x87 | gpr_num(in->ops[0].reg.value) << 3)}, 3,
			    VC_CR2);
		break;
	case XC_PORT:
		emit_port_exit(b, in);
		break;
	case XC_RDTSCP:
		/* lfence; rdtsc; mov VC_TSC_AUX(%r15), %ecx: the host's own
		 * rdtscp would give the host's TSC_AUX, and lfence orders it as
		 * rdtscp's wait for earlier instructions does (SDM: RDTSCP) */
		emit_bytes(&b->e, (const uint8_t[]){0x0F, 0xAE, 0xE8, 0x0F, 0x31}, 5);
		emit_disp32(b, (const uint8_t[]){0x41, 0x8B, 0x8F}, 3, VC_TSC_AUX);
		break;
	case XC_INVLPG: {
		/* lea M, %r8d; mov %r8d, VC_TARGET(%r15); then the exit */
		if (!emit_lea(b, &in->ops[0], 0, 0)) {
			ok = false;
			break;
		}
		emit_bytes(&b->e, (const uint8_t[]){0x45, 0x89, 0x47, VC_TARGET}, 4);
		uint32_t at = emit_jmp(&b->e, 0);
		add_exit(b, at, in->eip, TCX_INVLPG, false);
		b->exits[b->n_exits - 1].io = (uint32_t)in->d.length << 4;
		st->insn_callout++;
		return true;
	}
	case XC_SYSTEM: {
		uint32_t at = emit_jmp(&b->e, 0);
		add_exit(b, at, in->eip, TCX_SYSTEM, false);
		b->exits[b->n_exits - 1].io = system_io(&in->d);
		st->insn_callout++;
		return true;
	}
	case XC_EMULATE:
		ok = false;
		break;
	}
	if (ok) {
		st->insn_rewritten++;
		return false;
	}
	/* Sent to the emulator: the block ends at this instruction. */
	uint32_t at = emit_jmp(&b->e, 0);
	add_exit(b, at, in->eip, TCX_EMULATE, false);
	st->insn_callout++;
	return true;
}

static bool shift_count_is_zero(const struct insn *in)
{
	const ZydisDecodedOperand *count = &in->ops[in->d.operand_count_visible - 1];
	return count->type == ZYDIS_OPERAND_TYPE_IMMEDIATE && (count->imm.value.u & 0x1F) == 0;
}

/* A shift or double shift whose count is CL or an immediate that masks to
 * 0 (the count is masked to 5 bits). */
static bool shift_count_may_be_zero(const struct insn *in)
{
	switch (in->d.mnemonic) {
	case ZYDIS_MNEMONIC_SHL:
	case ZYDIS_MNEMONIC_SHR:
	case ZYDIS_MNEMONIC_SAR:
	case ZYDIS_MNEMONIC_SHLD:
	case ZYDIS_MNEMONIC_SHRD:
		break;
	default:
		return false;
	}
	const ZydisDecodedOperand *count = &in->ops[in->d.operand_count_visible - 1];
	return count->type == ZYDIS_OPERAND_TYPE_REGISTER || shift_count_is_zero(in);
}

/* Whether an XC_PLAIN instruction may fault: a memory operand (lea's
 * address is no access) or a divide. */
static bool plain_may_fault(const struct insn *in)
{
	if (in->d.mnemonic == ZYDIS_MNEMONIC_DIV || in->d.mnemonic == ZYDIS_MNEMONIC_IDIV)
		return true;
	for (unsigned i = 0; i < in->d.operand_count; i++)
		if (in->ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY && in->ops[i].mem.type != ZYDIS_MEMOP_TYPE_AGEN)
			return true;
	return false;
}

/* True when the block's first flag access overwrites every status flag and
 * nothing before it, itself included, can fault, so the entry check may use
 * cmp: an exception frame holds the flags of before its instruction (SDM
 * vol. 3 6.12), so flags are live into every instruction that may fault. */
static bool flags_dead_at_entry(const struct insn *ins, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const struct insn *in = &ins[i];
		switch (in->cls) {
		case XC_CLI:
		case XC_STI:
		case XC_SET_AC:
		case XC_MOV_FROM_SREG:
		case XC_PORT:
			continue; /* at CPL 0, where they are translated so, they cannot fault */
		case XC_PLAIN:
			break;
		default:
			return false;
		}
		if (plain_may_fault(in))
			return false;
		const ZydisAccessedFlags *f = in->d.cpu_flags;
		if (!f)
			continue;
		if (f->tested & FL_STATUS)
			return false;
		if (shift_count_may_be_zero(in)) {
			/* A count of 0 leaves every flag as it was (SDM vol. 2, SAL/SHR,
			 * SHLD, SHRD): the flags stay live through it; an immediate
			 * count that masks to 0 touches no flag at all. */
			if (!shift_count_is_zero(in))
				return false;
			continue;
		}
		if (((f->modified | f->set_0 | f->set_1 | f->undefined) & FL_STATUS) == FL_STATUS)
			return true;
	}
	return false;
}

/* At CPL 3: cli, sti and popf depend on IOPL and go to the emulator.
 * String instructions addressing ES:EDI cannot take the gs: prefix (ES
 * cannot be overridden), so movs, stos, cmps and scas run with 64-bit
 * addresses biased into the user view (XC_USER_STRING); ins goes to the
 * emulator. */
static enum xclass tsc_class(const struct insn *in, uint32_t mode)
{
	if (in->d.mnemonic == ZYDIS_MNEMONIC_RDTSC && (mode & XMODE_TSC_NATIVE))
		return XC_PLAIN; /* the guest's TSC is the host's */
	if (in->d.mnemonic == ZYDIS_MNEMONIC_RDTSCP && (mode & XMODE_TSC_NATIVE))
		return XC_RDTSCP; /* Linux's clock reads and udelay spin on it */
	return in->cls;
}

static bool is_string(ZydisMnemonic mn)
{
	switch (mn) {
	case ZYDIS_MNEMONIC_MOVSB: case ZYDIS_MNEMONIC_MOVSW: case ZYDIS_MNEMONIC_MOVSD:
	case ZYDIS_MNEMONIC_STOSB: case ZYDIS_MNEMONIC_STOSW: case ZYDIS_MNEMONIC_STOSD:
	case ZYDIS_MNEMONIC_CMPSB: case ZYDIS_MNEMONIC_CMPSW: case ZYDIS_MNEMONIC_CMPSD:
	case ZYDIS_MNEMONIC_SCASB: case ZYDIS_MNEMONIC_SCASW: case ZYDIS_MNEMONIC_SCASD:
	case ZYDIS_MNEMONIC_LODSB: case ZYDIS_MNEMONIC_LODSW: case ZYDIS_MNEMONIC_LODSD:
		return true;
	default:
		return false;
	}
}

static enum xclass user_class(const struct insn *in)
{
	switch (in->cls) {
	case XC_CLI:
	case XC_STI:
	case XC_POPF:
	case XC_SET_AC:      /* #UD */
	case XC_SREG_RELOAD: /* the skip holds at CPL 0 only */
		return XC_EMULATE;
	case XC_PLAIN:
		for (unsigned i = 0; i < in->d.operand_count; i++)
			if (in->ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
			    in->ops[i].mem.segment == ZYDIS_REGISTER_ES &&
			    in->ops[i].visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN)
				return is_string(in->d.mnemonic) ? XC_USER_STRING : XC_EMULATE; /* ins: emulated */
		return XC_PLAIN;
	default:
		return in->cls;
	}
}

/* A marked ring-0 instruction under paging: string instructions and
 * copies with an explicit memory access go through the kernel view;
 * anything else stays as it was (in the kernel window). */
static enum xclass uaccess_class(const struct insn *in)
{
	if (in->cls != XC_PLAIN)
		return in->cls;
	if (is_string(in->d.mnemonic))
		return XC_KWIN_STRING;
	int m = mem_operand(&in->d, in->ops);
	if (m >= 0 && in->ops[m].visibility != ZYDIS_OPERAND_VISIBILITY_HIDDEN &&
	    in->ops[m].mem.type == ZYDIS_MEMOP_TYPE_MEM)
		return XC_KWIN_MEM;
	return XC_PLAIN;
}

/* A ring-0 instruction marked as touching churning pages: a plain
 * instruction with an explicit memory operand of up to SOFT_MAX_ACCESS
 * bytes (no divide: its check reads the operand) goes through ring 0's
 * soft TLB; anything else stays as it was. */
static enum xclass ksoft_class(const struct insn *in)
{
	if (in->cls != XC_PLAIN || in->d.mnemonic == ZYDIS_MNEMONIC_DIV || in->d.mnemonic == ZYDIS_MNEMONIC_IDIV)
		return in->cls;
	int m = mem_operand(&in->d, in->ops);
	if (m >= 0 && in->ops[m].visibility != ZYDIS_OPERAND_VISIBILITY_HIDDEN &&
	    in->ops[m].mem.type == ZYDIS_MEMOP_TYPE_MEM && in->ops[m].size <= 8 * SOFT_MAX_ACCESS)
		return XC_KSOFT_MEM;
	return XC_PLAIN;
}

/* Under paging, the first instruction's bytes when it may run onto the
 * next linear page: the rest of this frame, then the start of frame
 * `phys2` (when mapped; else only what this page holds, so that an
 * instruction needing more fails to decode and goes to the emulator).
 * Returns how many bytes there are. */
static uint32_t gather(struct xlate *x, struct insn *in, uint32_t phys, uint32_t page_end, uint32_t phys2)
{
	uint32_t here = page_end - phys;
	memcpy(in->gathered, gmem_ptr(x->mem, phys, here), here);
	in->bytes = in->gathered;
	if (phys2 >= TC_PHYS2_UNMAPPED || !gmem_ptr(x->mem, phys2, PAGE_SIZE_4K))
		return here;
	memcpy(in->gathered + here, gmem_ptr(x->mem, phys2, 1), ZYDIS_MAX_INSTRUCTION_LENGTH - here);
	return ZYDIS_MAX_INSTRUCTION_LENGTH;
}

/* Decodes the block's instructions; *blk_phys2 says what the block
 * assumes of the next linear page (TC_PHYS2_ANY: nothing). */
static unsigned decode_block(struct xlate *x, uint32_t eip, uint32_t phys, uint32_t mode, uint32_t phys2,
			     struct insn *ins, uint32_t *blk_phys2)
{
	bool paging = mode & XMODE_PAGING, user = (mode & XMODE_CPL_MASK) == 3;
	uint32_t page_end = (phys | (PAGE_SIZE_4K - 1)) + 1;
	unsigned n = 0;

	*blk_phys2 = TC_PHYS2_ANY;
	while (n < ((mode & XMODE_STEP) ? 1u : XLATE_MAX_INSNS)) {
		struct insn *in = &ins[n];
		uint32_t avail = x->mem->size - phys;
		if (avail > ZYDIS_MAX_INSTRUCTION_LENGTH)
			avail = ZYDIS_MAX_INSTRUCTION_LENGTH;
		in->eip = eip;
		in->bytes = gmem_ptr(x->mem, phys, 1);
		if (!in->bytes || (n > 0 && x->stop_before && x->stop_before(x->stop_ctx, eip)))
			break;
		bool gathered = paging && n == 0 && phys + ZYDIS_MAX_INSTRUCTION_LENGTH > page_end;
		if (gathered)
			avail = gather(x, in, phys, page_end, phys2);
		if (ZYAN_FAILED(ZydisDecoderDecodeFull(&x->dec, in->bytes, avail, &in->d, in->ops))) {
			/* Invalid or cut short: the emulator raises the fault. */
			memset(&in->d, 0, sizeof in->d);
			in->d.length = 1;
			in->cls = XC_EMULATE;
			if (gathered && avail < ZYDIS_MAX_INSTRUCTION_LENGTH)
				*blk_phys2 = TC_PHYS2_UNMAPPED; /* maybe cut short by it */
			n++;
			break;
		}
		if (n > 0 && phys + in->d.length > page_end)
			break; /* only the first instruction may run onto the next page */
		uint8_t plain[ZYDIS_MAX_INSTRUCTION_LENGTH];
		if (cpu_bitscan_without_rep(&in->d, in->bytes, plain)) {
			memcpy(in->gathered, plain, in->d.length);
			in->bytes = in->gathered;
			ZydisDecoderDecodeFull(&x->dec, in->bytes, in->d.length, &in->d, in->ops);
		}
		in->cls = xlate_classify(&in->d, in->ops);
		if (gathered && phys + in->d.length > page_end)
			*blk_phys2 = phys2; /* its tail came from frame phys2 */
		if (user)
			in->cls = user_class(in);
		else if (paging) {
			unsigned marks = site_kind(x, in->eip);
			if (marks & XLATE_SITE_UACCESS)
				in->cls = uaccess_class(in);
			else if (marks & XLATE_SITE_KSOFT)
				in->cls = ksoft_class(in);
		}
		if ((in->cls == XC_MOV_FROM_CR2 || in->cls == XC_SET_AC) && (mode & XMODE_CPL_MASK) != 0)
			in->cls = XC_EMULATE; /* #GP, #UD outside ring 0 */
		if ((in->d.mnemonic == ZYDIS_MNEMONIC_IN || in->d.mnemonic == ZYDIS_MNEMONIC_OUT) &&
		    (mode & XMODE_CPL_MASK) == 0)
			in->cls = XC_PORT;
		if (in->d.mnemonic == ZYDIS_MNEMONIC_INVLPG && (mode & XMODE_CPL_MASK) == 0)
			in->cls = XC_INVLPG;
		in->cls = tsc_class(in, mode);
		if ((mode & XMODE_FPU_TRAP) && cpu_fpu_insn(&in->d))
			in->cls = XC_EMULATE;
		if ((mode & XMODE_STEP) && (in->cls == XC_PUSHF || in->cls == XC_POPF ||
					    (is_string(in->d.mnemonic) &&
					     (in->d.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE |
								   ZYDIS_ATTRIB_HAS_REPNE)))))
			in->cls = XC_EMULATE; /* TF: the guest's flags image, a trap per iteration */
		n++;
		bool ends = in->cls != XC_PLAIN && in->cls != XC_PUSH && in->cls != XC_POP &&
			    in->cls != XC_USER_STRING && in->cls != XC_SREG_RELOAD &&
			    in->cls != XC_KWIN_MEM && in->cls != XC_KWIN_STRING && in->cls != XC_KSOFT_MEM && in->cls != XC_MOV_FROM_CR2 && in->cls != XC_PORT &&
			    in->cls != XC_RDTSCP &&
			    in->cls != XC_PUSHF && in->cls != XC_POPF && in->cls != XC_LEAVE &&
			    in->cls != XC_PUSHA && in->cls != XC_POPA &&
			    in->cls != XC_CLI && in->cls != XC_SET_AC && in->cls != XC_MOV_FROM_SREG &&
			    in->cls != XC_PUSH_SREG && in->cls != XC_STI;
		eip += in->d.length;
		phys += in->d.length;
		if (ends || phys >= page_end)
			break;
	}
	return n;
}

static struct tc_block *build(struct xlate *x, uint32_t eip, uint32_t phys, uint32_t mode, uint32_t phys2,
			      const struct insn *ins, unsigned n)
{
	struct builder *b = calloc(1, sizeof *b);
	struct tc *tc = x->tc;
	bool ended = false;

	BT86_ASSERT(b);
	b->x = x;
	b->e = (struct emit){.base = tc->base, .pos = tc->used, .limit = (uint32_t)tc->size,
			     .seg = (mode & XMODE_CPL_MASK) == 3 ? 0x65 : 0};
	b->page = eip >> PAGE_SHIFT_4K;
	b->paging = mode & XMODE_PAGING;
	b->soft = mode & XMODE_SOFT;
	b->smap = mode & XMODE_SMAP;

	/* The attention test's way out, if it has one, comes just before the
	 * block's entry, outside the block (no guest instruction is there). */
	bool flags_dead = flags_dead_at_entry(ins, n);
	uint32_t exit_at = b->e.pos, attn = 0;
	if (emit_attention_uses_exit(flags_dead, b->soft))
		attn = emit_attention_exit(&b->e);
	b->start = b->e.pos;
	uint32_t counter = tc_counter_alloc(tc);
	if (counter != TC_NO_COUNTER)
		emit_count(&b->e, (uint32_t)((uint8_t *)&tc->counters[counter] - tc->base));
	uint32_t test = emit_attention_check(&b->e, flags_dead, b->soft, exit_at);
	add_exit(b, test ? test : attn, eip, TCX_ATTN, false);
	uint64_t before[4] = {x->stats->insn_verbatim, x->stats->insn_retargeted, x->stats->insn_rewritten,
			      x->stats->insn_callout};
	for (unsigned i = 0; i < n && !ended; i++) {
		/* sti's interrupt shadow covers one instruction; an interrupt
		 * waiting for the window is taken before the next.  Where the
		 * flags are dead there, a cmp of VC_ATTN_IRQ (which sti set from
		 * VC_IRQ_WAIT) leaves for it (TCX_STI) and the block goes on;
		 * elsewhere the block ends, and the next one's entry test looks. */
		bool window = i >= 2 && ins[i - 2].cls == XC_STI;
		if (window && !flags_dead_at_entry(&ins[i], n - i))
			break;
		b->map[b->n_insns++] = (struct tc_insn_map){i == 0 ? 0 : b->e.pos - b->start, ins[i].eip};
		b->insn_at = b->start + b->map[b->n_insns - 1].host;
		if (window) /* requests wait for the next block's entry */
			add_exit(b, emit_attention_irq_test(&b->e), ins[i].eip, TCX_STI, false);
		ended = emit_insn(b, (struct insn *)&ins[i]);
	}
	uint32_t end_eip = ins[b->n_insns - 1].eip + ins[b->n_insns - 1].d.length;
	b->map[b->n_insns] = (struct tc_insn_map){b->e.pos - b->start, end_eip};
	if (!ended)
		exit_to(b, end_eip);

	struct tc_block *blk = calloc(1, sizeof *blk);
	BT86_ASSERT(blk);
	blk->exits = calloc(b->n_exits, sizeof *blk->exits);
	blk->map = malloc((b->n_insns + 1) * sizeof *blk->map);
	BT86_ASSERT(blk->exits && blk->map);
	for (unsigned i = 0; i < b->n_exits; i++) {
		struct pending_exit *p = &b->exits[i];
		uint32_t stub = b->e.pos;
		if (p->kind == TCX_BRANCH && !p->chainable) {
			/* Another page: never chained (its mapping may change), so
			 * look the target up inline rather than leave. */
			emit_u8(&b->e, 0x41); /* mov $target, %r8d */
			emit_u8(&b->e, 0xB8);
			emit_u32(&b->e, p->guest_eip);
			emit_lookup(&b->e, tc->miss_stub);
		} else {
			emit_exit_stub(&b->e, stub);
		}
		emit_set_rel32(&b->e, p->patch, stub);
		blk->exits[i] = (struct tc_exit){.stub = stub, .patch = p->chainable ? p->patch : 0,
						 .guest_eip = p->guest_eip, .kind = p->kind, .io = p->io,
						 .resume = p->resume, .owner = blk};
	}
	memcpy(blk->map, b->map, (b->n_insns + 1) * sizeof *blk->map);
	blk->eip = eip;
	blk->phys = phys;
	blk->mode = mode;
	blk->guest_len = end_eip - eip;
	blk->host = b->start;
	blk->host_len = b->e.pos - b->start;
	blk->n_insns = (uint16_t)b->n_insns;
	blk->n_exits = (uint16_t)b->n_exits;
	blk->counter = counter;
	blk->n_verbatim = (uint16_t)(x->stats->insn_verbatim - before[0]);
	blk->n_retargeted = (uint16_t)(x->stats->insn_retargeted - before[1]);
	blk->n_rewritten = (uint16_t)(x->stats->insn_rewritten - before[2]);
	blk->n_callout = (uint16_t)(x->stats->insn_callout - before[3]);
	blk->phys2 = phys2;
	blk->pages[0] = phys >> PAGE_SHIFT_4K;
	blk->n_pages = 1;
	uint32_t last = (phys + blk->guest_len - 1) >> PAGE_SHIFT_4K;
	if (phys2 < TC_PHYS2_UNMAPPED)
		last = phys2 >> PAGE_SHIFT_4K; /* paging: the tail's own frame */
	if (last != blk->pages[0] && last < tc->n_pages)
		blk->pages[blk->n_pages++] = last;
	bool overflow = b->e.overflow;
	free(b);
	if (overflow) {
		free(blk->exits);
		free(blk->map);
		free(blk);
		return NULL;
	}
	tc_commit(tc, blk);
	return blk;
}

struct tc_block *xlate_block(struct xlate *x, uint32_t eip, uint32_t phys, uint32_t mode, uint32_t phys2)
{
	struct insn ins[XLATE_MAX_INSNS];
	uint32_t blk_phys2;
	unsigned n;

	if (!gmem_ptr(x->mem, phys, 1))
		return NULL;
	n = decode_block(x, eip, phys, mode, phys2, ins, &blk_phys2);
	BT86_ASSERT(n > 0);
	if (!tc_has_room(x->tc, (size_t)n * XLATE_MAX_HOST_PER_INSN + 1024))
		tc_flush(x->tc);
	struct tc_block *b = build(x, eip, phys, mode, blk_phys2, ins, n);
	if (!b) {
		tc_flush(x->tc);
		b = build(x, eip, phys, mode, blk_phys2, ins, n);
	}
	BT86_ASSERT(b);
	return b;
}
