/*
 * Host code emission for the translator: fixed sequences written as bytes
 * (each one's assembly is in its comment, and the unit tests disassemble them
 * with Capstone), and instructions built from guest operands, which go
 * through the Zydis encoder.
 */
#ifndef BT86_EMIT_H
#define BT86_EMIT_H

#include <stdbool.h>
#include <stdint.h>

#include <Zydis/Zydis.h>

struct emit {
	uint8_t *base;   /* r14: offsets are relative to it */
	uint8_t seg;     /* 0x65 when guest memory is the user view (ring 3), else 0 */
	uint32_t pos;    /* next byte */
	uint32_t limit;  /* first byte not to write */
	bool overflow;
};

void emit_bytes(struct emit *e, const void *p, unsigned n);
void emit_u8(struct emit *e, uint8_t v);
void emit_u32(struct emit *e, uint32_t v);

/* jmp/jcc rel32 to an offset; returns the offset of the rel32 field. */
uint32_t emit_jmp(struct emit *e, uint32_t target);
uint32_t emit_jcc(struct emit *e, unsigned cc, uint32_t target);
void emit_set_rel32(struct emit *e, uint32_t at, uint32_t target);

/* mov $arg, %r10d; jmp *VC_EXIT_GATE(%r15) */
void emit_exit_stub(struct emit *e, uint32_t arg);

/* Jumps to the block for guest EIP %r8d through the lookup table, or to the
 * miss stub; guest registers and flags are preserved. */
void emit_lookup(struct emit *e, uint32_t miss_stub);

/* Block-entry test of the attention word.  flags_dead (in a block that is
 * not soft) allows the cmp form, whose jne to the attention stub it
 * returns the rel32 offset of.  Every other form borrows RCX and leaves
 * through a way out placed just before the block's entry: the caller
 * emits that first (emit_attention_exit, which gives the rel32 offset of
 * its jump to the stub) and passes its offset as exit_at; the test then
 * returns 0.  A soft-TLB block also spends one of VC_SOFT_BUDGET, and
 * leaves the same way when that was the last. */
bool emit_attention_uses_exit(bool flags_dead, bool soft);
/* cmpl $0, VC_ATTN_IRQ(%r15); jne: returns the jne's rel32 offset (the cmp
 * form's first half, and the window test after sti's shadow). */
uint32_t emit_attention_irq_test(struct emit *e);
uint32_t emit_attention_exit(struct emit *e);
uint32_t emit_attention_check(struct emit *e, bool flags_dead, bool soft, uint32_t exit_at);

/* The soft TLB (stlb.h) for an access of `size` bytes at the linear address
 * in r10d: r11 = its page's entry in the read or write table (ring 0's
 * when `kernel`), for the access through (%r11,%r10) that follows, or the
 * user view's base (the kernel view's) when the access runs onto the next
 * page (the view's mappings check both);
 * RCX, borrowed for the tests, is the guest's again by then, and the flags
 * are untouched.  An empty entry leaves for the monitor through `miss_stub`
 * with the address in VC_SOFT_LIN and in VC_SOFT_AT the code offset of the
 * guest instruction (`insn_at`), where the monitor resumes once it has
 * filled the entry: an instruction's code assumes nothing but the guest's
 * registers at its start. */
void emit_stlb_lookup(struct emit *e, bool write, bool kernel, unsigned size, uint32_t insn_at, uint32_t miss_stub);
/* Whether the host has BMI2, whose flag-free shifts and rotates (shrx,
 * shlx, rorx) translated code uses; without it, sequences through xmm8,
 * bswap and lea that leave the flags alone as well. */
bool emit_host_bmi2(void);
/* Whether the host has lahf/sahf in 64-bit mode (CPUID 0x80000001 ECX bit 0). */
bool emit_host_sahf(void);
/* ECX := the upper half of RCX, up to its byte order (zero and all ones
 * exactly when it was), flags untouched; RCX's upper half is lost. */
void emit_upper_half_test(struct emit *e);

/* Increments the 64-bit counter at offset `at` from r14, flags untouched. */
void emit_count(struct emit *e, uint32_t at);

/* Guest stack, 32-bit ESP in rsp: */
void emit_store_below_esp(struct emit *e, unsigned r8_or_imm, uint32_t imm, unsigned size);
void emit_adjust_esp(struct emit *e, int32_t delta);

/* Encodes one 64-bit-mode instruction; false (and e->overflow untouched) if
 * Zydis cannot encode it.  guest_mem: its memory operand is guest memory
 * (gets the window prefix). */
bool emit_encoded(struct emit *e, ZydisEncoderRequest *req, bool guest_mem);

/* The prefixes every access to guest memory carries: the user view's
 * segment (ring 3) and the 32-bit address size. */
void emit_guest_prefix(struct emit *e);

#endif
