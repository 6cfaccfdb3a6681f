/*
 * The contract between C, the switch code (switch.S) and the code the
 * translator emits.
 *
 * Register convention while translated code runs (64-bit mode):
 *   eax ecx edx ebx ebp esi edi  guest registers (upper halves zero)
 *   rsp                          guest ESP, zero-extended
 *   r15                          struct vcpu_hot *
 *   r14                          direct-mapped lookup table, followed by the
 *                                translation cache (entries hold offsets from r14)
 *   r13                          count of inline lookup hits
 *   r12                          guest GS base, r9 guest FS base
 *   r8 r10 r11                   scratch for rewrite sequences
 * Ring-3 blocks reach guest memory with a gs: prefix: the host GS base is
 * the current user view (layout.h), which holds only user-accessible pages.
 * In the soft-TLB form (young or big spaces under paging) they instead
 * access (%r11,%r10), r11 an entry of VC_STLB_READ/VC_STLB_WRITE (stlb.h)
 * or VC_UWIN_BASE for an access running onto the next page; an empty entry
 * exits to the monitor.
 * Ring-0 instructions found to touch user pages add VC_KWIN_BASE instead;
 * those found to touch churning pages use VC_KSTLB_READ/VC_KSTLB_WRITE as
 * ring 3's soft form does its tables, VC_KWIN_BASE for a straddle.
 * Guest code can never name r8-r15, so rewrites need no spill slots.
 *
 * Invariants:
 *  - VC_VIF is 0 or 0x200 (the guest's IF bit); VC_VSYS holds only the
 *    guest's IOPL and AC bits.  The host runs guest code with IF = 1, IOPL = 0
 *    and AC = 0, so guest EFLAGS = host EFLAGS - 0x200 + VIF + VSYS.
 *  - VC_ATTN is non-zero when the monitor wants control at the next block
 *    entry.  sti and popf copy VC_IRQ_WAIT into VC_ATTN_IRQ, so an interrupt
 *    that arrived while IF = 0 is taken once IF is set again.  Each half
 *    stays below 64 (VC_ATTN_IRQ and VC_IRQ_WAIT are 0 or 1, VC_ATTN_REQ
 *    holds ATTN_REQ_* bits 0-5), so that a shift of 1 by it is zero
 *    exactly when it is not.
 *  - A lookup-table entry is {-guest_eip, offset of the code from r14}; an
 *    empty entry points at the miss stub, so an empty hit is always safe.
 */
#ifndef BT86_VCPU_ABI_H
#define BT86_VCPU_ABI_H

#define VC_GPR 0x00         /* 8 x u32: eax ecx edx ebx esp ebp esi edi */
#define VC_EIP 0x20
#define VC_EFLAGS 0x24      /* host-held flag bits at the last exit */
#define VC_VIF 0x28
#define VC_VSYS 0x2c
#define VC_ATTN 0x30        /* u64, tested whole: */
#define VC_ATTN_IRQ 0x30    /*   u32: an interrupt may be deliverable */
#define VC_ATTN_REQ 0x34    /*   u32: monitor requests (stop, flush, ...) */
#define VC_IRQ_WAIT 0x38    /* u32: interrupt pending but masked by IF = 0 */
#define VC_EXIT_ARG 0x3c    /* tc offset of the exit stub taken, or EXIT_ARG_* */
#define VC_TARGET 0x40      /* guest target of an indirect transfer that missed; an invlpg's address */
#define VC_FS_BASE 0x44
#define VC_HOST_RSP 0x48    /* u64: monitor stack pointer while guest code runs */
#define VC_EXIT_GATE 0x50   /* u64: address of vcpu_exit_gate */
#define VC_JTAB 0x58        /* u64 */
#define VC_LOOKUP_HITS 0x60 /* u64: r13 while guest code runs */
#define VC_GS_BASE 0x68
#define VC_ENTRY_FLAGS 0x6c /* host RFLAGS to enter guest code with */
#define VC_SEL 0x70         /* 6 x u32 guest selectors: es cs ss ds fs gs */
#define VC_SCRATCH_TOP 0xA0 /* 16-byte stack for pushfq/popfq, growing down to 0x90 */
#define VC_RCX_SAVE 0xA0    /* u64: the guest's RCX while a reload check or a soft-TLB lookup borrows it */
/* 4 x 24 bytes, one a recorded segment load (ES, DS, and the last two of
 * FS: Linux's kernel and user FS alternate), which ring-0 translated code
 * may repeat itself (translate.c's emit_sreg_reload; segment.c records): */
#define VC_SREG_RELOAD 0xA8
#define SREG_RELOAD_SELNEG 0x0  /*   u32: -(the selector), or 1: never */
#define SREG_RELOAD_DESC_AT 0x4 /*   u32: linear address of its descriptor */
#define SREG_RELOAD_DESCNEG 0x8 /*   u64: -(the descriptor's 8 bytes as loaded) */
#define SREG_RELOAD_BASE 0x10   /*   u32: the segment base */
#define SREG_RELOAD_NULL 0x14   /*   u32: nonzero for a null FS (no descriptor) */
#define SREG_RELOAD_SIZE 0x18
#define SREG_RELOADS 4u
#define VC_KWIN_BASE 0x108  /* u64: host base of the current kernel view (layout.h) */
#define VC_UWIN_BASE 0x110  /* u64: and of the current user view, the host GS base */
#define VC_CR2 0x118        /* u32: the guest's CR2, which ring-0 code reads inline */
#define VC_MON_CTL 0x11C    /* u32: the monitor's MXCSR, while guest code runs */
#define VC_TSC_AUX 0x120    /* u32: IA32_TSC_AUX, what rdtscp gives in ECX (translated rdtscp reads it) */
#define VC_SOFT_LIN 0x124   /* u32: the linear address of a soft-TLB access that found no entry */
#define VC_SOFT_AT 0x128    /* u32: its instruction's code offset, bit 31 set for the write table */
#define VC_SOFT_BUDGET 0x130 /* u64: soft-TLB block entries the current space has left (stlb.h) */
#define VC_ONE 0x138        /* u64: 1, shifted by the attention word's halves (emit_attention_check) */
#define VC_FX_GUEST 0x140   /* 512 bytes in the fxsave layout: the guest's MXCSR and */
#define FX_MXCSR 24         /*   XMM0-7 while the monitor runs (switch.S); the */
#define FX_XMM 160          /*   x87 part is unused, the x87 state stays in the CPU */
#define VC_HOT_SIZE 0x340
/* The soft TLB's tables (stlb.h) follow in the same mapping: 2^20 u64
 * entries each, indexed by linear page. */
#define VC_STLB_READ 0x1000
#define VC_STLB_WRITE 0x801000
#define VC_KSTLB_READ 0x1001000  /* ring 0's tables (stlb.h) */
#define VC_KSTLB_WRITE 0x1801000

/* The lookup table: JTAB_SETS sets of two 8-byte entries (-EIP, code
 * offset), entry 2 * set + way; translated code probes way 0, then way 1.
 * Two ways because one would let two hot EIPs of a set evict each other
 * at every turn (a third of fork+exec's misses were such conflicts). */
#define JTAB_SETS 65536u
#define JTAB_ENTRIES (2 * JTAB_SETS)

/* The set of an EIP: EIP plus the byte-swapped 9 * EIP, low 16 bits, so
 * that the high bits take part (kernel code 64 KiB apart would otherwise
 * collide); translated code computes it with lea, bswap, lea and movzwl,
 * which leave the flags alone (emit_lookup). */
#ifndef __ASSEMBLER__
#include <stdint.h>
static inline uint32_t jtab_set(uint32_t eip)
{
	return (eip + __builtin_bswap32(9u * eip)) & 0xFFFFu;
}
#endif

/* Exit arguments that are not stub offsets (stubs lie past the table). */
#define EXIT_ARG_SIGNAL 1u
#define EXIT_ARG_LOOKUP_MISS 2u
#define EXIT_ARG_SOFT_MISS 3u

/* EFLAGS bits. */
#define FL_CF 0x1u
#define FL_PF 0x4u
#define FL_AF 0x10u
#define FL_ZF 0x40u
#define FL_SF 0x80u
#define FL_TF 0x100u
#define FL_IF 0x200u
#define FL_DF 0x400u
#define FL_OF 0x800u
#define FL_IOPL 0x3000u
#define FL_NT 0x4000u
#define FL_RF 0x10000u
#define FL_VM 0x20000u
#define FL_AC 0x40000u
#define FL_ID 0x200000u
#define FL_STATUS (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)
/* Bits the host CPU holds for the guest while its code runs. */
#define FL_HOST_HELD (FL_STATUS | FL_DF | FL_NT | FL_ID)
/* Bits only the VCPU holds. */
#define FL_VSYS (FL_IOPL | FL_AC)

#endif
