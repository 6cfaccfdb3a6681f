/*
 * Statistics: part of the product.  Counters are plain integers bumped by the
 * module that sees the event; they are cheap and always on.  Counting inside
 * translated code is limited to what needs no flag-changing instruction (the
 * inline lookup hits, kept in r13); everything else is counted by the monitor.
 */
#ifndef BT86_STATS_H
#define BT86_STATS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum exit_reason {
	EXIT_CHAIN,        /* direct branch to a block not yet linked */
	EXIT_LOOKUP_MISS,  /* indirect branch missed the inline table */
	EXIT_EMULATE,      /* sensitive instruction completed by the emulator */
	EXIT_ATTENTION,    /* block entry saw the attention word */
	EXIT_STI,          /* sti/popf enabled interrupts with one pending */
	EXIT_SIGNAL,       /* a host signal stopped guest code */
	EXIT_SOFT_MISS,    /* a soft-TLB access found no entry (stlb.h) */
	EXIT_DIVIDE_ERROR, /* a div or idiv's test found it would raise #DE */
	EXIT_PORT,         /* in or out at CPL 0, done without the emulator */
	EXIT_INVLPG,       /* invlpg at CPL 0, done without the emulator */
	EXIT_INT,          /* int n or int3, delivered without the emulator's decode (emu_system); */
	EXIT_IRET,         /*   iretd, */
	EXIT_SYSENTER,     /*   sysenter, */
	EXIT_SYSEXIT,      /*   sysexit: in enum emu_sys's order */
	EXIT_REASONS,
};

enum inval_cause {
	INVAL_GUEST_WRITE,  /* guest store into a page holding translated code */
	INVAL_MONITOR_WRITE, /* emulator, device or exception delivery wrote code */
	INVAL_UACCESS,      /* retranslated for an instruction found to touch user pages */
	INVAL_KSOFT,        /* retranslated for an instruction found to touch churning pages */
	INVAL_CAUSES,
};

#define STATS_MNEMONICS 2048 /* more than Zydis has mnemonics */

enum signal_kind { SIGK_SEGV, SIGK_BUS, SIGK_FPE, SIGK_ILL, SIGK_TRAP, SIGK_KINDS };

struct stats {
	const char *ring3;         /* how guest ring 3 runs: "direct", "translated" (+ " (auto)") */
	bool direct_possible;      /* this host runs 32-bit code (compat32.h) */
	char direct_why[192];      /* what the probe saw */
	uint64_t blocks;           /* blocks translated */
	uint64_t tc_bytes;         /* host code bytes emitted */
	uint64_t guest_insns;      /* guest instructions translated */
	uint64_t insn_verbatim;    /* copied unchanged but for address-size fix-ups */
	uint64_t insn_retargeted;  /* direct jmp/jcc/loop: same instruction, new target */
	uint64_t insn_rewritten;   /* replaced by an inline sequence */
	uint64_t insn_callout;     /* translated as an exit to the emulator */
	uint64_t insn_emulated;    /* executed by the one-instruction emulator */
	uint64_t insn_interpreted; /* of them, run so because no translation could (real mode, 16-bit or based segments) */
	uint64_t emulated_decode_hits; /* of those, decoded from the decode cache */
	uint64_t lookup_inline_hits;
	uint64_t lookup_inline_misses;
	uint64_t lookup_hash_hits;
	uint64_t lookup_hash_misses;
	uint64_t lookup_restored;      /* entries put back from the victim cache (tc_jtab_unpark) */
	uint64_t chains_made;
	uint64_t chains_broken;
	uint64_t invalidations[INVAL_CAUSES];
	uint64_t blocks_invalidated;
	uint64_t flushes;
	uint64_t exits[EXIT_REASONS];
	uint64_t signals[SIGK_KINDS];
	uint64_t guest_exceptions;  /* delivered through the guest IDT */
	uint64_t guest_interrupts;
	uint64_t timer_arms;        /* host timer_settime calls for the devices' next deadline */
	uint64_t idle_waits, idle_spins; /* hlt waits for an interrupt, and of them those that did not sleep */
	/* Where the time went (TSC cycles): in translated guest code, and all
	 * of the run.  There is no direct mode on this host: everything the
	 * guest runs is translated. */
	uint64_t cycles_guest, cycles_total;
	uint64_t cycles_direct; /* in direct_run: guest ring 3 in the stub, hand-overs included (ring3.c) */
	/* Shadow paging. */
	uint64_t hidden_faults;       /* shadow fills */
	uint64_t shadow_runs;         /* of them, 4 MiB pages mapped with one mmap */
	uint64_t guest_page_faults;   /* #PF delivered to the guest */
	uint64_t prefaults;           /* pages mapped at the iret before a #PF's retry */
	uint64_t stlb_fills;          /* soft TLB entries made (stlb.h) */
	uint64_t stlb_dropped;        /* entries CR3 loads dropped unchecked (STLB_PROBE_TURNS) */
	uint64_t stlb_kernel_fills;   /* and ring 0's */
	uint64_t ksoft_sites;         /* ring-0 instructions marked to use ring 0's soft TLB */
	uint64_t stlb_promotions;     /* address spaces gone direct */
	uint64_t adopted_runs, adopted_pages; /* soft-TLB runs mapped into the user view as a space went direct */
	uint64_t stlb_outgrown;       /* address spaces whose user view filled the host mappings */
	uint64_t shadow_kept;         /* non-global pages a CR3 load found still mapped alike */
	uint64_t uaccess_sites;       /* ring-0 instructions marked to use the kernel views */
	uint64_t shadow_flushes[3];   /* cr3, mode, capacity: enum shadow_flush_cause */
	uint64_t shadow_mappings, shadow_mappings_peak;
	/* Instructions the emulator executed, by Zydis mnemonic. */
	uint64_t emulated_by[STATS_MNEMONICS];
	/* Direct execution of ring 3 (ring3.h): runs handed to the ring-3 host
	 * process, and how each ended. */
	uint64_t direct_runs;
	uint64_t direct_fills;        /* a #PF the monitor answered with a mapping */
	uint64_t direct_guest_pf;     /* the guest's own #PF */
	uint64_t direct_emulated;     /* a fault whose instruction the emulator ran (#GP: int n, cpuid, ...) */
	uint64_t direct_syscalls;     /* a 32-bit host system-call entry (int 0x80), run by the emulator */
	uint64_t direct_kicks;        /* stopped for an interrupt or a monitor request */
	uint64_t direct_reloads;      /* guest code had loaded a segment register from the host's GDT */
	uint64_t direct_flushes;      /* the stub's view emptied: a run in another space, paging change, or full */
	uint64_t direct_kept;         /* pages the view kept across CR3 loads, checked against the tables (ring3.h) */
	uint64_t direct_unsafe;       /* fetches from pages holding bytes the host would run as its own, run translated */
	uint64_t direct_demotions;    /* address spaces sent back to translated ring 3 for short runs (ring3.h) */
	uint64_t direct_declined;     /* waits in translated ring 3 renewed for short turns, no direct window tried (ring3.h) */
	uint64_t direct_instructions; /* retired in the stub (a host counter), when the host lets it count */
	bool direct_counted;
	/* Executed instructions of blocks flushed so far (counting only). */
	uint64_t exec_verbatim, exec_retargeted, exec_rewritten, exec_callout;
};

extern const char *const stats_exit_names[EXIT_REASONS];

struct tc;
/* Writes the text report (and the `hot` hottest blocks, when non-zero). */
void stats_print(const struct stats *s, const struct tc *tc, unsigned hot, FILE *out);
/* Writes the JSON report to f and closes it; returns 0 or -1 with errno set. */
int stats_write_json(const struct stats *s, const struct tc *tc, unsigned hot, FILE *f);

#endif
