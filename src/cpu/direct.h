/*
 * Direct execution of guest ring 3 (issue 14): the ring-3 host process.
 *
 * On a host that runs 32-bit code (compat32.h), guest user code can run on
 * the CPU in compatibility mode.  It cannot run in the monitor's process:
 * compatibility-mode code may far-jump to the host's 64-bit user code
 * selector (0x33, in every Linux process's GDT) and go on as 64-bit code
 * with the whole address space in reach, monitor included (the probe in
 * compat32.c leaves its 32-bit code exactly that way).  No segment limit
 * or page protection stops that.  So guest ring 3 runs in a process of its
 * own, the *stub*: bt86's own executable started again with
 * DIRECT_STUB_ARG, which keeps nothing but
 *  - its low 4 GiB, reserved whole and holding only what the monitor maps
 *    there: the current guest process's user view, pages of the guest-RAM
 *    memfd at guest linear addresses;
 *  - the control page shared with the monitor (struct direct_ctl);
 *  - an LDT of six flat or based segments, one per guest segment register;
 * and runs under a seccomp filter that lets a system call through only
 * from the one `syscall` instruction of its own handler (direct_stub.c),
 * and only futex, mmap below 4 GiB, modify_ldt, rt_sigreturn and exit;
 * every 32-bit entry (int 0x80, sysenter, syscall from compatibility mode)
 * becomes SIGSYS, which the stub reports as the guest's event; anything
 * else from anywhere else kills the stub.  Code that left compatibility
 * mode therefore reaches at most the guest memory it was given and the
 * stub's own memory, which holds nothing of the monitor's.
 *
 * Every exit of the guest's code is a host signal in the stub, whose
 * handler writes the guest's state to the control page, wakes the monitor
 * (futex) and waits for the next command; the monitor's answer is the state
 * to resume with, written back into the signal frame.
 *
 * Invariants:
 *  - The stub's low 4 GiB maps only what direct_map put there; the monitor
 *    maps there only pages a user access of the current guest process may
 *    make (their frames, their permissions).
 *  - The monitor trusts nothing it reads from the control page beyond what
 *    the guest itself could have set: it is guest state, and a guest that
 *    escaped compatibility mode may write any of it.
 */
#ifndef BT86_DIRECT_H
#define BT86_DIRECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* argv[1] of the stub's executable. */
#define DIRECT_STUB_ARG "--bt86-ring3-stub"

/* Guest segment registers in the stub: LDT entry DIRECT_LDT_FIRST + n
 * holds the descriptor for the register at index n (ES CS SS DS FS GS, the
 * VCPU's order).  They are the LDT's last six: every other entry is not
 * present, so a guest load of any other LDT selector faults (and is
 * emulated) instead of reaching one of these. */
#define DIRECT_SEGS 6
#define DIRECT_LDT_FIRST 8186u
#define DIRECT_SEL(n) ((uint16_t)((DIRECT_LDT_FIRST + (n)) << 3 | 7)) /* LDT, RPL 3 */

#define DIRECT_SEG_NULL 1u /* a data register holding the null selector: the stub loads 0 */
#define DIRECT_SEG_RO 2u   /* a read-only data or execute-only code segment */
#define DIRECT_SEG_DOWN 4u /* an expand-down data segment: valid offsets are above limit */

struct direct_seg {
	uint32_t base, limit; /* limit in bytes, scaled by its granularity */
	uint32_t flags;       /* DIRECT_SEG_* */
};

/* The selector the stub keeps in segment register n while `s` is its
 * segment: what an event reports there unless guest code loaded another. */
static inline uint16_t direct_sel(const struct direct_seg *s, unsigned n)
{
	return s->flags & DIRECT_SEG_NULL ? 0 : DIRECT_SEL(n);
}

struct direct_regs {
	uint32_t gpr[8]; /* EAX ECX EDX EBX ESP EBP ESI EDI */
	uint32_t eip, eflags;
	uint16_t sel[DIRECT_SEGS]; /* what the stub's segment registers held at the event (direct_sel) */
};

enum direct_event {
	DIRECT_EV_READY = 1, /* the stub is up (its first event) */
	DIRECT_EV_FAULT,     /* a processor exception: ev_sig, ev_trapno, ev_err, ev_cr2 */
	DIRECT_EV_SYSCALL32, /* a 32-bit host system-call entry, stopped: ev_ip, ev_nr (below) */
	DIRECT_EV_KICK,      /* the monitor's direct_kick */
	DIRECT_EV_ESCAPE,    /* a fault or trap with the host's 64-bit code selector */
	DIRECT_EV_DONE,      /* a DIRECT_MAP command was carried out */
};

/* ev_nr of a fast entry (sysenter, syscall) that the host kernel bounced
 * before its filter.  After a fast entry ev_ip is the host vDSO's, not the
 * guest's: those instructions lose EIP (and the host took EBP from the
 * word at ESP, as its vDSO convention has it). */
#define DIRECT_NR_UNKNOWN 0xFFFFFFFFu

enum direct_cmd { DIRECT_RUN = 1, DIRECT_MAP, DIRECT_QUIT };

#define DIRECT_MAPS 96
#define DIRECT_PROT_READ 1u
#define DIRECT_PROT_WRITE 2u
#define DIRECT_PROT_EXEC 4u

struct direct_map {
	uint32_t lin, len; /* page-aligned; len 0 never queued */
	uint32_t phys;     /* offset in the RAM memfd */
	uint32_t prot;     /* DIRECT_PROT_*, 0 = reserve (no access) */
};

enum { DIRECT_TURN_STUB = 1, DIRECT_TURN_MONITOR = 2 };
/* Polls of the turn word (with pause, ~126,000 cycles for all of them
 * here) before either side sleeps on it: a hand-over to a sleeping side
 * costs a wake-up across CPUs, ~45 us an exit against ~3.5 us when the
 * other side is still polling (architecture.md). */
#define DIRECT_SPIN 2000u

struct direct_ctl {
	uint32_t turn; /* futex word: whose move it is */
	uint32_t cmd;
	struct direct_regs r;
	struct direct_seg seg[DIRECT_SEGS];
	uint32_t seg_gen; /* bumped when seg[] changed: the stub rewrites its LDT */
	uint32_t nmaps;
	struct direct_map map[DIRECT_MAPS];
	/* Queued mappings the stub refused (not page-aligned, empty, outside
	 * its reservation) or the host failed: a monitor bug, never guest
	 * input. */
	uint32_t map_errors;
	/* Set by the stub before READY: cpuid faults in it (ARCH_SET_CPUID),
	 * so guest code's cpuid reaches the monitor. */
	uint32_t cpuid_faults;
	/* The event (stub to monitor). */
	uint32_t ev_kind, ev_sig, ev_trapno, ev_err, ev_cr2, ev_nr;
	uint64_t ev_ip;
	uint16_t ev_cs;
	/* x87/SSE state in fxsave's format, both ways. */
	uint8_t fx[512] __attribute__((aligned(64)));
};

struct direct {
	pid_t pid;
	int pidfd;
	struct direct_ctl *ctl;
	bool dead;
	uint32_t seg_gen;
};

struct gmem;
/* Starts the stub (before containment: it execs) on guest RAM's memfd,
 * reserving its low 4 GiB from mem's first mappable page.  Returns 0, or
 * -1 with the reason in err. */
int direct_start(struct direct *d, const struct gmem *mem, char *err, size_t errlen);
void direct_stop(struct direct *d);

/* Queues a mapping of [lin, lin+len) onto RAM at phys (prot 0: reserves the
 * range again), merged with the last queued one when it continues it.
 * Carried out before the next run, or now if the queue is full. */
int direct_map(struct direct *d, uint32_t lin, uint32_t len, uint32_t phys, uint32_t prot);
/* Sets the six segments' bases and limits for the next runs. */
void direct_set_segs(struct direct *d, const struct direct_seg seg[DIRECT_SEGS]);

/* Runs the guest from r (the stub loads fx as the x87/SSE state) until its
 * next event, which it returns (enum direct_event) with r and fx updated;
 * -1 when the stub is gone (err says why).  While it waits, an attention
 * word that turns nonzero kicks the stub (the guest's timer). */
int direct_run(struct direct *d, struct direct_regs *r, uint8_t fx[512], const volatile uint64_t *attn,
	       char *err, size_t errlen);

/* In the stub's executable: when argv says so, becomes the stub and never
 * returns; otherwise returns at once. */
void direct_stub_main(int argc, char **argv);

#endif
