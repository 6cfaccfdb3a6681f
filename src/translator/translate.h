/*
 * The translator: scans guest code ahead of the PC one block at a time and
 * emits 64-bit host code for it into the translation cache.
 *
 * A block is at most XLATE_MAX_INSNS instructions from one guest page (its
 * first instruction may run onto the next) and ends at the first control
 * transfer, at an instruction sent to the emulator, or one instruction after
 * sti.  Each guest instruction becomes one of:
 *  - a copy (XC_PLAIN): its own bytes with an address-size prefix when it
 *    touches memory, so its addresses stay 32-bit and inside the guest window;
 *  - an inline rewrite: stack operations (64-bit mode has no 32-bit push),
 *    branches, cli/sti/pushf/popf and segment-register reads;
 *  - an exit the monitor serves from the decoded instruction, the block
 *    going on after it (XC_PORT: in and out at CPL 0), or ending there
 *    (XC_INVLPG at CPL 0);
 *  - an exit to the one-instruction emulator (XC_EMULATE): every other
 *    sensitive instruction, and anything not known to behave the same in
 *    64-bit mode.
 *
 * Ring-0 instructions the monitor has seen touch user pages under two CR3s
 * (marked with xlate_mark: Linux's copy_to_user and get_user, say)
 * address memory in the current CR3's kernel view instead of the kernel
 * window (XC_KWIN_MEM, XC_KWIN_STRING; shadow.h says why).  Those it has
 * seen touch a page that churns (remapped and invlpg'd over and over) reach
 * memory through ring 0's soft TLB (XC_KSOFT_MEM; stlb.h says why).
 *
 * Invariant every rewrite keeps: one host instruction of a guest
 * instruction's code can fault on guest memory, and the low 32 bits of the
 * guest registers, and the flags, are the guest's until it has completed,
 * so a fault maps back to the guest instruction with the exact guest state.
 */
#ifndef BT86_TRANSLATE_H
#define BT86_TRANSLATE_H

#include <stdbool.h>
#include <stdint.h>

#include <Zydis/Zydis.h>

#include "../cache/tc.h"

#define XLATE_MAX_INSNS 64u
#define XLATE_MAX_HOST_PER_INSN 160u

/* Mode bits a translation assumes (part of the block key). */
#define XMODE_CPL_MASK 0x3u
#define XMODE_PAGING 0x4u
/* rdtsc may run natively: the guest's TSC is the host's (never written)
 * and CR4.TSD does not apply. */
#define XMODE_TSC_NATIVE 0x8u
/* Ring 3 of a young address space under paging: guest memory through the
 * soft TLB (stlb.h). */
#define XMODE_SOFT TC_MODE_SOFT
/* Rings 0-2 under paging with CR4.SMAP: instructions marked as the
 * kernel's accesses to user memory check EFLAGS.AC first. */
#define XMODE_SMAP 0x20u
/* CR0.TS or CR0.EM: x87, MMX and SSE instructions go to the emulator,
 * which raises #NM (or #UD). */
#define XMODE_FPU_TRAP 0x40u
/* EFLAGS.TF: one instruction a block, which never chains, so that the run
 * loop raises the single-step trap after each; pushf and popf go to the
 * emulator, which sees the guest's TF. */
#define XMODE_STEP 0x80u

enum xclass {
	XC_PLAIN,
	XC_PUSH,
	XC_POP,
	XC_PUSHF,
	XC_POPF,
	XC_LEAVE,
	XC_PUSHA,       /* pushad: eight stores below ESP */
	XC_POPA,        /* popad: the frame probed word by word, then seven loads */
	XC_JMP,
	XC_JCC,
	XC_LOOP,
	XC_CALL,
	XC_JMP_IND,
	XC_CALL_IND,
	XC_RET,
	XC_CLI,
	XC_STI,
	XC_SET_AC,      /* stac, clac at CPL 0: AC in VC_VSYS */
	XC_MOV_FROM_SREG,
	XC_PUSH_SREG,
	XC_USER_STRING, /* movs/stos/cmps/scas at CPL 3: ESI and EDI moved into the user view */
	XC_SREG_RELOAD, /* mov r, %es/%ds/%fs and their pops at CPL 0: a recorded load repeated inline */
	XC_MOV_FROM_CR2, /* mov %cr2, r32 at CPL 0: a load from the VCPU (the page-fault handler's read) */
	XC_PORT,        /* in/out at CPL 0: an exit the monitor serves without the emulator, the block going on */
	XC_INVLPG,      /* invlpg at CPL 0: its linear address computed inline, an exit without the emulator */
	XC_KWIN_MEM,    /* a marked ring-0 instruction's explicit memory operand, in the current kernel view */
	XC_KWIN_STRING, /* a marked ring-0 string instruction: ESI and EDI moved into that view */
	XC_KSOFT_MEM,   /* a ring-0 instruction marked for churning pages: its explicit operand through ring 0's soft TLB */
	XC_RDTSCP,      /* rdtscp with the host's TSC: lfence; rdtsc and ECX from VC_TSC_AUX */
	XC_SYSTEM,      /* int n, int3, iretd, sysenter, sysexit: an exit saying which, no decode (TCX_SYSTEM) */
	XC_EMULATE,
};

struct tc;
struct tc_block;
struct gmem;
struct stats;

/* Room for the marked instructions' EIPs (open addressing; 0 is empty). */
#define XLATE_SITE_SLOTS 4096u
/* What a mark says of a ring-0 instruction. */
#define XLATE_SITE_UACCESS 0x1u /* touches user pages under more than one CR3 */
#define XLATE_SITE_KSOFT 0x2u   /* touches pages that churn */

struct xlate {
	struct tc *tc;
	struct gmem *mem;
	struct stats *stats;
	ZydisDecoder dec;
	uint32_t site[XLATE_SITE_SLOTS];
	uint8_t site_kind[XLATE_SITE_SLOTS]; /* XLATE_SITE_* */
	uint32_t n_sites;
	/* When set, a block ends before an instruction at an EIP this says
	 * yes to (the debugger's breakpoints, gdbstub.h). */
	bool (*stop_before)(const void *ctx, uint32_t eip);
	const void *stop_ctx;
};

void xlate_init(struct xlate *x, struct tc *tc, struct gmem *mem, struct stats *stats);

/* Marks the ring-0 instruction at `eip` as one that touches user pages
 * (XLATE_SITE_UACCESS: its translations from now on reach memory through
 * the current CR3's kernel view) or pages that churn (XLATE_SITE_KSOFT:
 * through ring 0's soft TLB; a uaccess mark comes first).  False when it
 * was marked so already (or the set is full): nothing to retranslate. */
bool xlate_mark(struct xlate *x, uint32_t eip, unsigned kind);

enum xclass xlate_classify(const ZydisDecodedInstruction *d, const ZydisDecodedOperand *ops);

/* Translates the block at guest linear `eip`, whose first byte is at
 * guest-physical `phys`; under paging `phys2` is the frame the next linear
 * page maps to, or TC_PHYS2_UNMAPPED (tc.h), for an instruction that runs
 * onto it.  Returns NULL when the first byte is not RAM.  Flushes the cache
 * first when it is full (tc->generation tells callers). */
struct tc_block *xlate_block(struct xlate *x, uint32_t eip, uint32_t phys, uint32_t mode, uint32_t phys2);

#endif
