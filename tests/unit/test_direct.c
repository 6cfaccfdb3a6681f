/* The ring-3 host process (cpu/direct.h): 32-bit code run in the stub
 * reports each exit with the exact guest state, and every way out of
 * compatibility mode a guest might try (int 0x80, sysenter, syscall, a far
 * jump to the host's 64-bit code selector) becomes an event or ends the
 * stub, never a host system call.  On a host that cannot run 32-bit code
 * (compat32.h) there is nothing to run: the tests say so and pass. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cpu/compat32.h"
#include "cpu/contain.h"
#include "cpu/direct.h"
#include "unit.h"

#define CODE_LIN 0x400000u
#define DATA_LIN 0x500000u
#define RO_LIN 0x700000u
#define STACK_LIN 0x800000u
#define CODE_PHYS 0x10000u
#define DATA_PHYS 0x11000u
#define RO_PHYS 0x12000u
#define STACK_PHYS 0x13000u

static struct gmem mem;
static struct direct d;
static struct direct_regs r;
static uint8_t fx[512];
static char err[256];

static bool runs_32bit_code(void)
{
	char why[256];
	if (compat32_probe(why, sizeof why))
		return true;
	fprintf(stderr, "direct: skipped, this host runs no 32-bit code: %s\n", why);
	return false;
}

/* The guest state every test starts from: CPL 3 code at CODE_LIN, a
 * stack, the x87 and SSE state after fninit and a reset. */
static void initial_state(void)
{
	memset(&r, 0, sizeof r);
	r.eip = CODE_LIN;
	r.eflags = 0x202;
	r.gpr[R_ESP] = STACK_LIN + 4096;
	memset(fx, 0, sizeof fx);
	fx[0] = 0x7F, fx[1] = 0x03; /* FCW 0x037F */
	uint32_t mxcsr = 0x1F80;
	memcpy(fx + 24, &mxcsr, 4);
}

static bool start(void)
{
	if (!runs_32bit_code())
		return false;
	ck_assert_msg(gmem_init(&mem, 16u << 20, err, sizeof err) == 0, "%s", err);
	ck_assert_msg(direct_start(&d, &mem, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(direct_map(&d, CODE_LIN, 4096, CODE_PHYS, DIRECT_PROT_READ | DIRECT_PROT_EXEC), 0);
	ck_assert_int_eq(direct_map(&d, DATA_LIN, 4096, DATA_PHYS, DIRECT_PROT_READ | DIRECT_PROT_WRITE), 0);
	ck_assert_int_eq(direct_map(&d, RO_LIN, 4096, RO_PHYS, DIRECT_PROT_READ), 0);
	ck_assert_int_eq(direct_map(&d, STACK_LIN, 4096, STACK_PHYS, DIRECT_PROT_READ | DIRECT_PROT_WRITE), 0);
	initial_state();
	return true;
}

static int run(const void *code, size_t len, const volatile uint64_t *attn)
{
	memcpy(mem.ram + CODE_PHYS, code, len);
	return direct_run(&d, &r, fx, attn, err, sizeof err);
}

/* The stub is still there and takes the next run: hlt at CPL 3, #GP. */
static void still_serves(void)
{
	static const uint8_t hlt = 0xF4;
	r.eip = CODE_LIN + 64;
	memcpy(mem.ram + CODE_PHYS + 64, &hlt, 1);
	ck_assert_int_eq(direct_run(&d, &r, fx, NULL, err, sizeof err), DIRECT_EV_FAULT);
	ck_assert_uint_eq(d.ctl->ev_trapno, 13);
	ck_assert_uint_eq(r.eip, CODE_LIN + 64);
}

START_TEST(test_runs_32bit_code)
{
	if (!start())
		return;
	static const uint8_t code[] = {
		0xB8, 43, 0, 0, 0,                  /* mov $43, %eax */
		0x48,                               /* dec %eax (a REX prefix in 64-bit mode) */
		0x89, 0xC3,                         /* mov %eax, %ebx */
		0x89, 0x1D, 0x00, 0x00, 0x50, 0x00, /* mov %ebx, DATA_LIN */
		0xF4,                               /* hlt: #GP(0) at CPL 3 */
	};
	ck_assert_int_eq(run(code, sizeof code, NULL), DIRECT_EV_FAULT);
	ck_assert_uint_eq(d.ctl->ev_trapno, 13);
	ck_assert_uint_eq(d.ctl->ev_err, 0);
	ck_assert_uint_eq(r.eip, CODE_LIN + 14);
	ck_assert_uint_eq(r.gpr[R_EAX], 42);
	ck_assert_uint_eq(r.gpr[R_EBX], 42);
	ck_assert_uint_eq(mem.ram[DATA_PHYS], 42);
	ck_assert_uint_eq(r.sel[S_CS], DIRECT_SEL(S_CS));
	ck_assert_uint_eq(r.sel[S_DS], DIRECT_SEL(S_DS));
	direct_stop(&d);
}
END_TEST

START_TEST(test_page_faults)
{
	if (!start())
		return;
	static const uint8_t absent[] = {0xA1, 0x00, 0x00, 0x60, 0x00}; /* mov 0x600000, %eax */
	ck_assert_int_eq(run(absent, sizeof absent, NULL), DIRECT_EV_FAULT);
	ck_assert_uint_eq(d.ctl->ev_trapno, 14);
	ck_assert_uint_eq(d.ctl->ev_cr2, 0x600000);
	ck_assert_uint_eq(d.ctl->ev_err & 7, 4); /* user, read, not present */
	ck_assert_uint_eq(r.eip, CODE_LIN);
	/* movl $1, RO_LIN: a write to a read-only page */
	static const uint8_t ro[] = {0xC7, 0x05, 0x00, 0x00, 0x70, 0x00, 1, 0, 0, 0};
	r.eip = CODE_LIN;
	ck_assert_int_eq(run(ro, sizeof ro, NULL), DIRECT_EV_FAULT);
	ck_assert_uint_eq(d.ctl->ev_trapno, 14);
	ck_assert_uint_eq(d.ctl->ev_cr2, RO_LIN);
	ck_assert_uint_eq(d.ctl->ev_err & 6, 6); /* user write (P is the host's) */
	/* the page becomes writable: the retry completes */
	ck_assert_int_eq(direct_map(&d, RO_LIN, 4096, RO_PHYS, DIRECT_PROT_READ | DIRECT_PROT_WRITE), 0);
	static const uint8_t ro_then_hlt[] = {0xC7, 0x05, 0x00, 0x00, 0x70, 0x00, 1, 0, 0, 0, 0xF4};
	ck_assert_int_eq(run(ro_then_hlt, sizeof ro_then_hlt, NULL), DIRECT_EV_FAULT);
	ck_assert_uint_eq(d.ctl->ev_trapno, 13);
	ck_assert_uint_eq(mem.ram[RO_PHYS], 1);
	direct_stop(&d);
}
END_TEST

START_TEST(test_segment_bases)
{
	if (!start())
		return;
	struct direct_seg seg[DIRECT_SEGS];
	for (unsigned i = 0; i < DIRECT_SEGS; i++)
		seg[i] = (struct direct_seg){0, 0xFFFFFFFFu, 0};
	seg[S_FS].base = DATA_LIN - 0x1000;
	seg[S_GS].base = DATA_LIN + 0x10;
	direct_set_segs(&d, seg);
	uint32_t a = 0xCAFEF00D, b = 0x12345678;
	memcpy(mem.ram + DATA_PHYS + 4, &a, 4);
	memcpy(mem.ram + DATA_PHYS + 0x18, &b, 4);
	static const uint8_t code[] = {
		0x64, 0xA1, 0x04, 0x10, 0x00, 0x00,       /* mov %fs:0x1004, %eax */
		0x65, 0x8B, 0x1D, 0x08, 0x00, 0x00, 0x00, /* mov %gs:8, %ebx */
		0xF4,
	};
	ck_assert_int_eq(run(code, sizeof code, NULL), DIRECT_EV_FAULT);
	ck_assert_uint_eq(d.ctl->ev_trapno, 13);
	ck_assert_uint_eq(r.gpr[R_EAX], a);
	ck_assert_uint_eq(r.gpr[R_EBX], b);
	ck_assert_uint_eq(r.sel[S_FS], DIRECT_SEL(S_FS));
	direct_stop(&d);
}
END_TEST

/* A null data segment, a read-only one, and a guest load of an LDT
 * selector other than the stub's: each faults at its instruction. */
START_TEST(test_segment_kinds)
{
	if (!start())
		return;
	struct direct_seg seg[DIRECT_SEGS];
	for (unsigned i = 0; i < DIRECT_SEGS; i++)
		seg[i] = (struct direct_seg){0, 0xFFFFFFFFu, 0};
	seg[S_FS].flags = DIRECT_SEG_NULL;
	seg[S_ES].flags = DIRECT_SEG_RO;
	direct_set_segs(&d, seg);
	static const uint8_t code[] = {
		0x26, 0xA1, 0x00, 0x00, 0x50, 0x00,       /* mov %es:DATA_LIN, %eax (read: allowed) */
		0x26, 0xA3, 0x00, 0x00, 0x50, 0x00,       /* mov %eax, %es:DATA_LIN: #GP(0) */
	};
	uint32_t v = 0x5A5A5A5A, got;
	memcpy(mem.ram + DATA_PHYS, &v, 4);
	memset(mem.ram + CODE_PHYS + sizeof code, 0xF4, 16); /* hlt after it */
	ck_assert_int_eq(run(code, sizeof code, NULL), DIRECT_EV_FAULT);
	ck_assert_uint_eq(r.gpr[R_EAX], v);
	ck_assert_uint_eq(r.sel[S_FS], 0);
	if (r.eip == CODE_LIN + sizeof code) {
		/* The host performed the store: QEMU's TCG, as the nested test
		 * runs it, checks no data segment's type or nullness in
		 * compatibility mode (architecture.md).  What it does is the
		 * host's, not the stub's. */
		memcpy(&got, mem.ram + DATA_PHYS, 4);
		ck_assert_uint_eq(got, v);
		fprintf(stderr, "direct: this host does not check data segment types (QEMU's TCG?)\n");
	} else {
		ck_assert_uint_eq(d.ctl->ev_trapno, 13);
		ck_assert_uint_eq(r.eip, CODE_LIN + 6);
		ck_assert_uint_eq(r.sel[S_ES], DIRECT_SEL(S_ES));
		static const uint8_t null_fs[] = {0x64, 0xA1, 0x00, 0x00, 0x50, 0x00}; /* mov %fs:DATA_LIN, %eax */
		r.eip = CODE_LIN;
		ck_assert_int_eq(run(null_fs, sizeof null_fs, NULL), DIRECT_EV_FAULT);
		ck_assert_uint_eq(d.ctl->ev_trapno, 13);
		ck_assert_uint_eq(r.eip, CODE_LIN);
	}
	/* mov $0xF, %ax; mov %ax, %ds: LDT entry 1 is empty (#GP(0xC), a system descriptor of type 0) */
	static const uint8_t ldt_load[] = {0x66, 0xB8, 0x0F, 0x00, 0x8E, 0xD8};
	r.eip = CODE_LIN;
	ck_assert_int_eq(run(ldt_load, sizeof ldt_load, NULL), DIRECT_EV_FAULT);
	ck_assert_uint_eq(d.ctl->ev_trapno, 13);
	ck_assert_uint_eq(d.ctl->ev_err, 0x0C);
	ck_assert_uint_eq(r.eip, CODE_LIN + 4);
	ck_assert_uint_eq(r.sel[S_DS], DIRECT_SEL(S_DS));
	direct_stop(&d);
}
END_TEST

START_TEST(test_fpu_and_flags_cross)
{
	if (!start())
		return;
	uint32_t x0 = 0x11223344;
	memcpy(fx + 160, &x0, 4); /* XMM0 */
	r.eflags = 0x202 | 0x400 | 1; /* DF, CF */
	static const uint8_t code[] = {
		0x66, 0x0F, 0x7E, 0xC0, /* movd %xmm0, %eax */
		0xB9, 7, 0, 0, 0,       /* mov $7, %ecx */
		0x66, 0x0F, 0x6E, 0xC9, /* movd %ecx, %xmm1 */
		0xD9, 0xE8,             /* fld1 */
		0x9C, 0x5A,             /* pushf; pop %edx */
		0xF4,
	};
	ck_assert_int_eq(run(code, sizeof code, NULL), DIRECT_EV_FAULT);
	ck_assert_uint_eq(r.gpr[R_EAX], x0);
	uint32_t x1;
	memcpy(&x1, fx + 176, 4);
	ck_assert_uint_eq(x1, 7);
	uint16_t fsw;
	memcpy(&fsw, fx + 2, 2);
	ck_assert_uint_eq((fsw >> 11) & 7, 7); /* one value pushed */
	ck_assert_uint_eq(r.gpr[R_EDX] & 0x401, 0x401);
	ck_assert_uint_eq(r.eflags & 0x401, 0x401);
	direct_stop(&d);
}
END_TEST

START_TEST(test_int80_is_an_event)
{
	if (!start())
		return;
	static const uint8_t code[] = {
		0xB8, 252, 0, 0, 0, /* mov $252 (i386 exit_group), %eax */
		0xBB, 99, 0, 0, 0,  /* mov $99, %ebx */
		0xCD, 0x80,         /* int $0x80 */
		0xF4,
	};
	ck_assert_int_eq(run(code, sizeof code, NULL), DIRECT_EV_SYSCALL32);
	ck_assert_uint_eq(d.ctl->ev_nr, 252);
	ck_assert_uint_eq(d.ctl->ev_ip, CODE_LIN + 12);
	ck_assert_uint_eq(r.gpr[R_EAX], 252);
	still_serves();
	direct_stop(&d);
}
END_TEST

/* sysenter and syscall from compatibility mode: one of them reaches the
 * host kernel's 32-bit entry (which one depends on the vendor), the other
 * is #UD; either way the guest's, and the stub goes on. */
static void fast_entry(uint8_t second)
{
	uint8_t code[] = {0xB8, 252, 0, 0, 0, 0xBB, 99, 0, 0, 0, 0x0F, second, 0xF4};
	int ev = run(code, sizeof code, NULL);
	ck_assert_msg(ev == DIRECT_EV_SYSCALL32 || (ev == DIRECT_EV_FAULT && d.ctl->ev_trapno == 6),
		      "event %d trap %u cs %#x ip %#llx sig %u: %s", ev, d.ctl->ev_trapno, d.ctl->ev_cs,
		      (unsigned long long)d.ctl->ev_ip, d.ctl->ev_sig, err);
	if (ev == DIRECT_EV_SYSCALL32)
		ck_assert(d.ctl->ev_nr == 252 || d.ctl->ev_nr == DIRECT_NR_UNKNOWN);
	else
		ck_assert_uint_eq(r.eip, CODE_LIN + 10);
	still_serves();
}

START_TEST(test_sysenter_is_an_event)
{
	if (!start())
		return;
	fast_entry(0x34);
	r.gpr[R_ESP] = STACK_LIN + 4092; /* the host's entry reads the word at ESP */
	r.eip = CODE_LIN;
	fast_entry(0x34);
	direct_stop(&d);
}
END_TEST

START_TEST(test_syscall_is_an_event)
{
	if (!start())
		return;
	fast_entry(0x05);
	r.gpr[R_ESP] = STACK_LIN + 4092;
	r.eip = CODE_LIN;
	fast_entry(0x05);
	direct_stop(&d);
}
END_TEST

/* ljmp $0x33, $CODE_LIN+16: 64-bit code from then on. */
static const uint8_t to_64bit[] = {0xEA, 0x10, 0x00, 0x40, 0x00, 0x33, 0x00};

/* A far jump to 64-bit code that calls exit_group(99): the host system
 * call a guest would make once out of compatibility mode. */
static void escape_and_exit(uint8_t code[32])
{
	static const uint8_t exit64[] = {0xB8, 231, 0, 0, 0, 0xBF, 99, 0, 0, 0, 0x0F, 0x05};
	memset(code, 0, 32);
	memcpy(code, to_64bit, sizeof to_64bit);
	memcpy(code + 16, exit64, sizeof exit64);
}

START_TEST(test_escape_syscall_kills_stub)
{
	if (!start())
		return;
	uint8_t code[32];
	escape_and_exit(code);
	ck_assert_int_eq(run(code, sizeof code, NULL), -1);
	ck_assert_msg(strstr(err, "filter refuses"), "%s", err);
	ck_assert(d.dead);
	direct_stop(&d);
}
END_TEST

START_TEST(test_escape_fault_is_seen)
{
	if (!start())
		return;
	uint8_t code[32] = {0};
	memcpy(code, to_64bit, sizeof to_64bit);
	code[16] = 0x0F, code[17] = 0x0B; /* ud2 */
	ck_assert_int_eq(run(code, sizeof code, NULL), DIRECT_EV_ESCAPE);
	ck_assert_uint_eq(d.ctl->ev_cs, 0x33);
	direct_stop(&d);
}
END_TEST

/* More mappings than the queue holds: the monitor carries the full queue
 * out (DIRECT_MAP) and goes on; every page lands where it was put. */
START_TEST(test_mapping_queue_overflows)
{
	if (!start())
		return;
	const uint32_t lin = 0x1000000, pages = 3 * DIRECT_MAPS;
	for (uint32_t i = 0; i < pages; i++) {
		uint32_t phys = 0x100000 + (pages - 1 - i) * 4096; /* frames in reverse order */
		memcpy(mem.ram + phys, &i, 4);
		ck_assert_int_eq(direct_map(&d, lin + i * 4096, 4096, phys, DIRECT_PROT_READ), 0);
	}
	static const uint8_t code[] = {
		0xA1, 0x00, 0x00, 0x00, 0x01,       /* mov lin, %eax */
		0x8B, 0x1D, 0x00, 0xF0, 0x11, 0x01, /* mov lin + 287 pages, %ebx */
		0xF4,
	};
	ck_assert_int_eq(run(code, sizeof code, NULL), DIRECT_EV_FAULT);
	ck_assert_uint_eq(d.ctl->ev_trapno, 13);
	ck_assert_uint_eq(r.gpr[R_EAX], 0);
	ck_assert_uint_eq(r.gpr[R_EBX], pages - 1);
	ck_assert_uint_eq(d.ctl->map_errors, 0);
	direct_stop(&d);
}
END_TEST

/* Mappings the stub must refuse: below its reservation (host page 0 and
 * up to mmap_min_addr), running past 4 GiB, unaligned, empty.  Each is
 * counted, none lands, and the stub goes on with the good ones. */
START_TEST(test_bad_mappings_are_refused)
{
	if (!start())
		return;
	ck_assert_int_eq(direct_map(&d, 0, 4096, DATA_PHYS, DIRECT_PROT_READ), 0);
	ck_assert_int_eq(direct_map(&d, 0xFFFFF000u, 8192, DATA_PHYS, DIRECT_PROT_READ), 0);
	ck_assert_int_eq(direct_map(&d, 0x600800, 4096, DATA_PHYS, DIRECT_PROT_READ), 0);
	ck_assert_int_eq(direct_map(&d, 0x600000, 0, DATA_PHYS, DIRECT_PROT_READ), 0);
	static const uint8_t code[] = {0xA1, 0x00, 0x00, 0x60, 0x00}; /* mov 0x600000, %eax */
	ck_assert_int_eq(run(code, sizeof code, NULL), DIRECT_EV_FAULT);
	ck_assert_uint_eq(d.ctl->ev_trapno, 14); /* nothing landed at 0x600000 */
	ck_assert_uint_eq(d.ctl->map_errors, 4);
	still_serves();
	direct_stop(&d);
}
END_TEST

START_TEST(test_kick_stops_a_loop)
{
	if (!start())
		return;
	static const uint8_t loop[] = {0xEB, 0xFE}; /* jmp . */
	static volatile uint64_t attn = 1;
	ck_assert_int_eq(run(loop, sizeof loop, &attn), DIRECT_EV_KICK);
	ck_assert_uint_eq(r.eip, CODE_LIN);
	direct_stop(&d);
}
END_TEST

/* After containment the monitor still drives the stub, and still learns
 * how it ended. */
START_TEST(test_contained_monitor_drives_stub)
{
	if (!runs_32bit_code())
		_exit(0);
	static struct machine m;
	machine_init(&m, 0);
	ck_assert_msg(direct_start(&d, &m.mem, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(direct_map(&d, CODE_LIN, 4096, CODE_PHYS, DIRECT_PROT_READ | DIRECT_PROT_EXEC), 0);
	ck_assert_msg(contain_install(&m.tc, err, sizeof err) == 0, "%s", err);
	initial_state();
	uint8_t code[32] = {0xF4};
	memcpy(m.mem.ram + CODE_PHYS, code, 1);
	ck_assert_int_eq(direct_run(&d, &r, fx, NULL, err, sizeof err), DIRECT_EV_FAULT);
	escape_and_exit(code);
	memcpy(m.mem.ram + CODE_PHYS, code, sizeof code);
	r.eip = CODE_LIN;
	ck_assert_int_eq(direct_run(&d, &r, fx, NULL, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "filter refuses"), "%s", err);
	_exit(0); /* before Check's own bookkeeping, which the filter refuses */
}
END_TEST

Suite *direct_suite(void)
{
	Suite *s = suite_create("direct");
	TCase *t = tcase_create("stub");
	tcase_add_test(t, test_runs_32bit_code);
	tcase_add_test(t, test_page_faults);
	tcase_add_test(t, test_segment_bases);
	tcase_add_test(t, test_segment_kinds);
	tcase_add_test(t, test_fpu_and_flags_cross);
	tcase_add_test(t, test_int80_is_an_event);
	tcase_add_test(t, test_sysenter_is_an_event);
	tcase_add_test(t, test_syscall_is_an_event);
	tcase_add_test(t, test_escape_syscall_kills_stub);
	tcase_add_test(t, test_escape_fault_is_seen);
	tcase_add_test(t, test_mapping_queue_overflows);
	tcase_add_test(t, test_bad_mappings_are_refused);
	tcase_add_test(t, test_kick_stops_a_loop);
	tcase_add_exit_test(t, test_contained_monitor_drives_stub, 0);
	suite_add_tcase(s, t);
	return s;
}
