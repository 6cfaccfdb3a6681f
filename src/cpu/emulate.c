#include "emulate.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "../cache/stats.h"
#include "../devices/board.h"
#include "../cache/tc.h"
#include "../mem/gmem.h"
#include "../mem/pagewalk.h"
#include "../mem/shadow.h"
#include "../mem/vmem.h"
#include "../util.h"
#include "exception.h"
#include "run.h"
#include "segment.h"
#include "task.h"

/* A rep string instruction runs at most this many iterations per step, then
 * leaves EIP on itself: like hardware, it can be interrupted between
 * iterations, and a huge count cannot hold the monitor.  With TF set it
 * runs one, so that each iteration takes its single-step trap (SDM vol. 3
 * 17.3.1.4). */
#define REP_CHUNK(v) ((v)->tf ? 1u : 65536u)

/* The instruction being emulated: its decoding, in the decode cache (or
 * its scratch entry), and the bytes it runs as. */
struct emu {
	struct vcpu *v;
	const ZydisDecodedInstruction *d;
	const ZydisDecodedOperand *ops;
	const uint8_t *bytes; /* d->length of them */
	uint32_t next;
};

static void unsupported(struct emu *e, const char *what)
{
	char hex[3 * ZYDIS_MAX_INSTRUCTION_LENGTH + 1] = "";
	unsigned n = e->d ? e->d->length : 0; /* emu_system has no decode */
	for (unsigned i = 0; i < n && i < ZYDIS_MAX_INSTRUCTION_LENGTH; i++)
		snprintf(hex + 3 * i, sizeof hex - 3 * i, "%02x ", e->bytes[i]);
	vcpu_stop(e->v, BT86_EXIT_UNSUPPORTED, "unsupported %s at eip %#x (bytes %s)", what, e->v->hot->eip, hex);
}

/* SGDT, SIDT, SLDT, SMSW and STR outside ring 0 with CR4.UMIP: #GP(0). */
static void umip_check(struct emu *e)
{
	if ((e->v->cr4 & CR4_UMIP) && e->v->cpl > 0)
		vcpu_raise(e->v, EXC_GP, true, 0);
}

static void require_cpl0(struct emu *e)
{
	if (e->v->cpl != 0)
		vcpu_raise(e->v, EXC_GP, true, 0);
}

static unsigned iopl(const struct vcpu *v)
{
	return (v->hot->vsys & FL_IOPL) >> 12;
}

static uint32_t reg_read(struct vcpu *v, ZydisRegister r)
{
	unsigned id = (unsigned)ZydisRegisterGetId(r);

	switch (ZydisRegisterGetClass(r)) {
	case ZYDIS_REGCLASS_GPR32:
		return v->hot->gpr[id];
	case ZYDIS_REGCLASS_GPR16:
		return v->hot->gpr[id] & 0xFFFF;
	case ZYDIS_REGCLASS_GPR8:
		return id < 4 ? v->hot->gpr[id] & 0xFF : (v->hot->gpr[id - 4] >> 8) & 0xFF;
	case ZYDIS_REGCLASS_SEGMENT:
		return v->seg[r - ZYDIS_REGISTER_ES].sel;
	default:
		return 0;
	}
}

static void reg_write(struct vcpu *v, ZydisRegister r, uint32_t val)
{
	unsigned id = (unsigned)ZydisRegisterGetId(r);
	uint32_t *g;

	switch (ZydisRegisterGetClass(r)) {
	case ZYDIS_REGCLASS_GPR32:
		v->hot->gpr[id] = val;
		break;
	case ZYDIS_REGCLASS_GPR16:
		g = &v->hot->gpr[id];
		*g = (*g & 0xFFFF0000u) | (val & 0xFFFF);
		break;
	case ZYDIS_REGCLASS_GPR8:
		if (id < 4) {
			g = &v->hot->gpr[id];
			*g = (*g & ~0xFFu) | (val & 0xFF);
		} else {
			g = &v->hot->gpr[id - 4];
			*g = (*g & ~0xFF00u) | ((val & 0xFF) << 8);
		}
		break;
	default:
		break;
	}
}

static uint32_t ea(struct emu *e, const ZydisDecodedOperand *o)
{
	uint32_t a = (uint32_t)o->mem.disp.value;
	if (o->mem.base != ZYDIS_REGISTER_NONE)
		a += reg_read(e->v, o->mem.base);
	if (o->mem.index != ZYDIS_REGISTER_NONE)
		a += reg_read(e->v, o->mem.index) * o->mem.scale;
	return e->d->address_width == 16 ? a & 0xFFFF : a; /* 16-bit addressing wraps */
}

static enum sreg seg_of(const ZydisDecodedOperand *o)
{
	return (enum sreg)(o->mem.segment - ZYDIS_REGISTER_ES);
}

static uint32_t op_read(struct emu *e, unsigned i)
{
	const ZydisDecodedOperand *o = &e->ops[i];
	switch (o->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		return reg_read(e->v, o->reg.value);
	case ZYDIS_OPERAND_TYPE_MEMORY:
		return vmem_seg_read(e->v, seg_of(o), ea(e, o), o->size / 8);
	case ZYDIS_OPERAND_TYPE_IMMEDIATE:
		return (uint32_t)o->imm.value.u;
	default:
		return 0;
	}
}

static void op_write(struct emu *e, unsigned i, uint32_t val)
{
	const ZydisDecodedOperand *o = &e->ops[i];
	if (o->type == ZYDIS_OPERAND_TYPE_REGISTER)
		reg_write(e->v, o->reg.value, val);
	else if (o->type == ZYDIS_OPERAND_TYPE_MEMORY)
		vmem_seg_write(e->v, seg_of(o), ea(e, o), o->size / 8, val);
}

static void set_zf(struct vcpu *v, bool z)
{
	if (z)
		v->hot->eflags |= FL_ZF;
	else
		v->hot->eflags &= ~FL_ZF;
}

/* popf/iret semantics at the current privilege level (SDM POPF table). */
static void load_eflags(struct emu *e, uint32_t fl, unsigned size)
{
	struct vcpu *v = e->v;
	uint32_t old = vcpu_eflags(v);
	uint32_t mask = FL_HOST_HELD | FL_TF | FL_AC;

	if (v->cpl == 0)
		mask |= FL_IOPL;
	if (v->cpl <= iopl(v))
		mask |= FL_IF;
	if (size == 2)
		mask &= 0xFFFF;
	vcpu_set_eflags(v, (old & ~mask) | (fl & mask));
}

static uint16_t port_of(struct emu *e, unsigned i)
{
	return (uint16_t)op_read(e, i);
}

/* I/O permission (SDM vol. 1, 19.5): with CPL > IOPL every port byte must
 * have its bit clear in the TSS's I/O permission bitmap. */
static void check_io(struct emu *e, uint16_t port, unsigned size)
{
	struct vcpu *v = e->v;

	if (v->cpl <= iopl(v) && !v->vm) /* virtual-8086 mode always asks the bitmap */
		return;
	if (!v->tr.valid || v->tr.limit < 103 || !(v->tr.type & 8))
		vcpu_raise(v, EXC_GP, true, 0);
	uint32_t map = vmem_read_supervisor(v, v->tr.base + 102, 2);
	uint32_t first = map + port / 8, last = map + (port + size - 1) / 8;
	if (last > v->tr.limit)
		vcpu_raise(v, EXC_GP, true, 0);
	uint32_t bits = vmem_read_supervisor(v, v->tr.base + first, last == first ? 1 : 2);
	if ((bits >> (port & 7)) & ((1u << size) - 1))
		vcpu_raise(v, EXC_GP, true, 0);
}

/* A string instruction's ESI, EDI or ECX, and a step of one: SI, DI and CX
 * alone under 16-bit addressing, wrapping at 64 KiB. */
static uint32_t str_reg(const struct emu *e, unsigned r)
{
	uint32_t x = e->v->hot->gpr[r];
	return e->d->address_width == 16 ? x & 0xFFFF : x;
}

static void str_add(struct emu *e, unsigned r, int32_t delta)
{
	uint32_t *x = &e->v->hot->gpr[r];
	if (e->d->address_width == 16)
		*x = (*x & 0xFFFF0000u) | ((*x + (uint32_t)delta) & 0xFFFF);
	else
		*x += (uint32_t)delta;
}

/* rep ins/outs to a device that moves whole runs (the ATA data port): up
 * to the end of the guest page, the segment limit or the count, forward
 * only.  The first item's segment and page checks are the ones the
 * item-by-item path would make, so faults are identical; returns the items
 * moved, 0 when the run must go one item at a time. */
static unsigned string_io_run(struct emu *e, bool in, enum sreg seg, uint16_t port, unsigned size,
			      unsigned max)
{
	struct vcpu *v = e->v;
	const struct seg_cache *c = &v->seg[seg];
	uint32_t off = v->hot->gpr[in ? R_EDI : R_ESI];
	uint8_t run[4096];

	if ((v->hot->eflags & FL_DF) || (!(c->type & 0x8) && (c->type & 0x4)) || v->shadow->watch.n ||
	    e->d->address_width == 16)
		return 0; /* backwards, an expand-down segment, the debugger's watchpoints to check, or SI/DI/CX */
	uint32_t lin = vmem_seg_lin(v, seg, off, size, in);
	uint64_t n = ((uint64_t)c->limit - off + 1) / size;
	uint32_t in_page = (4096 - (lin & 4095)) / size;
	if (n > in_page)
		n = in_page;
	if (n > max)
		n = max;
	if (n < 2)
		return 0;
	uint32_t phys = vmem_translate(v, lin, in);
	uint8_t *ram = gmem_ptr(v->mem, phys, (uint32_t)n * size);
	if (!ram)
		return 0;
	unsigned moved;
	if (in) {
		moved = board_io_read_string(v->board, port, size, run, (unsigned)n);
		gmem_write_block(v->mem, phys, run, moved * size);
	} else {
		moved = board_io_write_string(v->board, port, size, ram, (unsigned)n);
	}
	v->hot->gpr[in ? R_EDI : R_ESI] += moved * size;
	v->hot->gpr[R_ECX] -= moved;
	return moved;
}

static void string_io(struct emu *e, bool in)
{
	struct vcpu *v = e->v;
	unsigned size = e->d->operand_width / 8;
	bool rep = e->d->attributes & ZYDIS_ATTRIB_HAS_REP;
	int32_t step = (v->hot->eflags & FL_DF) ? -(int32_t)size : (int32_t)size;
	uint16_t port = (uint16_t)v->hot->gpr[R_EDX];
	enum sreg src = S_DS;
	check_io(e, port, size);

	if (e->d->address_width != 32) {
		unsupported(e, "16-bit addressing");
		return;
	}
	for (unsigned i = 0; i < e->d->operand_count; i++)
		if (e->ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY && !in)
			src = seg_of(&e->ops[i]);
	for (unsigned n = 0; !rep || str_reg(e, R_ECX) != 0; n++) {
		if (n >= REP_CHUNK(v)) {
			e->next = v->hot->eip;
			return;
		}
		if (rep && str_reg(e, R_ECX) > 1) {
			uint32_t max = v->hot->gpr[R_ECX] < REP_CHUNK(v) - n ? v->hot->gpr[R_ECX] : REP_CHUNK(v) - n;
			unsigned moved = string_io_run(e, in, in ? S_ES : src, port, size, max);
			if (moved) {
				n += moved - 1;
				continue;
			}
		}
		if (in) {
			uint32_t lin = vmem_seg_lin(v, S_ES, str_reg(e, R_EDI), size, true);
			vmem_write(v, lin, size, board_io_read(v->board, port, size));
			str_add(e, R_EDI, step);
		} else {
			uint32_t val = vmem_seg_read(v, src, str_reg(e, R_ESI), size);
			board_io_write(v->board, port, size, val);
			str_add(e, R_ESI, step);
		}
		if (!rep)
			break;
		str_add(e, R_ECX, -1);
	}
}

/* Any other integer instruction whose one memory operand is not RAM (MMIO,
 * open bus), or that translated code cannot rebase (an fs:/gs: operand
 * beside AH-BH): read the operand into a bounce buffer, run the
 * instruction natively in a thunk with its memory operand re-encoded as
 * (%r8) and the guest's registers and flags loaded, and write the operand
 * back if the instruction writes it.  The thunk lives in the translation cache's
 * mapping (tc->bounce); the FPU there is the monitor's, so x87/SSE/MMX
 * instructions are declined. */
static sigjmp_buf bounce_env;

_Noreturn void emu_bounce_fault(unsigned vec)
{
	siglongjmp(bounce_env, (int)vec + 1);
}

bool emu_in_bounce(const struct vcpu *v, uint64_t rip)
{
	uint64_t t = (uint64_t)(uintptr_t)tc_ptr(v->tc, v->tc->bounce);
	return rip >= t && rip < t + BOUNCE_AREA;
}

struct bounce_frame {
	uint32_t gpr[8];   /* 0x00; ESP travels in r9d (rsp is the thunk's stack) */
	uint64_t flags;    /* 0x20 */
	uint64_t buffer;   /* 0x28: address of the bounce bytes */
	uint64_t fx;       /* 0x30: the guest's FXSAVE image (XMM0-7, MXCSR) */
	uint32_t mxcsr;    /* 0x38: the monitor's MXCSR while the guest's is loaded */
};

/* The largest memory operand the bounce buffer takes (an SSE one). */
#define BOUNCE_BYTES 16u

/* Whether a register operand may take part in a bounce: the GPRs, the
 * x87 stack and MMX registers (the x87 state is the guest's in the CPU
 * while the monitor runs, switch.S), and XMM0-7, which the thunk loads
 * from and stores back to the guest's image. */
static bool bounce_register(ZydisRegister r)
{
	switch (ZydisRegisterGetClass(r)) {
	case ZYDIS_REGCLASS_GPR32:
	case ZYDIS_REGCLASS_GPR16:
	case ZYDIS_REGCLASS_GPR8:
	case ZYDIS_REGCLASS_X87:
	case ZYDIS_REGCLASS_MMX:
	case ZYDIS_REGCLASS_XMM:
		return true;
	default:
		return false;
	}
}

static bool is_high_byte(ZydisRegister r)
{
	return r == ZYDIS_REGISTER_AH || r == ZYDIS_REGISTER_CH || r == ZYDIS_REGISTER_DH || r == ZYDIS_REGISTER_BH;
}

/* For an instruction with AH-BH, which no REX-prefixed form can name: a
 * legacy register it does not use, to hold the buffer's address in place
 * of r8 (ZYDIS_REGISTER_NONE if it uses them all). */
static ZydisRegister bounce_base_without_rex(const struct emu *e)
{
	static const ZydisRegister pick[] = {ZYDIS_REGISTER_RBX, ZYDIS_REGISTER_RSI, ZYDIS_REGISTER_RDI, ZYDIS_REGISTER_RBP,
					     ZYDIS_REGISTER_RCX, ZYDIS_REGISTER_RDX, ZYDIS_REGISTER_RAX};
	for (unsigned k = 0; k < sizeof pick / sizeof pick[0]; k++) {
		bool used = false;
		for (unsigned i = 0; i < e->d->operand_count && !used; i++) {
			const ZydisDecodedOperand *o = &e->ops[i];
			if (o->type == ZYDIS_OPERAND_TYPE_REGISTER)
				used = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, o->reg.value) == pick[k];
			else if (o->type == ZYDIS_OPERAND_TYPE_MEMORY)
				used = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, o->mem.base) == pick[k] ||
				       ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, o->mem.index) == pick[k];
		}
		if (!used)
			return pick[k];
	}
	return ZYDIS_REGISTER_NONE;
}

/* movups %xmmN, disp32(%r10) (store) or back (load), for the XMM
 * registers in `xmm` (a mask), and the MXCSR swap around them. */
static unsigned emit_xmm_moves(uint8_t *out, unsigned xmm, bool store)
{
	unsigned n = 0;
	if (!store) {
		static const uint8_t enter[] = {0x4D, 0x8B, 0x53, 0x30,       /* mov 0x30(%r11), %r10 */
						0x41, 0x0F, 0xAE, 0x5B, 0x38, /* stmxcsr 0x38(%r11) */
						0x41, 0x0F, 0xAE, 0x52, 0x18}; /* ldmxcsr 0x18(%r10) */
		memcpy(out, enter, sizeof enter);
		n = sizeof enter;
	} else {
		static const uint8_t reload[] = {0x4D, 0x8B, 0x53, 0x30}; /* mov 0x30(%r11), %r10 */
		memcpy(out, reload, sizeof reload);
		n = sizeof reload;
	}
	for (unsigned i = 0; i < 8; i++) {
		if (!(xmm >> i & 1))
			continue;
		uint32_t disp = FX_XMM + 16 * i;
		const uint8_t mov[] = {0x41, 0x0F, (uint8_t)(store ? 0x11 : 0x10), (uint8_t)(0x82 | i << 3)};
		memcpy(out + n, mov, 4);
		memcpy(out + n + 4, &disp, 4);
		n += 8;
	}
	if (store) {
		static const uint8_t leave[] = {0x41, 0x0F, 0xAE, 0x5A, 0x18,  /* stmxcsr 0x18(%r10) */
						0x41, 0x0F, 0xAE, 0x53, 0x38}; /* ldmxcsr 0x38(%r11) */
		memcpy(out + n, leave, sizeof leave);
		n += sizeof leave;
	}
	return n;
}

static bool bounce(struct emu *e)
{
	struct vcpu *v = e->v;
	int m = -1;
	unsigned xmm = 0;
	bool high = false;
	ZydisEncoderRequest req;
	uint8_t insn[ZYDIS_MAX_INSTRUCTION_LENGTH];
	ZyanUSize ilen = sizeof insn;

	/* Never a control transfer (a 16-bit jcc, say): in the thunk it would
	 * jump about the monitor's code. */
	if (e->d->attributes & ZYDIS_ATTRIB_IS_RELATIVE)
		return false;
	for (unsigned i = 0; i < e->d->operand_count; i++)
		if (e->ops[i].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(e->ops[i].reg.value) == ZYDIS_REGCLASS_IP)
			return false;

	for (unsigned i = 0; i < e->d->operand_count; i++) {
		const ZydisDecodedOperand *o = &e->ops[i];
		if (o->type == ZYDIS_OPERAND_TYPE_MEMORY) {
			if (m >= 0 || o->visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN || o->mem.type != ZYDIS_MEMOP_TYPE_MEM)
				return false;
			m = (int)i;
		}
		if (o->type != ZYDIS_OPERAND_TYPE_REGISTER)
			continue;
		if (ZydisRegisterGetClass(o->reg.value) == ZYDIS_REGCLASS_XMM)
			xmm |= 1u << ZydisRegisterGetId(o->reg.value);
		else if (o->visibility != ZYDIS_OPERAND_VISIBILITY_HIDDEN && !bounce_register(o->reg.value))
			return false; /* segment and control registers */
		if (is_high_byte(o->reg.value))
			high = true;
	}
	/* With AH-BH the buffer's address goes in a legacy register the
	 * instruction leaves alone, saved around it (push, mov, pop: no flag
	 * changes); no REX-only register may appear beside them. */
	ZydisRegister base = high ? bounce_base_without_rex(e) : ZYDIS_REGISTER_R8;
	if (base == ZYDIS_REGISTER_NONE)
		return false;
	if (m >= 0 && (e->ops[m].size == 0 || e->ops[m].size > 8 * BOUNCE_BYTES))
		return false; /* fxsave, the x87 environments: not through the buffer */
	bool sse = xmm || (e->d->attributes & ZYDIS_ATTRIB_HAS_MODRM && e->d->meta.isa_ext >= ZYDIS_ISA_EXT_SSE &&
			   e->d->meta.isa_ext <= ZYDIS_ISA_EXT_SSE4A);
	if (ZYAN_FAILED(ZydisEncoderDecodedInstructionToEncoderRequest(e->d, e->ops, e->d->operand_count_visible, &req)))
		return false;
	req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
	req.prefixes &= ~(ZyanU64)(ZYDIS_ATTRIB_HAS_SEGMENT_CS | ZYDIS_ATTRIB_HAS_SEGMENT_DS | ZYDIS_ATTRIB_HAS_SEGMENT_ES |
				   ZYDIS_ATTRIB_HAS_SEGMENT_SS | ZYDIS_ATTRIB_HAS_SEGMENT_FS | ZYDIS_ATTRIB_HAS_SEGMENT_GS |
				   ZYDIS_ATTRIB_HAS_SEGMENT);
	req.address_size_hint = ZYDIS_ADDRESS_SIZE_HINT_NONE;
	for (unsigned i = 0; i < req.operand_count; i++) {
		/* the guest's ESP as r9d in the thunk */
		if (req.operands[i].type != ZYDIS_OPERAND_TYPE_REGISTER)
			continue;
		if (req.operands[i].reg.value == ZYDIS_REGISTER_ESP)
			req.operands[i].reg.value = ZYDIS_REGISTER_R9D;
		else if (req.operands[i].reg.value == ZYDIS_REGISTER_SP)
			req.operands[i].reg.value = ZYDIS_REGISTER_R9W;
	}
	if (m >= 0) {
		ZydisEncoderOperand *o = &req.operands[m];
		o->mem.base = base;
		o->mem.index = ZYDIS_REGISTER_NONE;
		o->mem.scale = 0;
		o->mem.displacement = 0;
	}
	if (ZYAN_FAILED(ZydisEncoderEncodeInstruction(&req, insn, &ilen)))
		return false;

	unsigned size = m >= 0 ? e->ops[m].size / 8 : 0;
	uint32_t lin = m >= 0 ? v->seg[seg_of(&e->ops[m])].base + ea(e, &e->ops[m]) : 0;
	uint8_t buf[BOUNCE_BYTES] = {0};
	bool reads = m >= 0 && (e->ops[m].actions & ZYDIS_OPERAND_ACTION_MASK_READ);
	bool writes = m >= 0 && (e->ops[m].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE);
	/* Devices see dwords where the operand allows (an SSE load of an
	 * MMIO register block), bytes elsewhere. */
	for (unsigned i = 0; reads && i < size;) {
		unsigned n = size - i >= 4 && !((lin + i) & 3) ? 4 : 1;
		uint32_t x = vmem_read(v, lin + i, n);
		memcpy(buf + i, &x, n);
		i += n;
	}

	static const uint8_t prologue[] = {
		0x53, 0x55, 0x49, 0x89, 0xFB,                   /* push rbx; push rbp; mov %rdi, %r11 */
		0x41, 0xFF, 0x73, 0x20, 0x9D,                   /* push 0x20(%r11); popfq */
		0x41, 0x8B, 0x03, 0x41, 0x8B, 0x4B, 0x04,       /* eax, ecx */
		0x41, 0x8B, 0x53, 0x08, 0x41, 0x8B, 0x5B, 0x0C, /* edx, ebx */
		0x41, 0x8B, 0x6B, 0x14, 0x41, 0x8B, 0x73, 0x18, /* ebp, esi */
		0x41, 0x8B, 0x7B, 0x1C,                         /* edi */
		0x45, 0x8B, 0x4B, 0x10,                         /* mov 0x10(%r11), %r9d: ESP */
		0x4D, 0x8B, 0x43, 0x28,                         /* mov 0x28(%r11), %r8 */
	};
	static const uint8_t epilogue[] = {
		0x41, 0x89, 0x03, 0x41, 0x89, 0x4B, 0x04, 0x41, 0x89, 0x53, 0x08, 0x41, 0x89, 0x5B, 0x0C,
		0x41, 0x89, 0x6B, 0x14, 0x41, 0x89, 0x73, 0x18, 0x41, 0x89, 0x7B, 0x1C,
		0x45, 0x89, 0x4B, 0x10,                         /* mov %r9d, 0x10(%r11) */
		0x9C, 0x41, 0x8F, 0x43, 0x20,                   /* pushfq; pop 0x20(%r11) */
		0xFC, 0x5D, 0x5B, 0xC3,                         /* cld; pop rbp; pop rbx; ret */
	};
	uint8_t *thunk = tc_ptr(v->tc, v->tc->bounce);
	unsigned at = 0;
	memcpy(thunk, prologue, sizeof prologue);
	at += sizeof prologue;
	if (sse)
		at += emit_xmm_moves(thunk + at, xmm, false);
	unsigned id = (unsigned)(base - ZYDIS_REGISTER_RAX); /* the legacy register's number */
	if (base != ZYDIS_REGISTER_R8) {
		const uint8_t load[] = {(uint8_t)(0x50 + id), 0x4C, 0x89, (uint8_t)(0xC0 | id)}; /* push %rX; mov %r8, %rX */
		memcpy(thunk + at, load, sizeof load);
		at += sizeof load;
	}
	memcpy(thunk + at, insn, ilen);
	at += (unsigned)ilen;
	if (base != ZYDIS_REGISTER_R8)
		thunk[at++] = (uint8_t)(0x58 + id); /* pop %rX */
	if (sse)
		at += emit_xmm_moves(thunk + at, xmm, true);
	memcpy(thunk + at, epilogue, sizeof epilogue);
	BT86_ASSERT(at + sizeof epilogue <= BOUNCE_AREA);

	struct bounce_frame f;
	memcpy(f.gpr, v->hot->gpr, sizeof f.gpr);
	f.flags = (vcpu_eflags(v) & FL_HOST_HELD) | 0x202;
	f.buffer = (uint64_t)(uintptr_t)buf;
	f.fx = (uint64_t)(uintptr_t)v->hot->fx_guest;
	int fault = sigsetjmp(bounce_env, 1); /* restore the mask: the handler left SIGILL etc. blocked */
	if (fault)
		vcpu_raise(v, (unsigned)(fault - 1), exception_has_error((unsigned)(fault - 1)), 0);
	((void (*)(struct bounce_frame *))thunk)(&f);
	memcpy(v->hot->gpr, f.gpr, sizeof f.gpr);
	v->hot->eflags = (v->hot->eflags & ~FL_HOST_HELD) | ((uint32_t)f.flags & FL_HOST_HELD);
	for (unsigned i = 0; writes && i < size;) {
		unsigned n = size - i >= 4 && !((lin + i) & 3) ? 4 : 1;
		uint32_t x = 0;
		memcpy(&x, buf + i, n);
		vmem_write(v, lin + i, n, x);
		i += n;
	}
	return true;
}

/* cmps/scas: ES:EDI compared with DS:ESI or the accumulator, repeated
 * under REPE/REPNE (ECX counted first, the condition tested after, as the
 * SDM orders them).  The status flags come from the host's own cmp. */
static void string_compare(struct emu *e)
{
	struct vcpu *v = e->v;
	unsigned size = e->d->operand_width / 8;
	bool scas = e->d->mnemonic == ZYDIS_MNEMONIC_SCASB || e->d->mnemonic == ZYDIS_MNEMONIC_SCASW ||
		    e->d->mnemonic == ZYDIS_MNEMONIC_SCASD;
	bool repe = e->d->attributes & ZYDIS_ATTRIB_HAS_REPE, repne = e->d->attributes & ZYDIS_ATTRIB_HAS_REPNE;
	int32_t step = (v->hot->eflags & FL_DF) ? -(int32_t)size : (int32_t)size;
	uint32_t mask = size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
	enum sreg src = S_DS;

	for (unsigned i = 0; i < e->d->operand_count; i++)
		if (e->ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY && e->ops[i].mem.base == ZYDIS_REGISTER_ESI)
			src = seg_of(&e->ops[i]);
	for (unsigned k = 0; !(repe || repne) || str_reg(e, R_ECX) != 0; k++) {
		if (k == REP_CHUNK(v)) {
			e->next = v->hot->eip;
			return;
		}
		uint32_t a = scas ? v->hot->gpr[R_EAX] & mask : vmem_seg_read(v, src, str_reg(e, R_ESI), size);
		uint32_t b = vmem_seg_read(v, S_ES, str_reg(e, R_EDI), size);
		uint64_t fl;
		/* Operands placed at the top of the width so that one cmp
		 * gives every width's flags. */
		uint32_t sh = 32 - 8 * size;
		__asm__("cmpl %k2, %k1; pushfq; popq %0" : "=r"(fl) : "r"(a << sh), "r"(b << sh) : "cc");
		v->hot->eflags = (v->hot->eflags & ~FL_STATUS) | ((uint32_t)fl & FL_STATUS);
		if (size < 4) {
			/* PF and AF look at the low byte and nibble: take them from
			 * an unshifted compare of the low bytes. */
			__asm__("cmpb %b2, %b1; pushfq; popq %0" : "=r"(fl) : "q"(a), "q"(b) : "cc");
			v->hot->eflags = (v->hot->eflags & ~(FL_PF | FL_AF)) | ((uint32_t)fl & (FL_PF | FL_AF));
		}
		if (!scas)
			str_add(e, R_ESI, step);
		str_add(e, R_EDI, step);
		if (!(repe || repne))
			break;
		str_add(e, R_ECX, -1);
		bool zf = v->hot->eflags & FL_ZF;
		if ((repe && !zf) || (repne && zf))
			break;
	}
}

/* Data instructions whose access faulted for the monitor's own reasons. */
static bool data_move(struct emu *e)
{
	struct vcpu *v = e->v;
	unsigned size = e->d->operand_width / 8;

	switch (e->d->mnemonic) {
	case ZYDIS_MNEMONIC_MOV:
		op_write(e, 0, op_read(e, 1));
		return true;
	case ZYDIS_MNEMONIC_LEA:
		op_write(e, 0, ea(e, &e->ops[1]));
		return true;
	case ZYDIS_MNEMONIC_MOVZX:
		op_write(e, 0, op_read(e, 1));
		return true;
	case ZYDIS_MNEMONIC_MOVSX: {
		uint32_t x = op_read(e, 1);
		x = e->ops[1].size == 8 ? (uint32_t)(int32_t)(int8_t)x : (uint32_t)(int32_t)(int16_t)x;
		op_write(e, 0, x);
		return true;
	}
	case ZYDIS_MNEMONIC_STOSB:
	case ZYDIS_MNEMONIC_STOSW:
	case ZYDIS_MNEMONIC_STOSD:
	case ZYDIS_MNEMONIC_MOVSB:
	case ZYDIS_MNEMONIC_MOVSW:
	case ZYDIS_MNEMONIC_MOVSD:
	case ZYDIS_MNEMONIC_LODSB:
	case ZYDIS_MNEMONIC_LODSW:
	case ZYDIS_MNEMONIC_LODSD: {
		bool stos = e->d->mnemonic == ZYDIS_MNEMONIC_STOSB || e->d->mnemonic == ZYDIS_MNEMONIC_STOSW ||
			    e->d->mnemonic == ZYDIS_MNEMONIC_STOSD;
		bool lods = e->d->mnemonic == ZYDIS_MNEMONIC_LODSB || e->d->mnemonic == ZYDIS_MNEMONIC_LODSW ||
			    e->d->mnemonic == ZYDIS_MNEMONIC_LODSD;
		bool rep = e->d->attributes & ZYDIS_ATTRIB_HAS_REP;
		int32_t step = (v->hot->eflags & FL_DF) ? -(int32_t)size : (int32_t)size;
		enum sreg src = S_DS;
		for (unsigned i = 0; i < e->d->operand_count; i++)
			if (e->ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY && e->ops[i].mem.base == ZYDIS_REGISTER_ESI)
				src = seg_of(&e->ops[i]);
		for (unsigned k = 0; !rep || str_reg(e, R_ECX) != 0; k++) {
			if (k == REP_CHUNK(v)) {
				e->next = v->hot->eip;
				return true;
			}
			uint32_t val = stos ? v->hot->gpr[R_EAX]
					    : vmem_seg_read(v, src, str_reg(e, R_ESI), size);
			if (lods) {
				/* AL, AX or EAX takes it, the rest of EAX kept */
				uint32_t keep = size == 4 ? 0 : ~0u << (8 * size);
				v->hot->gpr[R_EAX] = (v->hot->gpr[R_EAX] & keep) | val;
			} else {
				vmem_seg_write(v, S_ES, str_reg(e, R_EDI), size, val);
				str_add(e, R_EDI, step);
			}
			if (!stos)
				str_add(e, R_ESI, step);
			if (!rep)
				break;
			str_add(e, R_ECX, -1);
		}
		return true;
	}
	case ZYDIS_MNEMONIC_CMPSB:
	case ZYDIS_MNEMONIC_CMPSW:
	case ZYDIS_MNEMONIC_CMPSD:
	case ZYDIS_MNEMONIC_SCASB:
	case ZYDIS_MNEMONIC_SCASW:
	case ZYDIS_MNEMONIC_SCASD:
		string_compare(e);
		return true;
	default:
		return false;
	}
}

static void set_flag(struct vcpu *v, uint32_t flag, bool on)
{
	if (on)
		v->hot->eflags |= flag;
	else
		v->hot->eflags &= ~flag;
}

/* SF, ZF and PF from an 8-bit result. */
static void set_szp8(struct vcpu *v, uint8_t r)
{
	set_flag(v, FL_SF, r & 0x80);
	set_flag(v, FL_ZF, r == 0);
	set_flag(v, FL_PF, !__builtin_parity(r));
}

/* The BCD adjustments and salc: no 64-bit-mode encoding exists for them.
 * Pseudo-code from the SDM, vol. 2. */
static bool decimal(struct emu *e)
{
	struct vcpu *v = e->v;
	uint32_t *eax = &v->hot->gpr[R_EAX];
	uint8_t al = (uint8_t)*eax, ah = (uint8_t)(*eax >> 8), old_al = al;
	bool cf = v->hot->eflags & FL_CF, af = v->hot->eflags & FL_AF;

	switch (e->d->mnemonic) {
	case ZYDIS_MNEMONIC_DAA:
	case ZYDIS_MNEMONIC_DAS: {
		bool add = e->d->mnemonic == ZYDIS_MNEMONIC_DAA, new_cf = false;
		if ((al & 0xF) > 9 || af) {
			new_cf = cf || (add ? al > 0xF9 : al < 6);
			al = (uint8_t)(add ? al + 6 : al - 6);
			af = true;
		} else {
			af = false;
		}
		if (old_al > 0x99 || cf) {
			al = (uint8_t)(add ? al + 0x60 : al - 0x60);
			new_cf = true;
		}
		cf = new_cf;
		set_szp8(v, al);
		break;
	}
	case ZYDIS_MNEMONIC_AAA:
	case ZYDIS_MNEMONIC_AAS:
		if ((al & 0xF) > 9 || af) {
			if (e->d->mnemonic == ZYDIS_MNEMONIC_AAA) {
				uint16_t ax = (uint16_t)(((ah << 8) | al) + 0x106);
				ah = (uint8_t)(ax >> 8);
				al = (uint8_t)ax;
			} else {
				uint16_t ax = (uint16_t)(((ah << 8) | al) - 6);
				ah = (uint8_t)((ax >> 8) - 1);
				al = (uint8_t)ax;
			}
			af = cf = true;
		} else {
			af = cf = false;
		}
		al &= 0xF;
		break;
	case ZYDIS_MNEMONIC_AAM: {
		uint8_t base = (uint8_t)e->ops[0].imm.value.u;
		if (base == 0)
			vcpu_raise(v, EXC_DE, false, 0);
		ah = al / base;
		al = al % base;
		set_szp8(v, al);
		break;
	}
	case ZYDIS_MNEMONIC_AAD: {
		uint8_t base = (uint8_t)e->ops[0].imm.value.u;
		al = (uint8_t)(al + ah * base);
		ah = 0;
		set_szp8(v, al);
		break;
	}
	case ZYDIS_MNEMONIC_SALC:
		al = cf ? 0xFF : 0;
		*eax = (*eax & ~0xFFu) | al;
		return true;
	default:
		return false;
	}
	set_flag(v, FL_CF, cf);
	set_flag(v, FL_AF, af);
	*eax = (*eax & 0xFFFF0000u) | ((uint32_t)ah << 8) | al;
	return true;
}

/* Condition code cc (the low nibble of Jcc/SETcc/CMOVcc) on the guest flags. */
static bool condition(const struct vcpu *v, unsigned cc)
{
	uint32_t f = v->hot->eflags;
	bool cf = f & FL_CF, zf = f & FL_ZF, sf = f & FL_SF, of = f & FL_OF, pf = f & FL_PF, r;
	switch (cc >> 1) {
	case 0: r = of; break;
	case 1: r = cf; break;
	case 2: r = zf; break;
	case 3: r = cf || zf; break;
	case 4: r = sf; break;
	case 5: r = pf; break;
	case 6: r = sf != of; break;
	default: r = zf || sf != of; break;
	}
	return (cc & 1) ? !r : r;
}

static uint32_t branch_target(struct emu *e)
{
	ZyanU64 t = 0;
	if (e->ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
		ZydisCalcAbsoluteAddress(e->d, &e->ops[0], e->v->hot->eip, &t);
		return (uint32_t)t;
	}
	return op_read(e, 0);
}

/* Near control transfers, for the ones the translator hands over (an
 * instruction that runs onto another page) and for 16-bit code, where IP
 * wraps at 64 KiB, call and ret move 2 bytes and loop counts CX under
 * 16-bit addressing. */
static bool near_branch(struct emu *e)
{
	struct vcpu *v = e->v;
	ZydisMnemonic mn = e->d->mnemonic;
	unsigned width = e->d->operand_width;
	uint32_t ip_mask = width == 16 ? 0xFFFFu : 0xFFFFFFFFu;

	if ((width != 32 && width != 16) || e->d->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
		return false;
	switch (mn) {
	case ZYDIS_MNEMONIC_JMP:
		e->next = branch_target(e) & ip_mask;
		return true;
	case ZYDIS_MNEMONIC_CALL: {
		uint32_t target = branch_target(e) & ip_mask;
		vmem_push(v, width / 8, e->next);
		e->next = target;
		return true;
	}
	case ZYDIS_MNEMONIC_RET: {
		uint32_t target = vmem_pop(v, width / 8);
		if (e->d->operand_count_visible)
			vmem_set_sp(v, vmem_sp(v) + (uint16_t)e->ops[0].imm.value.u);
		e->next = target & ip_mask;
		return true;
	}
	case ZYDIS_MNEMONIC_LOOP:
	case ZYDIS_MNEMONIC_LOOPE:
	case ZYDIS_MNEMONIC_LOOPNE: {
		str_add(e, R_ECX, -1);
		bool zf = v->hot->eflags & FL_ZF;
		bool take = str_reg(e, R_ECX) != 0 && (mn == ZYDIS_MNEMONIC_LOOP || (mn == ZYDIS_MNEMONIC_LOOPE ? zf : !zf));
		if (take)
			e->next = branch_target(e) & ip_mask;
		return true;
	}
	case ZYDIS_MNEMONIC_JECXZ:
	case ZYDIS_MNEMONIC_JCXZ:
		if (str_reg(e, R_ECX) == 0)
			e->next = branch_target(e) & ip_mask;
		return true;
	default:
		if (e->d->meta.category != ZYDIS_CATEGORY_COND_BR)
			return false;
		if (condition(v, e->d->opcode & 0xF))
			e->next = branch_target(e) & ip_mask;
		return true;
	}
}

/* lret to an outer level (RPL of the popped CS above CPL; below it is
 * #GP): the outer SS:ESP follows EIP, CS and the immediate's bytes, the
 * immediate is added to the outer ESP too, and data segments the outer
 * level may not use become null (SDM vol. 2A RET). */
static void far_return_outer(struct emu *e, uint32_t sp, unsigned size, uint32_t extra, uint32_t new_eip,
			     uint16_t sel)
{
	struct vcpu *v = e->v;
	unsigned rpl = sel & 3u;
	if (rpl < v->cpl)
		vcpu_raise(v, EXC_GP, true, sel & ~3u);
	uint32_t at = sp + 2 * size + extra;
	uint32_t new_esp = vmem_seg_read(v, S_SS, at, size);
	uint16_t new_ss = (uint16_t)vmem_seg_read(v, S_SS, at + size, 2);
	struct seg_cache ss;
	unsigned fault = seg_check_stack(v, new_ss, rpl, &ss);
	if (fault)
		vcpu_raise(v, fault == EXC_TS ? EXC_GP : fault, true, new_ss & ~3u);
	seg_load_cs(v, sel, rpl);
	seg_set(v, S_SS, new_ss, &ss);
	v->hot->gpr[R_ESP] = new_esp + extra;
	seg_null_inaccessible(v);
	e->next = new_eip;
}

/* Writes n items of `size` bytes (2 or 4), lowest first, at `lin`. */
static void write_items(struct vcpu *v, uint32_t lin, const uint32_t *items, unsigned n, unsigned size)
{
	if (size == 4) {
		vmem_write_words_supervisor(v, lin, items, n);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		vmem_write_supervisor(v, lin + 2 * i, 2, items[i] & 0xFFFF);
}

/* A far call or jmp through a call gate (SDM vol. 3 5.8.4, vol. 2A CALL),
 * 32-bit (type 0xC) or 16-bit (type 4, whose offset, pushes and
 * parameters are words): the gate must be reachable from CPL and RPL and
 * present, its code segment not above CPL.  A call to a more privileged
 * non-conforming segment switches to that level's stack from the TSS and
 * copies the gate's parameter count of items there (frame, lowest first:
 * EIP, CS, the parameters, the old ESP and SS); any other call pushes CS
 * and EIP on the current stack.  A jmp stays at CPL.  Faults change
 * nothing. */
static void call_gate(struct emu *e, uint16_t gate, uint32_t lo, uint32_t hi, bool call)
{
	struct vcpu *v = e->v;
	unsigned gate_dpl = (hi >> 13) & 3, params = hi & 0x1F, cpl = v->cpl;
	unsigned size = (hi & 0x800) ? 4 : 2;
	uint16_t sel = (uint16_t)(lo >> 16);
	uint32_t off = (lo & 0xFFFF) | (size == 4 ? hi & 0xFFFF0000u : 0), dlo, dhi;
	struct seg_cache cs;

	if (gate_dpl < cpl || gate_dpl < (gate & 3u))
		vcpu_raise(v, EXC_GP, true, gate & ~3u);
	if (!(hi & 0x8000))
		vcpu_raise(v, EXC_NP, true, gate & ~3u);
	if ((sel & ~3u) == 0)
		vcpu_raise(v, EXC_GP, true, 0);
	if (!seg_read_descriptor(v, sel, &dlo, &dhi))
		vcpu_raise(v, EXC_GP, true, sel & ~3u);
	seg_decode(dlo, dhi, &cs);
	bool conforming = cs.type & 4;
	if (!cs.s || !(cs.type & 8) || cs.dpl > cpl || (!call && !conforming && cs.dpl != cpl))
		vcpu_raise(v, EXC_GP, true, sel & ~3u);
	if (!cs.p)
		vcpu_raise(v, EXC_NP, true, sel & ~3u);
	uint32_t frame[2 + 31 + 2], words = 0;
	frame[words++] = e->next;
	frame[words++] = v->seg[S_CS].sel;
	if (call && !conforming && cs.dpl < cpl) {
		unsigned new_cpl = cs.dpl;
		uint32_t stack_esp;
		uint16_t new_ss;
		if (!task_stack(v, new_cpl, &stack_esp, &new_ss))
			vcpu_raise(v, EXC_TS, true, v->tr.sel & ~3u);
		struct seg_cache ss;
		unsigned fault = seg_check_stack(v, new_ss, new_cpl, &ss);
		if (fault)
			vcpu_raise(v, fault, true, new_ss & ~3u);
		uint32_t old_sp = vmem_sp(v), sp_mask = v->seg[S_SS].db ? ~0u : 0xFFFFu;
		for (unsigned i = 0; i < params; i++)
			frame[words++] = vmem_seg_read(v, S_SS, (old_sp + size * i) & sp_mask, size);
		frame[words++] = v->hot->gpr[R_ESP];
		frame[words++] = v->seg[S_SS].sel;
		uint32_t new_esp = (stack_esp - size * words) & (ss.db ? ~0u : 0xFFFFu);
		write_items(v, ss.base + new_esp, frame, words, size);
		seg_set(v, S_SS, new_ss, &ss);
		if (ss.db)
			v->hot->gpr[R_ESP] = new_esp;
		else
			vmem_set_sp(v, new_esp);
		seg_load_cs_decoded(v, sel, new_cpl, &cs, dhi);
	} else {
		if (call) {
			uint32_t sp = (vmem_sp(v) - 2 * size) & (v->seg[S_SS].db ? ~0u : 0xFFFFu);
			vmem_seg_lin(v, S_SS, sp, 2 * size, true);
			vmem_seg_write(v, S_SS, sp + size, size, frame[1]);
			vmem_seg_write(v, S_SS, sp, size, frame[0]);
			seg_load_cs_decoded(v, sel, cpl, &cs, dhi);
			vmem_set_sp(v, sp);
		} else {
			seg_load_cs_decoded(v, sel, cpl, &cs, dhi);
		}
	}
	e->next = off;
}

/* A load of SS by mov or pop (SDM vol. 3 6.8.3), so that the next
 * instruction can set ESP: no interrupt before that one ends (unless this
 * one is in a shadow already: only the first in a row starts one, QEMU's
 * choice), and no single-step trap after this one, the next instruction's
 * covering both (as QEMU does too). */
static void ss_shadow(struct vcpu *v)
{
	v->step_due = false;
	if (!v->in_shadow)
		v->irq_shadow = true;
}

static void far_jump(struct emu *e, uint16_t sel, uint32_t off, bool call)
{
	struct vcpu *v = e->v;
	uint32_t lo, hi;

	if ((v->cr0 & CR0_PE) && (sel & ~3u) && seg_read_descriptor(v, sel, &lo, &hi) && !((hi >> 12) & 1)) {
		unsigned type = (hi >> 8) & 0xF, dpl = (hi >> 13) & 3;
		if (type == 0xC || type == 4) {
			call_gate(e, sel, lo, hi, call);
			return;
		}
		if (type != 5 && type != 1 && type != 3 && type != 9 && type != 0xB)
			vcpu_raise(v, EXC_GP, true, sel & ~3u); /* any other system descriptor */
		/* A TSS or a task gate, which the CPL and RPL must reach (a busy
		 * TSS is task_switch's #GP). */
		if (dpl < v->cpl || dpl < (sel & 3u))
			vcpu_raise(v, EXC_GP, true, sel & ~3u);
		if (type == 5 && !(hi & 0x8000))
			vcpu_raise(v, EXC_NP, true, sel & ~3u);
		task_switch(v, type == 5 ? (uint16_t)(lo >> 16) : sel, call ? TASK_CALL : TASK_JMP, 0, e->next, false,
			    0);
		e->next = v->hot->eip;
		return;
	}
	uint16_t old_cs = v->seg[S_CS].sel;
	unsigned size = e->d->operand_width / 8; /* 2 or 4 a push */
	if (call) {
		/* Check the pushes first: nothing changes if they fault. */
		vmem_seg_lin(v, S_SS, (vmem_sp(v) - 2 * size) & (v->seg[S_SS].db ? ~0u : 0xFFFFu), 2 * size, true);
	}
	seg_load_cs(v, sel, v->cpl);
	if (call) {
		vmem_push(v, size, old_cs);
		vmem_push(v, size, e->next);
	}
	e->next = size == 2 ? off & 0xFFFF : off;
}

static void descriptor_test(struct emu *e)
{
	struct vcpu *v = e->v;
	uint16_t sel = (uint16_t)op_read(e, e->d->mnemonic == ZYDIS_MNEMONIC_VERR ||
						  e->d->mnemonic == ZYDIS_MNEMONIC_VERW ? 0 : 1);
	uint32_t lo, hi;
	struct seg_cache c;
	bool ok = (sel & ~3u) && seg_read_descriptor(v, sel, &lo, &hi);

	if (ok) {
		seg_decode(lo, hi, &c);
		bool code = c.s && (c.type & 8), conforming = code && (c.type & 4);
		if (!conforming && (c.dpl < v->cpl || c.dpl < (sel & 3u)))
			ok = false;
		switch (e->d->mnemonic) {
		case ZYDIS_MNEMONIC_LAR:
			if (!c.s && !(c.type == 1 || c.type == 2 || c.type == 3 || c.type == 4 ||
				      c.type == 5 || c.type == 9 || c.type == 0xB || c.type == 0xC))
				ok = false;
			if (ok)
				op_write(e, 0, e->d->operand_width == 16 ? hi & 0xFF00 : hi & 0x00F0FF00u);
			break;
		case ZYDIS_MNEMONIC_LSL:
			if (!c.s && !(c.type == 1 || c.type == 2 || c.type == 3 || c.type == 9 || c.type == 0xB))
				ok = false;
			if (ok)
				op_write(e, 0, c.limit);
			break;
		case ZYDIS_MNEMONIC_VERR:
			ok = ok && c.s && (!code || (c.type & 2));
			break;
		default: /* VERW */
			ok = ok && c.s && !code && (c.type & 2);
			break;
		}
	}
	set_zf(v, ok);
}

static void load_table_reg(struct emu *e, struct dtr *t)
{
	uint32_t off = ea(e, &e->ops[0]);
	enum sreg s = seg_of(&e->ops[0]);
	uint16_t limit = (uint16_t)vmem_seg_read(e->v, s, off, 2);
	uint32_t base = vmem_seg_read(e->v, s, off + 2, 4);

	require_cpl0(e);
	if (e->d->operand_width == 16)
		base &= 0xFFFFFF;
	t->limit = limit;
	t->base = base;
}

static void store_table_reg(struct emu *e, const struct dtr *t)
{
	uint32_t off = ea(e, &e->ops[0]);
	enum sreg s = seg_of(&e->ops[0]);

	vmem_seg_lin(e->v, s, off, 6, true);
	vmem_seg_write(e->v, s, off, 2, t->limit);
	vmem_seg_write(e->v, s, off + 2, 4, t->base);
}

static void load_ldt_or_tr(struct emu *e, bool tr)
{
	struct vcpu *v = e->v;
	uint16_t sel = (uint16_t)op_read(e, 0);
	uint32_t lo, hi;
	struct seg_cache c;

	require_cpl0(e);
	if ((sel & ~3u) == 0) {
		if (tr)
			vcpu_raise(v, EXC_GP, true, 0);
		memset(&v->ldtr, 0, sizeof v->ldtr);
		v->ldtr.sel = sel;
		return;
	}
	if ((sel & 4) || !seg_read_descriptor(v, sel, &lo, &hi))
		vcpu_raise(v, EXC_GP, true, sel & ~3u);
	seg_decode(lo, hi, &c);
	if (c.s || (tr ? (c.type != 9 && c.type != 1) : c.type != 2))
		vcpu_raise(v, EXC_GP, true, sel & ~3u);
	if (!c.p)
		vcpu_raise(v, EXC_NP, true, sel & ~3u);
	c.sel = sel;
	if (tr) {
		vmem_write(v, v->gdtr.base + (sel & ~7u) + 5, 1, ((hi >> 8) & 0xFF) | 2); /* busy */
		c.type |= 2;
		v->tr = c;
	} else {
		v->ldtr = c;
	}
}

/* Whether the new space fetches `eip` from physical page `page` (as
 * tc_jtab_page holds it) with A already set, so that a TLB could hold the
 * translation and nothing in guest memory would change. */
static bool still_fetches(void *ctx, uint32_t eip, uint32_t page)
{
	struct vcpu *v = ctx;
	struct vcpu_fetch_memo *m = &v->fetch_memo;
	uint32_t lin = v->seg[S_CS].base + eip, lp = lin >> 12, k = lp % VCPU_FETCH_MEMO;
	if (m->at[k] != m->stamp || m->page[k] != lp) {
		struct pw_result r;
		m->at[k] = m->stamp;
		m->page[k] = lp;
		m->frame[k] = TC_JTAB_NEVER_KEEP;
		if (pw_walk(v->mem, v->cr0, v->cr3, v->cr4, lin, PW_PROBE | PF_ID | vmem_nxe(v), &r) && r.accessed)
			m->frame[k] = (r.phys >> 12) | (r.user ? TC_JTAB_USER : 0) |
				      (r.user && stlb_soft(&v->shadow->soft) ? TC_JTAB_SOFT : 0);
	}
	uint32_t f = m->frame[k];
	bool smep_denies = (v->cr4 & CR4_SMEP) && !(page & TC_JTAB_USER) && (f & TC_JTAB_USER);
	return f != TC_JTAB_NEVER_KEEP && (f & ~TC_JTAB_USER) == (page & ~TC_JTAB_USER) &&
	       (!(page & TC_JTAB_USER) || (f & TC_JTAB_USER)) && !smep_denies;
}

/* mov to and from DR0-DR7.  Breakpoints are kept, not armed: bt86 does
 * not raise #DB for them.  DR6 and DR7 read their reserved bits as the
 * SDM fixes them (DR6 0xFFFF0FF0, DR7 0x400, as QEMU keeps them), and
 * DR4/DR5 are DR6/DR7 unless CR4.DE makes them #UD (SDM vol. 3 18.2.2). */
static void mov_dr(struct emu *e)
{
	struct vcpu *v = e->v;
	bool to_dr = ZydisRegisterGetClass(e->ops[0].reg.value) == ZYDIS_REGCLASS_DEBUG;
	unsigned n = e->ops[to_dr ? 0 : 1].reg.value - ZYDIS_REGISTER_DR0;

	require_cpl0(e);
	if (n == 4 || n == 5) {
		if (v->cr4 & CR4_DE)
			vcpu_raise(v, EXC_UD, false, 0);
		n += 2;
	}
	if (!to_dr) {
		op_write(e, 0, v->dr[n]);
		return;
	}
	uint32_t val = op_read(e, 1);
	if (n == 6)
		val |= DR6_FIXED_1;
	else if (n == 7)
		val |= DR7_FIXED_1;
	v->dr[n] = val;
}

/* CR3 was loaded with paging on: the shadow and the inline lookup table
 * follow the new tables. */
static void switch_space(struct vcpu *v)
{
	v->pf_retry.pending = false; /* another address space's retry */
	shadow_switch_cr3(v->shadow, v->cr0, v->cr3, v->cr4);
	if (++v->fetch_memo.stamp == 0) { /* after 2^32 loads: no entry may look current */
		memset(v->fetch_memo.at, 0, sizeof v->fetch_memo.at);
		v->fetch_memo.stamp = 1;
	}
	tc_jtab_switch(v->tc, still_fetches, v);
}

void emu_cr0_fpu_follow(struct vcpu *v, uint32_t old)
{
	if ((old ^ v->cr0) & (CR0_TS | CR0_EM | CR0_MP))
		tc_jtab_clear(v->tc);
}

/* An x87, MMX or SSE instruction with CR0.TS or CR0.EM set (translated
 * code sends every such one here: XMODE_FPU_TRAP): #NM, #UD for MMX and
 * SSE under EM (fxsave and fxrstor #NM), and wait only with TS and MP. */
static bool fpu_unavailable(struct emu *e)
{
	struct vcpu *v = e->v;
	if (!(v->cr0 & (CR0_TS | CR0_EM)) || !cpu_fpu_insn(e->d))
		return false;
	if (e->d->mnemonic == ZYDIS_MNEMONIC_FWAIT) {
		if ((v->cr0 & (CR0_TS | CR0_MP)) == (CR0_TS | CR0_MP))
			vcpu_raise(v, EXC_NM, false, 0);
		return true; /* nothing pending to report: done */
	}
	bool x87_state = e->d->meta.isa_ext == ZYDIS_ISA_EXT_X87 || e->d->meta.isa_set == ZYDIS_ISA_SET_FXSAVE;
	if ((v->cr0 & CR0_EM) && !x87_state)
		vcpu_raise(v, EXC_UD, false, 0);
	vcpu_raise(v, EXC_NM, false, 0);
}

void emu_load_cr3(struct vcpu *v, uint32_t val)
{
	v->cr3 = val;
	vmem_tlb_flush(v);
	if (v->cr0 & CR0_PG)
		switch_space(v);
	vcpu_follow_windows(v);
}

static void mov_cr(struct emu *e)
{
	struct vcpu *v = e->v;
	bool to_cr = ZydisRegisterGetClass(e->ops[0].reg.value) == ZYDIS_REGCLASS_CONTROL;
	ZydisRegister cr = to_cr ? e->ops[0].reg.value : e->ops[1].reg.value;
	unsigned n = (unsigned)(cr - ZYDIS_REGISTER_CR0);
	uint32_t *regs[5] = {&v->cr0, NULL, &v->hot->cr2, &v->cr3, &v->cr4};

	require_cpl0(e);
	if (n > 4 || !regs[n]) {
		vcpu_raise(v, EXC_UD, false, 0);
	}
	if (!to_cr) {
		reg_write(v, e->ops[0].reg.value, *regs[n]);
		return;
	}
	uint32_t val = reg_read(v, e->ops[1].reg.value);
	uint32_t old = *regs[n];
	if (n == 0) {
		if ((val & CR0_PG) && !(val & CR0_PE))
			vcpu_raise(v, EXC_GP, true, 0);
		if ((val & CR0_NW) && !(val & CR0_CD))
			vcpu_raise(v, EXC_GP, true, 0);
		val |= CR0_ET; /* real mode with PE clear (paging off, checked above) */
	} else if (n == 4) {
		/* VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT UMIP, SMEP, SMAP */
		if (val & ~(0xFFFu | CR4_SMEP | CR4_SMAP))
			vcpu_raise(v, EXC_GP, true, 0);
	}
	*regs[n] = val;
	if (n != 2)
		vmem_tlb_flush(v);
	/* The linear->physical view changed: the shadow and the inline
	 * lookup table (keyed by EIP) follow. */
	if (n == 0 && ((old ^ val) & CR0_PG)) {
		shadow_set_paging(v->shadow, val & CR0_PG);
		tc_jtab_clear(v->tc);
	} else if (n == 0 && ((old ^ val) & CR0_WP) && (val & CR0_PG)) {
		shadow_flush(v->shadow, false, SHFLUSH_MODE);
		emu_cr0_fpu_follow(v, old);
	} else if (n == 0) {
		emu_cr0_fpu_follow(v, old);
	} else if (n == 3 && (v->cr0 & CR0_PG)) {
		switch_space(v);
	} else if (n == 4 && ((old ^ val) & (CR4_PSE | CR4_PAE | CR4_PGE | CR4_SMEP | CR4_SMAP)) && (v->cr0 & CR0_PG)) {
		shadow_flush(v->shadow, false, SHFLUSH_MODE);
		tc_jtab_clear(v->tc);
	}
	vcpu_follow_windows(v);
}

/* Decoded instructions by physical address.  The emulator meets the same
 * few instructions (in, out, int, iret, mov to CR3) over and over, and
 * decoding one costs more than running it.  An entry serves only while the
 * bytes in guest memory are still those it was decoded from, so a change to
 * guest code needs no invalidation; an instruction that runs onto the next
 * page is decoded every time, into the scratch entry.  An entry is valid
 * from a successful decode until the next fetch_decode. */
#define DECODE_CACHE 256u
struct decoded {
	uint32_t phys;
	uint8_t len;                               /* 0: empty */
	bool code16;                               /* decoded as 16-bit code */
	uint8_t raw[ZYDIS_MAX_INSTRUCTION_LENGTH]; /* as fetched */
	uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH]; /* as the emulator runs them */
	ZydisDecodedInstruction d;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};
static struct decoded decode_cache[DECODE_CACHE], decode_scratch;

/* Fetches and decodes the instruction at CS:EIP into e; false when the
 * run stopped (execution outside RAM). */
static bool fetch_decode(struct emu *e, uint32_t eip)
{
	static ZydisDecoder dec32, dec16;
	static bool dec_ready;
	struct vcpu *v = e->v;
	uint32_t lin = v->seg[S_CS].base + eip;
	uint8_t fetched[ZYDIS_MAX_INSTRUCTION_LENGTH];
	bool code16 = !v->seg[S_CS].db; /* real mode, or a 16-bit code segment */

	if (!dec_ready) {
		ZydisDecoderInit(&dec32, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
		ZydisDecoderInit(&dec16, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
		dec_ready = true;
	}
	const ZydisDecoder *dec = code16 ? &dec16 : &dec32;
	/* Fetch to the end of the page first: a short instruction must not
	 * fault on the next page. */
	unsigned avail = 0x1000 - (lin & 0xFFF);
	if (avail > sizeof fetched)
		avail = sizeof fetched;
	bool global;
	uint32_t phys = vmem_translate_fetch(v, lin, &global);
	const uint8_t *code = gmem_ptr(v->mem, phys, avail);
	if (!code) {
		vcpu_stop(v, BT86_EXIT_UNSUPPORTED, "execution outside RAM at eip %#x", eip);
		return false;
	}
	memcpy(fetched, code, avail);
	struct decoded *c = &decode_cache[(phys * 0x9E3779B1u) >> 24];
	_Static_assert(DECODE_CACHE == 256, "an 8-bit hash");
	if (c->len && c->phys == phys && c->code16 == code16 && c->len <= avail && !memcmp(c->raw, fetched, c->len)) {
		v->stats->emulated_decode_hits++;
	} else {
		c->len = 0;
		memcpy(c->raw, fetched, avail);
		memcpy(c->bytes, fetched, avail);
		ZyanStatus st = ZydisDecoderDecodeFull(dec, c->bytes, avail, &c->d, c->ops);
		if (st == ZYDIS_STATUS_NO_MORE_DATA) {
			/* It runs onto the next page: that fetch may fault there. */
			c = &decode_scratch;
			code = gmem_ptr(v->mem, vmem_translate_fetch(v, lin + avail, &global), sizeof c->bytes - avail);
			if (!code) {
				vcpu_stop(v, BT86_EXIT_UNSUPPORTED, "execution outside RAM at eip %#x", eip + avail);
				return false;
			}
			memcpy(c->bytes, fetched, avail);
			memcpy(c->bytes + avail, code, sizeof c->bytes - avail);
			st = ZydisDecoderDecodeFull(dec, c->bytes, sizeof c->bytes, &c->d, c->ops);
		}
		if (ZYAN_FAILED(st))
			vcpu_raise(v, EXC_UD, false, 0);
		uint8_t plain[sizeof c->bytes];
		if (cpu_bitscan_without_rep(&c->d, c->bytes, plain)) {
			memcpy(c->bytes, plain, c->d.length);
			ZydisDecoderDecodeFull(dec, c->bytes, c->d.length, &c->d, c->ops);
		}
		if (c != &decode_scratch) {
			c->phys = phys;
			c->len = c->d.length;
			c->code16 = code16;
		}
	}
	e->d = &c->d;
	e->ops = c->ops;
	e->bytes = c->bytes;
	return true;
}

/* An iret completed: NMIs are no longer blocked, and one that waited
 * meanwhile is taken at the next attention check. */
static void nmi_unblock(struct vcpu *v)
{
	if (!v->nmi_blocked)
		return;
	v->nmi_blocked = false;
	if (v->board->lapic.nmi_pending)
		v->hot->attn_irq = 1;
}

/* n dwords from SS:esp up, as n 4-byte stack reads (iret's), with one
 * segment check and translation where the offsets do not wrap. */
static void pop_words(struct vcpu *v, uint32_t esp, uint32_t *w, unsigned n)
{
	if (esp + 4 * n < esp) {
		for (unsigned i = 0; i < n; i++)
			w[i] = vmem_seg_read(v, S_SS, esp + 4 * i, 4);
		return;
	}
	vmem_read_words(v, vmem_seg_lin(v, S_SS, esp, 4 * n, false), w, n, false);
}

void emu_invlpg(struct vcpu *v, uint32_t lin)
{
	if (!(v->cr0 & CR0_PG))
		return;
	/* The table is keyed by EIP (the page starts at page_eip whatever
	 * CS's base), and a block starting in the last bytes before the page
	 * may run onto it. */
	uint32_t page_eip = (lin & ~0xFFFu) - v->seg[S_CS].base;
	vmem_tlb_flush(v);
	shadow_invlpg(v->shadow, v->cr0, v->cr3, v->cr4, lin >> 12);
	tc_jtab_clear_range(v->tc, page_eip - (ZYDIS_MAX_INSTRUCTION_LENGTH - 1), ZYDIS_MAX_INSTRUCTION_LENGTH - 1);
	tc_jtab_clear_range(v->tc, page_eip, PAGE_SIZE_4K);
}

/* iret in real mode (SDM vol. 2A IRET, real-address mode): IP, CS and
 * FLAGS (or EIP, CS and EFLAGS with a 32-bit operand) from the stack;
 * every flag may change but VM and RF, and VIP/VIF, which stay. */
static void iret_real(struct emu *e)
{
	struct vcpu *v = e->v;
	unsigned size = e->d->operand_width / 8;
	uint32_t sp = vmem_sp(v);
	uint32_t new_eip = vmem_seg_read(v, S_SS, sp, size);
	uint16_t cs = (uint16_t)vmem_seg_read(v, S_SS, sp + size, 2);
	uint32_t fl = vmem_seg_read(v, S_SS, sp + 2 * size, size);
	seg_load_cs(v, cs, 0);
	vmem_set_sp(v, sp + 3 * size);
	load_eflags(e, fl, size);
	e->next = new_eip;
	nmi_unblock(v);
}

/* iretd at CPL 0 with VM in the popped EFLAGS (SDM vol. 2A IRET,
 * return to virtual-8086 mode): ESP, SS, ES, DS, FS and GS follow EIP, CS
 * and EFLAGS on the stack, every segment is loaded as virtual-8086 mode
 * makes it, CPL becomes 3. */
static void iret_to_vm86(struct emu *e, uint32_t esp, const uint32_t top[3])
{
	struct vcpu *v = e->v;
	uint32_t rest[6];
	pop_words(v, esp + 12, rest, 6);
	vcpu_set_eflags(v, top[2] | 0x2u);
	v->cpl = 3;
	static const enum sreg order[] = {S_SS, S_ES, S_DS, S_FS, S_GS};
	seg_load_cs(v, (uint16_t)top[1], 3);
	for (unsigned i = 0; i < 5; i++)
		seg_load(v, order[i], (uint16_t)rest[i + 1]);
	v->hot->gpr[R_ESP] = rest[0];
	e->next = top[0] & 0xFFFF;
	nmi_unblock(v);
}

/* The items iret pops, `size` bytes each (SS's size moves SP or ESP). */
static void iret_pop(struct vcpu *v, uint32_t sp, uint32_t *out, unsigned n, unsigned size)
{
	if (size == 4) {
		pop_words(v, sp, out, n);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		out[i] = vmem_seg_read(v, S_SS, (sp + 2 * i) & (v->seg[S_SS].db ? ~0u : 0xFFFFu), 2);
}

/* iret in protected mode without NT (SDM vol. 2A IRET), with a 32-bit
 * operand (iretd) or a 16-bit one (IP, CS, FLAGS words, and SP, SS for an
 * outer level): to the same level or an outer one; a fault leaves
 * everything as it was. */
static void iret_pm(struct emu *e, unsigned size)
{
	struct vcpu *v = e->v;
	if (v->hot->eflags & FL_NT) {
		/* A return to the task in the back link (SDM vol. 3 7.3). */
		uint16_t link = (uint16_t)vmem_read_supervisor(v, v->tr.base, 2);
		task_switch(v, link, TASK_IRET, 0, e->next, false, 0);
		e->next = v->hot->eip;
		nmi_unblock(v);
		return;
	}
	uint32_t sp = size == 4 ? v->hot->gpr[R_ESP] : vmem_sp(v), top[3];
	iret_pop(v, sp, top, 3, size);
	uint32_t new_eip = top[0];
	uint16_t new_cs = (uint16_t)top[1];
	uint32_t new_fl = top[2];
	unsigned rpl = new_cs & 3u;
	if (size == 4 && (new_fl & FL_VM) && v->cpl == 0) {
		iret_to_vm86(e, sp, top);
		return;
	}
	if (rpl < v->cpl)
		vcpu_raise(v, EXC_GP, true, new_cs & ~3u);
	if (rpl == v->cpl) {
		seg_load_cs(v, new_cs, v->cpl);
		if (size == 4)
			v->hot->gpr[R_ESP] = sp + 12;
		else
			vmem_set_sp(v, sp + 6);
		load_eflags(e, new_fl, size);
		e->next = new_eip;
		vcpu_prefault_retry(v);
		nmi_unblock(v);
		return;
	}
	/* Return to an outer level: check everything, then commit (EFLAGS
	 * with the old CPL's rights, then CS, SS:ESP). */
	uint32_t outer[2];
	iret_pop(v, sp + 3 * size, outer, 2, size);
	uint32_t new_esp = outer[0];
	uint16_t new_ss = (uint16_t)outer[1];
	struct seg_cache ss;
	unsigned fault = seg_check_stack(v, new_ss, rpl, &ss);
	if (fault)
		vcpu_raise(v, fault == EXC_TS ? EXC_GP : fault, true, new_ss & ~3u);
	load_eflags(e, new_fl, size);
	seg_load_cs(v, new_cs, rpl);
	seg_set(v, S_SS, new_ss, &ss);
	if (size == 4)
		v->hot->gpr[R_ESP] = new_esp;
	else
		vmem_set_sp(v, new_esp);
	seg_null_inaccessible(v);
	e->next = new_eip;
	vcpu_prefault_retry(v);
	nmi_unblock(v);
}

/* SDM vol. 2B SYSENTER: flat ring-0 CS and SS from the MSR, VM, IF and RF
 * cleared. */
static void sysenter(struct emu *e)
{
	struct vcpu *v = e->v;
	if (!(v->cr0 & CR0_PE) || !(v->sysenter_cs & 0xFFFC))
		vcpu_raise(v, EXC_GP, true, 0);
	vcpu_set_eflags(v, vcpu_eflags(v) & ~(FL_VM | FL_IF | FL_RF));
	seg_set_fast_system(v, v->sysenter_cs, 0);
	v->hot->gpr[R_ESP] = v->sysenter_esp;
	e->next = v->sysenter_eip;
}

/* Back to ring 3 at EDX with ESP = ECX; CS and SS are the 3rd and 4th
 * descriptors from the MSR's. */
static void sysexit(struct emu *e)
{
	struct vcpu *v = e->v;
	if (!(v->cr0 & CR0_PE) || !(v->sysenter_cs & 0xFFFC) || v->cpl != 0)
		vcpu_raise(v, EXC_GP, true, 0);
	seg_set_fast_system(v, (uint16_t)(v->sysenter_cs + 16), 3);
	v->hot->gpr[R_ESP] = v->hot->gpr[R_ECX];
	e->next = v->hot->gpr[R_EDX];
}

void emu_system(struct vcpu *v, enum emu_sys op, unsigned vector, unsigned length)
{
	struct emu em = {.v = v, .next = v->hot->eip + length};
	struct emu *e = &em;

	switch (op) {
	case EMU_SYS_INT:
		vcpu_deliver(v, vector, false, 0, true, e->next);
		return;
	case EMU_SYS_IRET:
		iret_pm(e, 4);
		break;
	case EMU_SYS_SYSENTER:
		sysenter(e);
		break;
	case EMU_SYS_SYSEXIT:
		sysexit(e);
		break;
	}
	if (!v->stopped)
		v->hot->eip = e->next;
}

void emu_step(struct vcpu *v)
{
	struct emu em = {.v = v};
	struct emu *e = &em;
	uint32_t eip = v->hot->eip;

	v->stats->insn_emulated++;
	if (!fetch_decode(e, eip))
		return;
	e->next = eip + e->d->length;
	if (e->d->mnemonic < STATS_MNEMONICS)
		v->stats->emulated_by[e->d->mnemonic]++;
	if (e->d->encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY)
		vcpu_raise(v, EXC_UD, false, 0); /* no AVX, no 3DNow! in the model */
	if (fpu_unavailable(e)) {
		v->hot->eip = e->next;
		return;
	}
	if (v->vm && iopl(v) < 3) {
		/* IOPL-sensitive in virtual-8086 mode (SDM vol. 3 20.2.7): the
		 * monitor in ring 0 takes the #GP and emulates them. */
		switch (e->d->mnemonic) {
		case ZYDIS_MNEMONIC_PUSHF:
		case ZYDIS_MNEMONIC_PUSHFD:
		case ZYDIS_MNEMONIC_POPF:
		case ZYDIS_MNEMONIC_POPFD:
		case ZYDIS_MNEMONIC_INT:
		case ZYDIS_MNEMONIC_IRET:
		case ZYDIS_MNEMONIC_IRETD:
			vcpu_raise(v, EXC_GP, true, 0);
		default:
			break;
		}
	}

	switch (e->d->mnemonic) {
	case ZYDIS_MNEMONIC_STAC:
	case ZYDIS_MNEMONIC_CLAC:
		if (v->cpl != 0)
			vcpu_raise(v, EXC_UD, false, 0);
		v->hot->vsys = (v->hot->vsys & ~FL_AC) | (e->d->mnemonic == ZYDIS_MNEMONIC_STAC ? FL_AC : 0);
		break;
	case ZYDIS_MNEMONIC_CLI:
	case ZYDIS_MNEMONIC_STI:
		if (v->cpl > iopl(v))
			vcpu_raise(v, EXC_GP, true, 0);
		if (e->d->mnemonic == ZYDIS_MNEMONIC_STI && !v->hot->vif && !v->in_shadow)
			v->irq_shadow = true; /* IF set: not before the next instruction */
		v->hot->vif = e->d->mnemonic == ZYDIS_MNEMONIC_STI ? FL_IF : 0;
		break;
	case ZYDIS_MNEMONIC_PUSHF:
	case ZYDIS_MNEMONIC_PUSHFD:
		vmem_push(v, e->d->operand_width / 8, vcpu_eflags(v) & ~(FL_RF | FL_VM));
		break;
	case ZYDIS_MNEMONIC_POPF:
	case ZYDIS_MNEMONIC_POPFD: {
		unsigned size = e->d->operand_width / 8;
		uint32_t sp = vmem_sp(v);
		uint32_t fl = vmem_seg_read(v, S_SS, sp, size);
		load_eflags(e, fl, size);
		vmem_set_sp(v, sp + size);
		break;
	}
	case ZYDIS_MNEMONIC_HLT:
		require_cpl0(e);
		v->halted = true;
		break;
	case ZYDIS_MNEMONIC_IN:
		check_io(e, port_of(e, 1), e->ops[0].size / 8);
		op_write(e, 0, board_io_read(v->board, port_of(e, 1), e->ops[0].size / 8));
		break;
	case ZYDIS_MNEMONIC_OUT:
		check_io(e, port_of(e, 0), e->ops[1].size / 8);
		board_io_write(v->board, port_of(e, 0), e->ops[1].size / 8, op_read(e, 1));
		break;
	case ZYDIS_MNEMONIC_INSB:
	case ZYDIS_MNEMONIC_INSW:
	case ZYDIS_MNEMONIC_INSD:
		string_io(e, true);
		break;
	case ZYDIS_MNEMONIC_OUTSB:
	case ZYDIS_MNEMONIC_OUTSW:
	case ZYDIS_MNEMONIC_OUTSD:
		string_io(e, false);
		break;
	case ZYDIS_MNEMONIC_INT:
		vcpu_deliver(v, (uint8_t)e->ops[0].imm.value.u, false, 0, true, e->next);
		return;
	case ZYDIS_MNEMONIC_INT3:
		vcpu_deliver(v, EXC_BP, false, 0, true, e->next);
		return;
	case ZYDIS_MNEMONIC_INTO:
		if (!(v->hot->eflags & FL_OF))
			break;
		vcpu_deliver(v, EXC_OF, false, 0, true, e->next);
		return;
	case ZYDIS_MNEMONIC_INT1:
		vcpu_deliver(v, EXC_DB, false, 0, false, e->next);
		return;
	case ZYDIS_MNEMONIC_IRET:
	case ZYDIS_MNEMONIC_IRETD:
		if (!(v->cr0 & CR0_PE) || v->vm) {
			iret_real(e); /* in virtual-8086 mode with IOPL 3: VM and IOPL stay */
		} else if (e->d->operand_width == 16) {
			iret_pm(e, 2);
		} else {
			iret_pm(e, 4);
		}
		break;
	case ZYDIS_MNEMONIC_MOV:
		if (e->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(e->ops[0].reg.value) == ZYDIS_REGCLASS_SEGMENT) {
			if (e->ops[0].reg.value == ZYDIS_REGISTER_CS)
				vcpu_raise(v, EXC_UD, false, 0);
			seg_load(v, (enum sreg)(e->ops[0].reg.value - ZYDIS_REGISTER_ES), (uint16_t)op_read(e, 1));
			if (e->ops[0].reg.value == ZYDIS_REGISTER_SS)
				ss_shadow(v);
			break;
		}
		if ((e->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		     ZydisRegisterGetClass(e->ops[0].reg.value) == ZYDIS_REGCLASS_CONTROL) ||
		    (e->ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		     ZydisRegisterGetClass(e->ops[1].reg.value) == ZYDIS_REGCLASS_CONTROL)) {
			mov_cr(e);
			break;
		}
		if ((e->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		     ZydisRegisterGetClass(e->ops[0].reg.value) == ZYDIS_REGCLASS_DEBUG) ||
		    (e->ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		     ZydisRegisterGetClass(e->ops[1].reg.value) == ZYDIS_REGCLASS_DEBUG)) {
			mov_dr(e);
			break;
		}
		data_move(e);
		break;
	case ZYDIS_MNEMONIC_POP:
		if (e->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(e->ops[0].reg.value) == ZYDIS_REGCLASS_SEGMENT) {
			unsigned size = e->d->operand_width / 8;
			uint32_t sp = vmem_sp(v);
			uint16_t sel = (uint16_t)vmem_seg_read(v, S_SS, sp, size);
			seg_load(v, (enum sreg)(e->ops[0].reg.value - ZYDIS_REGISTER_ES), sel);
			vmem_set_sp(v, sp + size);
			if (e->ops[0].reg.value == ZYDIS_REGISTER_SS)
				ss_shadow(v);
			break;
		}
		{
			/* the destination's address is computed after the increment */
			unsigned size = e->d->operand_width / 8;
			uint32_t sp = vmem_sp(v);
			uint32_t val = vmem_seg_read(v, S_SS, sp, size);
			vmem_set_sp(v, sp + size);
			op_write(e, 0, val);
			break;
		}
	case ZYDIS_MNEMONIC_PUSH:
		vmem_push(v, e->d->operand_width / 8, op_read(e, 0));
		break;
	case ZYDIS_MNEMONIC_LDS:
	case ZYDIS_MNEMONIC_LES:
	case ZYDIS_MNEMONIC_LFS:
	case ZYDIS_MNEMONIC_LGS:
	case ZYDIS_MNEMONIC_LSS: {
		static const enum sreg which[] = {S_DS, S_ES, S_FS, S_GS, S_SS};
		unsigned k = e->d->mnemonic == ZYDIS_MNEMONIC_LDS ? 0 : e->d->mnemonic == ZYDIS_MNEMONIC_LES ? 1
			   : e->d->mnemonic == ZYDIS_MNEMONIC_LFS ? 2 : e->d->mnemonic == ZYDIS_MNEMONIC_LGS ? 3 : 4;
		unsigned size = e->d->operand_width / 8;
		uint32_t off = ea(e, &e->ops[1]);
		enum sreg s = seg_of(&e->ops[1]);
		uint32_t val = vmem_seg_read(v, s, off, size);
		uint16_t sel = (uint16_t)vmem_seg_read(v, s, off + size, 2);
		seg_load(v, which[k], sel);
		reg_write(v, e->ops[0].reg.value, val);
		break;
	}
	case ZYDIS_MNEMONIC_LGDT:
		load_table_reg(e, &v->gdtr);
		seg_reload_disarm(v);
		break;
	case ZYDIS_MNEMONIC_LIDT:
		load_table_reg(e, &v->idtr);
		break;
	case ZYDIS_MNEMONIC_SGDT:
		umip_check(e);
		store_table_reg(e, &v->gdtr);
		break;
	case ZYDIS_MNEMONIC_SIDT:
		umip_check(e);
		store_table_reg(e, &v->idtr);
		break;
	case ZYDIS_MNEMONIC_LLDT:
		load_ldt_or_tr(e, false);
		break;
	case ZYDIS_MNEMONIC_LTR:
		load_ldt_or_tr(e, true);
		break;
	case ZYDIS_MNEMONIC_SLDT:
	case ZYDIS_MNEMONIC_STR: {
		umip_check(e);
		uint16_t sel = e->d->mnemonic == ZYDIS_MNEMONIC_STR ? v->tr.sel : v->ldtr.sel;
		op_write(e, 0, sel);
		break;
	}
	case ZYDIS_MNEMONIC_SMSW:
		umip_check(e);
		op_write(e, 0, e->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY ? v->cr0 & 0xFFFF : v->cr0);
		break;
	case ZYDIS_MNEMONIC_LMSW: {
		require_cpl0(e);
		uint32_t src = op_read(e, 0) & 0xF, old = v->cr0;
		v->cr0 = (v->cr0 & ~0xEu) | src | (v->cr0 & CR0_PE);
		emu_cr0_fpu_follow(v, old);
		break;
	}
	case ZYDIS_MNEMONIC_CLTS: {
		require_cpl0(e);
		uint32_t old = v->cr0;
		v->cr0 &= ~CR0_TS;
		emu_cr0_fpu_follow(v, old);
		break;
	}
	case ZYDIS_MNEMONIC_INVLPG:
		require_cpl0(e);
		emu_invlpg(v, v->seg[seg_of(&e->ops[0])].base + ea(e, &e->ops[0]));
		break;
	case ZYDIS_MNEMONIC_WBINVD:
	case ZYDIS_MNEMONIC_INVD:
		require_cpl0(e);
		break;
	case ZYDIS_MNEMONIC_CPUID: {
		uint32_t out[4];
		cpu_cpuid(v->hot->gpr[R_EAX], v->hot->gpr[R_ECX], out);
		v->hot->gpr[R_EAX] = out[0];
		v->hot->gpr[R_EBX] = out[1];
		v->hot->gpr[R_ECX] = out[2];
		v->hot->gpr[R_EDX] = out[3];
		break;
	}
	case ZYDIS_MNEMONIC_RDTSC:
	case ZYDIS_MNEMONIC_RDTSCP: {
		if ((v->cr4 & 0x4) && v->cpl != 0)
			vcpu_raise(v, EXC_GP, true, 0);
		uint64_t t = cpu_rdtsc(v);
		v->hot->gpr[R_EAX] = (uint32_t)t;
		v->hot->gpr[R_EDX] = (uint32_t)(t >> 32);
		if (e->d->mnemonic == ZYDIS_MNEMONIC_RDTSCP)
			v->hot->gpr[R_ECX] = v->hot->tsc_aux;
		break;
	}
	case ZYDIS_MNEMONIC_RDMSR:
	case ZYDIS_MNEMONIC_WRMSR: {
		require_cpl0(e);
		uint32_t msr = v->hot->gpr[R_ECX];
		if (e->d->mnemonic == ZYDIS_MNEMONIC_RDMSR) {
			uint64_t val;
			if (!cpu_rdmsr(v, msr, &val))
				vcpu_raise(v, EXC_GP, true, 0);
			v->hot->gpr[R_EAX] = (uint32_t)val;
			v->hot->gpr[R_EDX] = (uint32_t)(val >> 32);
		} else {
			uint64_t val = ((uint64_t)v->hot->gpr[R_EDX] << 32) | v->hot->gpr[R_EAX];
			if (!cpu_wrmsr(v, msr, val))
				vcpu_raise(v, EXC_GP, true, 0);
		}
		break;
	}
	case ZYDIS_MNEMONIC_LAR:
	case ZYDIS_MNEMONIC_LSL:
	case ZYDIS_MNEMONIC_VERR:
	case ZYDIS_MNEMONIC_VERW:
		descriptor_test(e);
		break;
	case ZYDIS_MNEMONIC_JMP:
	case ZYDIS_MNEMONIC_CALL: {
		bool call = e->d->mnemonic == ZYDIS_MNEMONIC_CALL;
		if (near_branch(e))
			break;
		if (e->ops[0].type == ZYDIS_OPERAND_TYPE_POINTER) {
			far_jump(e, e->ops[0].ptr.segment, e->ops[0].ptr.offset, call);
		} else if (e->d->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR && e->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY) {
			unsigned size = e->d->operand_width / 8; /* m16:16 or m16:32 */
			uint32_t off = ea(e, &e->ops[0]);
			enum sreg s = seg_of(&e->ops[0]);
			uint32_t target = vmem_seg_read(v, s, off, size);
			uint16_t sel = (uint16_t)vmem_seg_read(v, s, off + size, 2);
			far_jump(e, sel, target, call);
		} else {
			unsupported(e, "16-bit branch");
			return;
		}
		break;
	}
	case ZYDIS_MNEMONIC_RET:
		if (near_branch(e))
			break;
		if (e->d->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR) {
			unsigned size = e->d->operand_width / 8; /* 2 or 4 a pop */
			uint32_t extra = e->ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE ? (uint16_t)e->ops[0].imm.value.u : 0;
			uint32_t sp = vmem_sp(v);
			uint32_t new_eip = vmem_seg_read(v, S_SS, sp, size);
			uint16_t sel = (uint16_t)vmem_seg_read(v, S_SS, sp + size, 2);
			if ((v->cr0 & CR0_PE) && !v->vm && (sel & 3u) != v->cpl) {
				far_return_outer(e, sp, size, extra, new_eip, sel);
				break;
			}
			seg_load_cs(v, sel, v->cpl);
			vmem_set_sp(v, sp + 2 * size + extra);
			e->next = new_eip;
			break;
		}
		unsupported(e, "return");
		return;
	case ZYDIS_MNEMONIC_PUSHAD: {
		uint32_t esp = v->hot->gpr[R_ESP];
		vmem_seg_lin(v, S_SS, esp - 32, 32, true);
		for (unsigned r = 0; r < 8; r++)
			vmem_seg_write(v, S_SS, esp - 4 * (r + 1), 4, r == R_ESP ? esp : v->hot->gpr[r]);
		v->hot->gpr[R_ESP] = esp - 32;
		break;
	}
	case ZYDIS_MNEMONIC_POPAD: {
		uint32_t esp = v->hot->gpr[R_ESP], val[8];
		for (unsigned r = 0; r < 8; r++)
			val[r] = vmem_seg_read(v, S_SS, esp + 28 - 4 * r, 4);
		for (unsigned r = 0; r < 8; r++)
			if (r != R_ESP)
				v->hot->gpr[r] = val[r];
		v->hot->gpr[R_ESP] = esp + 32;
		break;
	}
	case ZYDIS_MNEMONIC_ENTER: {
		uint32_t size = (uint32_t)e->ops[0].imm.value.u, level = (uint32_t)e->ops[1].imm.value.u & 31;
		if (level != 0 || e->d->operand_width != 32) {
			unsupported(e, "enter with nesting level");
			return;
		}
		uint32_t esp = v->hot->gpr[R_ESP] - 4;
		vmem_seg_write(v, S_SS, esp, 4, v->hot->gpr[R_EBP]);
		v->hot->gpr[R_EBP] = esp;
		v->hot->gpr[R_ESP] = esp - size;
		break;
	}
	case ZYDIS_MNEMONIC_BOUND: {
		if (e->d->operand_width != 32) {
			unsupported(e, "16-bit bound");
			return;
		}
		int32_t idx = (int32_t)op_read(e, 0);
		uint32_t off = ea(e, &e->ops[1]);
		enum sreg s = seg_of(&e->ops[1]);
		int32_t lo = (int32_t)vmem_seg_read(v, s, off, 4), hi = (int32_t)vmem_seg_read(v, s, off + 4, 4);
		if (idx < lo || idx > hi)
			vcpu_raise(v, EXC_BR, false, 0);
		break;
	}
	case ZYDIS_MNEMONIC_ARPL: {
		uint16_t dst = (uint16_t)op_read(e, 0), src = (uint16_t)op_read(e, 1);
		bool adjust = (dst & 3) < (src & 3);
		if (adjust)
			op_write(e, 0, (dst & ~3u) | (src & 3u));
		set_zf(v, adjust);
		break;
	}
	case ZYDIS_MNEMONIC_DAA:
	case ZYDIS_MNEMONIC_DAS:
	case ZYDIS_MNEMONIC_AAA:
	case ZYDIS_MNEMONIC_AAS:
	case ZYDIS_MNEMONIC_AAM:
	case ZYDIS_MNEMONIC_AAD:
	case ZYDIS_MNEMONIC_SALC:
		decimal(e);
		break;
	case ZYDIS_MNEMONIC_ENDBR32:
	case ZYDIS_MNEMONIC_ENDBR64:
	case ZYDIS_MNEMONIC_NOP:
		break;
	case ZYDIS_MNEMONIC_SYSENTER:
		sysenter(e);
		break;
	case ZYDIS_MNEMONIC_SYSEXIT:
		sysexit(e);
		break;
	case ZYDIS_MNEMONIC_SYSCALL:
	case ZYDIS_MNEMONIC_SYSRET:
	case ZYDIS_MNEMONIC_RDPID:
	case ZYDIS_MNEMONIC_RDPMC:
	case ZYDIS_MNEMONIC_XGETBV:
	case ZYDIS_MNEMONIC_UD0:
	case ZYDIS_MNEMONIC_UD1:
	case ZYDIS_MNEMONIC_UD2:
		vcpu_raise(v, EXC_UD, false, 0); /* not in the virtual CPU model */
	default:
		if (!near_branch(e) && !data_move(e) && !bounce(e)) {
			unsupported(e, "instruction");
			return;
		}
		break;
	}
	if (!v->stopped)
		v->hot->eip = e->next;
}
