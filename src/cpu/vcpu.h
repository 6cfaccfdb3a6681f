/*
 * The virtual CPU: architectural state of one IA-32 processor in protected
 * mode, and the host state that shadows it.
 *
 * The hot part (struct vcpu_hot) is what translated code and the switch code
 * reach through %r15; its layout is fixed by vcpu_abi.h.
 * Everything else is ordinary C state.
 *
 * Invariants:
 *  - seg[i] is the guest's segment-register cache (selector + hidden part);
 *    CS, DS, ES and SS are flat (a load of another base stops the run), and
 *    the FS and GS bases are also in hot->fs_base and hot->gs_base, which
 *    translated code holds in r9d and r12d (vcpu_abi.h).
 *  - Guest EFLAGS = (hot->eflags & FL_HOST_HELD) | hot->vif | hot->vsys | 2.
 */
#ifndef BT86_VCPU_H
#define BT86_VCPU_H

#include "../exit_status.h"
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace.h"
#include "vcpu_abi.h"

enum { R_EAX, R_ECX, R_EDX, R_EBX, R_ESP, R_EBP, R_ESI, R_EDI };
enum sreg { S_ES, S_CS, S_SS, S_DS, S_FS, S_GS, S_COUNT };

struct vcpu_hot {
	uint32_t gpr[8];
	uint32_t eip;
	uint32_t eflags;
	uint32_t vif;
	uint32_t vsys;
	uint32_t attn_irq;
	uint32_t attn_req;
	uint32_t irq_wait;
	uint32_t exit_arg;
	uint32_t target;
	uint32_t fs_base;
	uint64_t host_rsp;
	uint64_t exit_gate;
	uint64_t jtab;
	uint64_t lookup_hits;
	uint32_t gs_base;
	uint32_t entry_flags;
	uint32_t sel[6];
	uint8_t scratch_stack[VC_SCRATCH_TOP - VC_SEL - 24];
	uint64_t rcx_save;
	struct {
		uint32_t selneg, desc_at;
		uint64_t descneg;
		uint32_t base, null;
	} sreg_reload[SREG_RELOADS];
	uint64_t kwin_base, uwin_base;
	uint32_t cr2;
	uint32_t mon_mxcsr;
	uint32_t tsc_aux;
	uint32_t soft_lin, soft_at;
	uint64_t soft_budget;
	uint64_t one;
	uint8_t pad[VC_FX_GUEST - VC_ONE - 8];
	uint8_t fx_guest[512] __attribute__((aligned(16)));
} __attribute__((aligned(64)));

#define VCPU_HOT_CHECK(field, off) _Static_assert(offsetof(struct vcpu_hot, field) == (off), #field)
VCPU_HOT_CHECK(gpr, VC_GPR);
VCPU_HOT_CHECK(eip, VC_EIP);
VCPU_HOT_CHECK(eflags, VC_EFLAGS);
VCPU_HOT_CHECK(vif, VC_VIF);
VCPU_HOT_CHECK(vsys, VC_VSYS);
VCPU_HOT_CHECK(attn_irq, VC_ATTN_IRQ);
VCPU_HOT_CHECK(attn_req, VC_ATTN_REQ);
VCPU_HOT_CHECK(irq_wait, VC_IRQ_WAIT);
VCPU_HOT_CHECK(exit_arg, VC_EXIT_ARG);
VCPU_HOT_CHECK(target, VC_TARGET);
VCPU_HOT_CHECK(fs_base, VC_FS_BASE);
VCPU_HOT_CHECK(host_rsp, VC_HOST_RSP);
VCPU_HOT_CHECK(exit_gate, VC_EXIT_GATE);
VCPU_HOT_CHECK(jtab, VC_JTAB);
VCPU_HOT_CHECK(lookup_hits, VC_LOOKUP_HITS);
VCPU_HOT_CHECK(gs_base, VC_GS_BASE);
VCPU_HOT_CHECK(entry_flags, VC_ENTRY_FLAGS);
VCPU_HOT_CHECK(sel, VC_SEL);
VCPU_HOT_CHECK(rcx_save, VC_RCX_SAVE);
VCPU_HOT_CHECK(sreg_reload, VC_SREG_RELOAD);
VCPU_HOT_CHECK(sreg_reload[1].null, VC_SREG_RELOAD + SREG_RELOAD_SIZE + SREG_RELOAD_NULL);
VCPU_HOT_CHECK(kwin_base, VC_KWIN_BASE);
VCPU_HOT_CHECK(uwin_base, VC_UWIN_BASE);
VCPU_HOT_CHECK(cr2, VC_CR2);
VCPU_HOT_CHECK(fx_guest, VC_FX_GUEST);
VCPU_HOT_CHECK(mon_mxcsr, VC_MON_CTL);
VCPU_HOT_CHECK(tsc_aux, VC_TSC_AUX);
VCPU_HOT_CHECK(soft_lin, VC_SOFT_LIN);
VCPU_HOT_CHECK(soft_at, VC_SOFT_AT);
VCPU_HOT_CHECK(soft_budget, VC_SOFT_BUDGET);
VCPU_HOT_CHECK(one, VC_ONE);
_Static_assert(sizeof(struct vcpu_hot) <= VC_HOT_SIZE, "vcpu_hot too large");

/* A segment register's hidden part, as loaded from its descriptor. */
struct seg_cache {
	uint16_t sel;
	uint32_t base;
	uint32_t limit;   /* byte granular, already scaled by G */
	uint8_t type;     /* descriptor type field (4 bits) */
	bool s, p, db, g, valid;
	uint8_t dpl;
};

struct dtr {
	uint32_t base;
	uint16_t limit;
};

/* Monitor requests (hot->attn_req). */
#define ATTN_REQ_STOP 0x1u
#define ATTN_REQ_POLL 0x2u  /* a device deadline passed or input arrived */
#define ATTN_REQ_QUIT 0x4u  /* the user ended the run from the console */
#define ATTN_REQ_REFORM 0x8u /* ring-3 code changes form: its space outgrew the host mappings */
#define ATTN_REQ_DEBUG 0x10u /* the debugger connected or sent Ctrl-C (gdbstub.h) */
#define ATTN_REQ_MONITOR 0x20u /* a monitor command waits (monitor.h) */
/* Every request bit stays below 64 (vcpu_abi.h, VC_ATTN). */

struct board;
struct gdb;
struct monitor;
struct ring3;
struct tc;
struct gmem;
struct shadow;
struct stats;

/* An entry of the monitor's own TLB (vmem.c). */
struct vmem_tlb_entry {
	uint32_t key;   /* linear page << 2 | write << 1 | user, + 1: 0 is empty */
	uint32_t frame; /* physical page << 12 | VMEM_TLB_* flags */
};
#define VMEM_TLB_ENTRIES 64u
#define VMEM_TLB_GLOBAL 1u
#define VMEM_TLB_USER 2u /* a user page (U at every level): what SMEP tests */
#define VMEM_TLB_NX 4u   /* XD at some level under PAE with EFER.NXE: no fetch */
#define VMEM_TLB_SMAP 8u /* a user page while CR4.SMAP is set (the TLB empties at CR4 writes) */

/* A CR3 load's memo of the new space's instruction fetches by linear page,
 * for tc_jtab_switch (emulate.c's still_fetches): one walk a page.  An
 * entry holds for the load whose stamp it carries, so that no load has to
 * clear the table (clearing 12 KiB was a tenth of a context switch). */
#define VCPU_FETCH_MEMO 1024u
struct vcpu_fetch_memo {
	uint32_t stamp;
	uint32_t at[VCPU_FETCH_MEMO];   /* the stamp of the load that made the entry */
	uint32_t page[VCPU_FETCH_MEMO]; /* linear page */
	uint32_t frame[VCPU_FETCH_MEMO]; /* physical page | TC_JTAB_USER when user-accessible (and TC_JTAB_SOFT in a young space), or TC_JTAB_NEVER_KEEP */
};

struct vcpu {
	struct vcpu_hot *hot;
	uint32_t cr0, cr3, cr4; /* CR2 is in hot */
	uint32_t efer;          /* IA32_EFER: NXE alone (no SYSCALL, no long mode) */
	struct vmem_tlb_entry tlb[VMEM_TLB_ENTRIES];
	struct dtr gdtr, idtr;
	struct seg_cache seg[S_COUNT];
	/* The caches of hot->sreg_reload's loads: translated code that
	 * repeats one updates only hot->sel (and the FS base), and
	 * seg_sync_reloads brings seg[] up to date at the next exit. */
	struct seg_cache reloaded[SREG_RELOADS];
	struct seg_cache ldtr, tr;
	uint32_t dr[8];
	unsigned cpl;
	bool halted;
	/* An NMI was delivered and no iret has run since: another waits
	 * (SDM vol. 3 6.7.1). */
	bool nmi_blocked;
	/* Set when the run must end: exit status and the diagnostic, if any. */
	bool stopped;
	int exit_status;
	char stop_reason[256];
	/* Guest exception raised inside the monitor (vcpu_raise). */
	jmp_buf raise_env;
	unsigned pending_vec;
	bool pending_has_err;
	uint32_t pending_err;
	struct board *board;
	struct tc *tc;
	struct gmem *mem;
	struct shadow *shadow;
	struct stats *stats;
	struct trace trace;     /* -d, -D */
	struct vcpu_fetch_memo fetch_memo;
	uint64_t tsc_virtual;   /* guest-written TSC adjustment (0: the host's TSC) */
	/* IA32_SYSENTER_CS, _ESP and _EIP (MSRs 0x174-0x176): 16 and 32 bits
	 * wide, as a 32-bit processor (and QEMU's i386 target) keeps them. */
	uint16_t sysenter_cs;
	uint32_t sysenter_esp, sysenter_eip;
	uint64_t gs_base;       /* the host GS base last set (run.c's user_view_on) */
	/* A store into translated code is being single-stepped to completion. */
	bool smc_step;
	/* The guest's TF (FL_TF or 0), out of hot->eflags, which every exit
	 * overwrites with the host's flags; while it is set each block is one
	 * instruction (XMODE_STEP) and `step_due` asks the run loop for the
	 * #DB trap after it (vcpu_deliver cancels it: an exception, an int n
	 * or an interrupt replaced the instruction's end). */
	uint32_t tf, tf_seen; /* tf_seen: the run loop's last look */
	uint32_t vm;           /* EFLAGS.VM (FL_VM or 0): virtual-8086 mode, which the emulator runs */
	/* The emulator ran sti (IF set) or a load of SS: no interrupt before
	 * the next instruction ends (SDM vol. 3 6.8.3), which the run loop
	 * has the emulator run too, in translated code as well; translated
	 * code keeps its inline sti's shadow itself (translate.c).  `in_shadow`: the
	 * instruction running is in one, and starts none of its own (only the
	 * first of such instructions in a row is sure to, SDM; QEMU's choice). */
	bool irq_shadow, in_shadow;
	bool step_due;
	/* The GDB stub (gdbstub.h), NULL without -s or -gdb, and the run
	 * loop's state for it. */
	struct gdb *gdb;
	/* The monitor (monitor.h), which runs its commands on this thread. */
	struct monitor *monitor;
	/* Direct execution of ring 3 (ring3.h), NULL when ring 3 is translated. */
	struct ring3 *ring3;
	struct {
		bool resumed;  /* the debugger continued or stepped: report the next stop */
		bool step;     /* step at the next block entry */
		bool stepping; /* a block was entered with the trap flag for a step */
		bool arrived;  /* that step's trap flag reached the block */
		uint32_t step_eip; /* where that step started */
		bool skipping; /* the next block entry does not stop at a breakpoint at skip */
		uint32_t skip; /* the EIP the debugger resumed at */
		bool hit;      /* an access fired a watchpoint (vmem.c): stop after the instruction */
		uint32_t hit_addr; /* that watchpoint's address and kind (watch.h) */
		unsigned hit_kind;
	} dbg;
	/* The guest's last #PF from translated code, whose retry the iret
	 * ending its handler maps ahead (vcpu_prefault_retry). */
	struct {
		uint32_t lin;
		uint8_t window;
		bool write, pending;
		bool soft; /* through the soft TLB: the retry fills its entry */
	} pf_retry;
	/* A ring-0 instruction just touched a user page through the kernel
	 * window under another CR3 than the first time (cand: the last few
	 * such instructions and the CR3 each was seen under), or a page that
	 * churns (shadow_churning): the run loop marks it (translate.h, with
	 * `kind`) and retranslates its page, so that it uses the kernel views,
	 * or ring 0's soft TLB, from then on.  `smap`: it touched the page with
	 * EFLAGS.AC set under SMAP and was not run; when it was marked already
	 * (an instruction the kernel views cannot serve) the emulator runs it. */
	struct {
		uint32_t eip, page;
		bool pending, smap;
		unsigned kind; /* XLATE_SITE_* */
		uint32_t cand_eip[64], cand_cr3[64];
	} uaccess;
};

/* Ends the run: status is the process exit status, reason a one-line
 * diagnostic or NULL for a clean exit. */
void vcpu_stop(struct vcpu *v, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* CR0 bits. */
#define CR0_PE 0x1u
#define CR0_MP 0x2u
#define CR0_EM 0x4u
#define CR0_TS 0x8u
#define CR0_ET 0x10u
#define CR0_NE 0x20u
#define CR0_WP 0x10000u
#define CR0_AM 0x40000u
#define CR0_NW 0x20000000u
#define CR0_CD 0x40000000u
#define CR0_PG 0x80000000u
#define CR4_DE 0x8u
#define CR4_UMIP 0x800u
#define CR4_SMEP 0x100000u

/* The bits of DR6 and DR7 that always read as 1 (their reset values). */
#define DR6_FIXED_1 0xFFFF0FF0u
#define DR6_BS 0x4000u /* single step */
#define DR7_FIXED_1 0x400u

/* Exception vectors. */
enum {
	EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5, EXC_UD = 6,
	EXC_NM = 7, EXC_DF = 8, EXC_TS = 10, EXC_NP = 11, EXC_SS = 12, EXC_GP = 13,
	EXC_PF = 14, EXC_MF = 16, EXC_AC = 17, EXC_MC = 18, EXC_XM = 19,
};

static inline uint32_t vcpu_eflags(const struct vcpu *v)
{
	return (v->hot->eflags & FL_HOST_HELD) | v->tf | v->vm | v->hot->vif | v->hot->vsys | 0x2u;
}

/* Sets every EFLAGS bit the guest can change; host-held bits go to hot->eflags. */
static inline void vcpu_set_eflags(struct vcpu *v, uint32_t fl)
{
	v->hot->eflags = fl & FL_HOST_HELD;
	v->tf = fl & FL_TF;
	v->vm = fl & FL_VM;
	v->hot->vif = fl & FL_IF;
	v->hot->vsys = fl & FL_VSYS;
}

/* The guest's x87 and SSE state in the fxsave layout, for the debugger
 * and the monitor: the x87 part stays in the CPU while the monitor runs
 * (vcpu_abi.h), MXCSR and XMM0-7 come from fx_guest.  On the VCPU thread. */
struct vcpu_fx {
	uint16_t fcw, fsw;
	uint8_t ftw, pad0;
	uint16_t fop;
	uint32_t fip;
	uint16_t fcs, pad1;
	uint32_t fdp;
	uint16_t fds, pad2;
	uint32_t mxcsr, mxcsr_mask;
	uint8_t st[8][16];
	uint8_t xmm[8][16];
	uint8_t rest[224];
} __attribute__((aligned(16)));
void vcpu_fx_read(const struct vcpu *v, struct vcpu_fx *fx);
/* Makes `fx` the guest's x87 and SSE state (the monitor's MXCSR stays). */
void vcpu_fx_write(struct vcpu *v, const struct vcpu_fx *fx);

#endif
