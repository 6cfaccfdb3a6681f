#include "monitor.h"

#include <capstone/capstone.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../cache/stats.h"
#include "../cache/tc.h"
#include "../cpu/trace.h"
#include "../cpu/vcpu.h"
#include "../devices/board.h"
#include "../mem/gmem.h"
#include "../mem/pagewalk.h"
#include "../mem/vmem.h"
#include "../snapshot/snapshot.h"

#define LINE_MAX_BYTES 1024u
#define BANNER "bt86 monitor - type 'help' for more information\n"
#define PROMPT "(bt86) "

struct monitor {
	struct vcpu *v;
	int vcpu_tid;
	int listen_fd, fd; /* the socket and its client, -1 for none */
	int wake[2];       /* monitor_close wakes the socket's thread through it */
	pthread_t thread;
	bool started;      /* the socket's thread exists */
	pthread_mutex_t submit; /* one command at a time, from either side */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under lock: the command handed to the VCPU thread and its output. */
	const char *line;
	char *out;
	bool pending;
	bool gone;         /* the VCPU serves no more commands */
	bool console_gone; /* stdin is closed: no line comes from the console */
	/* VCPU thread only. */
	bool stopped;      /* `stop`: monitor_serve holds the VCPU until `cont` */
	int fmt, size;     /* x's and xp's last format and unit size, QEMU's defaults first */
	/* The console's line (input thread only). */
	char cline[LINE_MAX_BYTES];
	size_t clen;
	bool greeted;
};

/* --- the commands, on the VCPU thread ----------------------------------- */

static void info_registers(struct monitor *m, FILE *f)
{
	struct vcpu_fx fx;
	unsigned top;

	fprintf(f, "\nCPU#0\n");
	trace_cpu_state(m->v, f);
	fprintf(f, "EFER=%016x\n", m->v->efer);
	vcpu_fx_read(m->v, &fx);
	top = (fx.fsw >> 11) & 7;
	fprintf(f, "FCW=%04x FSW=%04x [ST=%u] FTW=%02x MXCSR=%08x\n", fx.fcw, fx.fsw, top, fx.ftw, fx.mxcsr);
	for (unsigned i = 0; i < 8; i++) {
		/* FPRi is physical register i, which fxsave keeps as ST(i - TOP). */
		const uint8_t *r = fx.st[(i - top) & 7];
		uint64_t mant;
		memcpy(&mant, r, 8);
		fprintf(f, "FPR%u=%016" PRIx64 " %04x%s", i, mant, (unsigned)(r[8] | r[9] << 8), i & 1 ? "\n" : " ");
	}
	for (unsigned i = 0; i < 8; i++) {
		uint64_t lo, hi;
		memcpy(&lo, fx.xmm[i], 8);
		memcpy(&hi, fx.xmm[i] + 8, 8);
		fprintf(f, "XMM%02u=%016" PRIx64 " %016" PRIx64 "%s", i, hi, lo, i & 1 ? "\n" : " ");
	}
}

static uint32_t phys_word(struct monitor *m, uint32_t phys)
{
	return gmem_is_ram(m->v->mem, phys, 4) ? gmem_read(m->v->mem, phys, 4) : 0;
}

#define PTE_P 0x1u
#define PTE_W 0x2u
#define PTE_U 0x4u
#define PTE_PS 0x80u

/* QEMU's mem_print: a range ends where the permissions change. */
static void mem_range(FILE *f, int64_t *start, uint32_t *last, uint64_t end, uint32_t prot)
{
	if (prot == *last)
		return;
	if (*start != -1)
		fprintf(f, "%016" PRIx64 "-%016" PRIx64 " %016" PRIx64 " %c%c%c\n", (uint64_t)*start, end,
			end - (uint64_t)*start, *last & PTE_U ? 'u' : '-', 'r', *last & PTE_W ? 'w' : '-');
	*start = prot ? (int64_t)end : -1;
	*last = prot;
}

/* QEMU's print_pte. */
static void tlb_line(FILE *f, uint32_t lin, uint32_t pte, uint32_t mask)
{
	fprintf(f, "%016" PRIx64 ": %016" PRIx64 " -%c%c%c%c%c%c%c%c\n", (uint64_t)lin, (uint64_t)(pte & mask),
		pte & 0x100 ? 'G' : '-', pte & PTE_PS ? 'P' : '-', pte & 0x40 ? 'D' : '-', pte & 0x20 ? 'A' : '-',
		pte & 0x10 ? 'C' : '-', pte & 0x8 ? 'T' : '-', pte & PTE_U ? 'U' : '-', pte & PTE_W ? 'W' : '-');
}

/* info mem (tlb false) and info tlb: the guest's 32-bit page tables, walked
 * as QEMU's monitor walks them. */
static void info_paging(struct monitor *m, FILE *f, bool tlb)
{
	struct vcpu *v = m->v;
	int64_t start = -1;
	uint32_t last = 0;

	if (!(v->cr0 & CR0_PG)) {
		fprintf(f, "PG disabled\n");
		return;
	}
	if (v->cr4 & CR4_PAE) {
		fprintf(f, "bt86 lists 32-bit page tables only, not PAE ones\n");
		return;
	}
	uint32_t pd = v->cr3 & ~0xFFFu;
	for (uint32_t l1 = 0; l1 < 1024; l1++) {
		uint32_t pde = phys_word(m, pd + 4 * l1), base = l1 << 22;
		if (!(pde & PTE_P)) {
			if (!tlb)
				mem_range(f, &start, &last, base, 0);
			continue;
		}
		if ((pde & PTE_PS) && (v->cr4 & CR4_PSE)) {
			if (tlb)
				tlb_line(f, base, pde, ~((1u << 21) - 1)); /* QEMU's mask */
			else
				mem_range(f, &start, &last, base, pde & (PTE_U | PTE_W | PTE_P));
			continue;
		}
		for (uint32_t l2 = 0; l2 < 1024; l2++) {
			uint32_t pte = phys_word(m, (pde & ~0xFFFu) + 4 * l2), lin = base + (l2 << 12);
			if (tlb) {
				if (pte & PTE_P)
					tlb_line(f, lin, pte & ~PTE_PS, ~0xFFFu);
			} else {
				mem_range(f, &start, &last, lin, pte & PTE_P ? pte & pde & (PTE_U | PTE_W | PTE_P) : 0);
			}
		}
	}
	if (!tlb)
		mem_range(f, &start, &last, 1ull << 32, 0);
}

/* An address expression: numbers (C's bases) and $registers, added and
 * subtracted.  False when it is not one. */
static bool expr(struct monitor *m, const char *s, uint32_t *out)
{
	static const char *const names[] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};
	const struct vcpu *v = m->v;
	uint32_t acc = 0;
	int sign = 1;

	for (;;) {
		while (isspace((unsigned char)*s))
			s++;
		uint32_t term;
		if (*s == '$') {
			const char *n = ++s;
			while (isalnum((unsigned char)*s))
				s++;
			size_t len = (size_t)(s - n);
			unsigned i = 0;
			while (i < 8 && !(strlen(names[i]) == len && !strncmp(n, names[i], len)))
				i++;
			if (i < 8)
				term = v->hot->gpr[i];
			else if ((len == 3 && !strncmp(n, "eip", 3)) || (len == 2 && !strncmp(n, "pc", 2)))
				term = v->hot->eip;
			else if (len == 3 && !strncmp(n, "cr3", 3))
				term = v->cr3;
			else
				return false;
		} else if (isdigit((unsigned char)*s)) {
			char *e;
			term = (uint32_t)strtoull(s, &e, 0);
			s = e;
		} else {
			return false;
		}
		acc += sign > 0 ? term : -term;
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		if (*s != '+' && *s != '-')
			return false;
		sign = *s++ == '+' ? 1 : -1;
	}
	*out = acc;
	return true;
}

/* Reads n bytes at addr, linear or physical; false if any is not RAM (or
 * not mapped). */
static bool read_guest(struct monitor *m, uint64_t addr, uint8_t *buf, uint32_t n, bool physical)
{
	if (!physical)
		return vmem_debug_access(m->v, (uint32_t)addr, buf, n, false);
	if (addr + n > UINT32_MAX + 1ull || !gmem_is_ram(m->v->mem, (uint32_t)addr, n))
		return false;
	memcpy(buf, gmem_ptr(m->v->mem, (uint32_t)addr, n), n);
	return true;
}

static void print_char(FILE *f, unsigned c)
{
	if (c == '\'')
		fputs("'\\''", f);
	else if (c == '\\')
		fputs("'\\\\'", f);
	else if (c == '\n')
		fputs("'\\n'", f);
	else if (c == '\r')
		fputs("'\\r'", f);
	else if (c >= 32 && c <= 126)
		fprintf(f, "'%c'", c);
	else
		fprintf(f, "'\\x%02x'", c);
}

/* x/Ni: QEMU's Capstone layout (AT&T syntax, the first 8 bytes beside the
 * instruction, the rest on lines of their own). */
static void disassemble_guest(struct monitor *m, FILE *f, uint64_t addr, int count, bool physical)
{
	csh cs;
	if (cs_open(CS_ARCH_X86, CS_MODE_32, &cs) != CS_ERR_OK)
		return;
	cs_option(cs, CS_OPT_SYNTAX, CS_OPT_SYNTAX_ATT);
	for (int k = 0; k < count; k++) {
		uint8_t code[16];
		uint32_t n = sizeof code;
		while (n && !read_guest(m, addr, code, n, physical))
			n--;
		cs_insn *insn;
		if (!n || cs_disasm(cs, code, n, addr, 1, &insn) != 1) {
			fprintf(f, "0x%08" PRIx64 ": unable to read memory\n", addr);
			break;
		}
		fprintf(f, "0x%08" PRIx64 ": ", addr);
		for (unsigned i = 0; i < insn->size && i < 8; i++)
			fprintf(f, " %02x", insn->bytes[i]);
		if (insn->size < 8)
			fprintf(f, "%*s", (8 - insn->size) * 3, "");
		fprintf(f, "  %-8s %s\n", insn->mnemonic, insn->op_str);
		for (unsigned i = 8; i < insn->size; i += 8) {
			fprintf(f, "0x%08" PRIx64 ": ", addr + i);
			for (unsigned j = i; j < insn->size && j < i + 8; j++)
				fprintf(f, " %02x", insn->bytes[j]);
			fprintf(f, "\n");
		}
		addr += insn->size;
		cs_free(insn, 1);
	}
	cs_close(&cs);
}

/* x and xp: QEMU's format rules (a count, a format o d u x i c, a size
 * b h w g; what is left out is the last command's) and its memory_dump. */
static void memory_dump(struct monitor *m, FILE *f, const char *cmd, const char *args, bool physical)
{
	int count = 1, fmt = m->fmt, size = m->size;

	if (*args == '/') {
		args++;
		if (isdigit((unsigned char)*args))
			for (count = 0; isdigit((unsigned char)*args); args++)
				count = count * 10 + (*args - '0');
		int given_fmt = -1, given_size = -1;
		for (;; args++) {
			if (strchr("oduxic", *args) && *args)
				given_fmt = *args;
			else if (*args == 'b')
				given_size = 1;
			else if (*args == 'h')
				given_size = 2;
			else if (*args == 'w')
				given_size = 4;
			else if (*args == 'g' || *args == 'L')
				given_size = 8;
			else
				break;
		}
		if (*args && !isspace((unsigned char)*args)) {
			fprintf(f, "invalid char in format: '%c'\n", *args);
			return;
		}
		fmt = given_fmt >= 0 ? given_fmt : m->fmt;
		if (fmt != 'i') {
			size = given_size >= 0 ? given_size : m->size;
			m->size = size;
		}
		m->fmt = fmt;
	}
	uint32_t addr32;
	if (!expr(m, args, &addr32)) {
		fprintf(f, "%s: bad address '%s' (numbers and $registers, added or subtracted)\n", cmd, args);
		return;
	}
	uint64_t addr = addr32;
	if (fmt == 'i') {
		disassemble_guest(m, f, addr, count, physical);
		return;
	}
	int len = size * count, line = size == 1 ? 8 : 16, digits;
	switch (fmt) {
	case 'o':
		digits = (size * 8 + 2) / 3;
		break;
	case 'u':
	case 'd':
		digits = (size * 8 * 10 + 32) / 33;
		break;
	case 'c':
		digits = 0;
		size = 1;
		break;
	default:
		digits = size * 8 / 4;
		break;
	}
	while (len > 0) {
		if (physical)
			fprintf(f, "%016" PRIx64 ":", addr);
		else
			fprintf(f, "%08" PRIx64 ":", addr);
		int l = len < line ? len : line;
		uint8_t buf[16];
		if (!read_guest(m, addr, buf, (uint32_t)l, physical)) {
			fprintf(f, " Cannot access memory\n");
			break;
		}
		for (int i = 0; i < l; i += size) {
			uint64_t v = 0;
			memcpy(&v, buf + i, (size_t)size);
			fputc(' ', f);
			switch (fmt) {
			case 'o':
				fprintf(f, "%#*" PRIo64, digits, v);
				break;
			case 'u':
				fprintf(f, "%*" PRIu64, digits, v);
				break;
			case 'd':
				fprintf(f, "%*" PRId64, digits, (int64_t)v);
				break;
			case 'c':
				print_char(f, (unsigned)v);
				break;
			default:
				fprintf(f, "0x%0*" PRIx64, digits, v);
				break;
			}
		}
		fputc('\n', f);
		addr += (uint64_t)l;
		len -= l;
	}
}

/* One host instruction of a block's translation for info blocks. */
static void host_line(FILE *f, const char *guest, const cs_insn *h)
{
	fprintf(f, "  %-44s | %08" PRIx64 "  %s %s\n", guest, h->address, h->mnemonic, h->op_str);
}

/* info blocks ADDR: every valid translation whose guest instructions
 * cover ADDR, each guest instruction beside the host code made of it. */
static void info_blocks(struct monitor *m, FILE *f, const char *args)
{
	const struct tc *tc = m->v->tc;
	uint32_t addr;
	csh g, h;
	unsigned shown = 0;

	if (!expr(m, args, &addr)) {
		fprintf(f, "info blocks: bad address '%s'\n", args);
		return;
	}
	if (cs_open(CS_ARCH_X86, CS_MODE_32, &g) != CS_ERR_OK)
		return;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK) {
		cs_close(&g);
		return;
	}
	cs_option(g, CS_OPT_SYNTAX, CS_OPT_SYNTAX_ATT);
	cs_option(h, CS_OPT_SYNTAX, CS_OPT_SYNTAX_ATT);
	for (size_t i = 0; i < tc->n_blocks; i++) {
		const struct tc_block *b = tc->by_host[i];
		if (!b->valid || addr - b->eip >= b->guest_len)
			continue;
		const uint8_t *code = gmem_ptr(tc->mem, b->phys, b->guest_len);
		fprintf(f, "block %08x (physical %08x, mode %#x): %u guest instructions, %u bytes; %u host bytes at offset %#x",
			b->eip, b->phys, b->mode, b->n_insns, b->guest_len, b->host_len, b->host);
		if (tc->counting)
			fprintf(f, ", entered %" PRIu64 " times", tc_block_execs(tc, b));
		fprintf(f, "\n  %-44s | %s\n", "guest", "host");
		for (unsigned k = 0; k <= b->n_insns; k++) {
			char guest[256] = "(exits)";
			cs_insn *gi = NULL;
			if (k < b->n_insns)
				snprintf(guest, sizeof guest, "%08x  (not in RAM now)", b->map[k].eip);
			if (k < b->n_insns && code &&
			    cs_disasm(g, code + (b->map[k].eip - b->eip), b->guest_len - (b->map[k].eip - b->eip),
				      b->map[k].eip, 1, &gi) == 1)
				snprintf(guest, sizeof guest, "%08" PRIx64 "  %s %s", gi->address, gi->mnemonic, gi->op_str);
			if (gi)
				cs_free(gi, 1);
			uint32_t from = b->map[k].host, to = k < b->n_insns ? b->map[k + 1].host : b->host_len;
			cs_insn *hi;
			size_t n = to > from ? cs_disasm(h, tc_ptr(tc, b->host + from), to - from, b->host + from, 0, &hi) : 0;
			if (!n)
				fprintf(f, "  %-44s |\n", guest);
			for (size_t j = 0; j < n; j++)
				host_line(f, j ? "" : guest, &hi[j]);
			if (n)
				cs_free(hi, n);
		}
		shown++;
	}
	if (!shown)
		fprintf(f, "no translation of %08x in the cache\n", addr);
	cs_close(&g);
	cs_close(&h);
}

static const char help_text[] =
	"cont|c  -- resume emulation\n"
	"help|? [cmd] -- show the help\n"
	"info blocks ADDR -- show the translations of guest address ADDR, guest and host code side by side\n"
	"info mem  -- show the active virtual memory mappings\n"
	"info registers  -- show the cpu registers\n"
	"info tc  -- show the translation cache's statistics\n"
	"info tlb  -- show virtual to physical memory mappings\n"
	"quit|q  -- quit the emulator\n"
	"savevm FILE -- save the whole machine to FILE (bt86 -loadvm FILE starts from it)\n"
	"stop  -- stop emulation\n"
	"x /fmt addr -- virtual memory dump starting at 'addr'\n"
	"xp /fmt addr -- physical memory dump starting at 'addr'\n";

/* Runs one command line; returns its output (malloc'd). */
static char *execute(struct monitor *m, const char *line)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	while (isspace((unsigned char)*line))
		line++;
	char cmd[LINE_MAX_BYTES];
	snprintf(cmd, sizeof cmd, "%s", line);
	for (size_t n = strlen(cmd); n && isspace((unsigned char)cmd[n - 1]);)
		cmd[--n] = 0;
	size_t w = strcspn(cmd, " \t/");
	const char *args = cmd + w;
	while (isspace((unsigned char)*args))
		args++;

	if (!cmd[0]) {
		/* nothing */
	} else if (!strcmp(cmd, "help") || !strcmp(cmd, "?") || !strncmp(cmd, "help ", 5)) {
		fputs(help_text, f);
	} else if (!strcmp(cmd, "info registers")) {
		info_registers(m, f);
	} else if (!strcmp(cmd, "info mem")) {
		info_paging(m, f, false);
	} else if (!strcmp(cmd, "info tlb")) {
		info_paging(m, f, true);
	} else if (!strcmp(cmd, "info tc")) {
		stats_print(m->v->stats, m->v->tc, 0, f);
	} else if (!strncmp(cmd, "info blocks", 11) && (!cmd[11] || isspace((unsigned char)cmd[11]))) {
		info_blocks(m, f, cmd + 11);
	} else if (w == 1 && cmd[0] == 'x') {
		memory_dump(m, f, "x", args, false);
	} else if (w == 2 && !strncmp(cmd, "xp", 2)) {
		memory_dump(m, f, "xp", args, true);
	} else if (w == 6 && !strncmp(cmd, "savevm", 6)) {
		char done[512], err[600];
		if (!*args)
			fprintf(f, "savevm: which file? (savevm FILE)\n");
		else if (snapshot_save(args, m->v, m->v->board, done, sizeof done, err, sizeof err))
			fprintf(f, "savevm: %s\n", err);
		else
			fprintf(f, "savevm: %s\n", done);
	} else if (!strcmp(cmd, "stop")) {
		m->stopped = true;
	} else if (!strcmp(cmd, "cont") || !strcmp(cmd, "c")) {
		m->stopped = false;
	} else if (!strcmp(cmd, "quit") || !strcmp(cmd, "q")) {
		m->stopped = false;
		vcpu_stop(m->v, BT86_EXIT_HALTED, "quit from the monitor");
	} else if (!strcmp(cmd, "info")) {
		for (const char *l = help_text; *l; l = strchr(l, '\n') + 1)
			if (!strncmp(l, "info ", 5))
				fprintf(f, "%.*s", (int)(strchr(l, '\n') + 1 - l), l);
	} else {
		/* QEMU names the command as far as its table went: the
		 * first word, or "info" and the word after it. */
		if (w == 4 && !strncmp(cmd, "info", 4) && isspace((unsigned char)cmd[4]))
			w = (size_t)(args - cmd) + strcspn(args, " \t");
		fprintf(f, "unknown command: '%.*s'\n", (int)w, cmd);
	}
	fclose(f);
	return out;
}

void monitor_serve(struct monitor *m)
{
	pthread_mutex_lock(&m->lock);
	for (;;) {
		if (m->pending) {
			const char *line = m->line;
			pthread_mutex_unlock(&m->lock);
			char *out = execute(m, line);
			pthread_mutex_lock(&m->lock);
			m->out = out;
			m->pending = false;
			pthread_cond_broadcast(&m->cond);
		}
		if (!m->stopped || m->v->stopped)
			break;
		if (m->console_gone && m->listen_fd < 0) {
			/* Stopped, and no line can ever come to continue. */
			m->stopped = false;
			vcpu_stop(m->v, BT86_EXIT_USAGE,
				  "the guest is stopped and stdin is closed: nothing can continue it (-S needs "
				  "-gdb, -s, -monitor or a console)");
			break;
		}
		/* The host's SIGTERM, Ctrl-A x and the debugger's Ctrl-C only set
		 * attention bits (from signal handlers, which cannot signal the
		 * condition): look at them every 50 ms, and let the run loop take
		 * them with the stop kept for after the debugger's session. */
		if (__atomic_load_n(&m->v->hot->attn_req, __ATOMIC_RELAXED) &
		    (ATTN_REQ_STOP | ATTN_REQ_QUIT | ATTN_REQ_DEBUG)) {
			__atomic_or_fetch(&m->v->hot->attn_req, ATTN_REQ_MONITOR, __ATOMIC_RELAXED);
			break;
		}
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 50 * 1000 * 1000;
		if (t.tv_nsec >= 1000000000) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&m->cond, &m->lock, &t);
	}
	pthread_mutex_unlock(&m->lock);
}

/* --- handing lines to the VCPU thread ------------------------------------ */

/* Runs line on the VCPU thread and returns its output (malloc'd; NULL for
 * none). */
static char *run_line(struct monitor *m, const char *line)
{
	char *out;

	pthread_mutex_lock(&m->submit);
	pthread_mutex_lock(&m->lock);
	if (m->gone) {
		pthread_mutex_unlock(&m->lock);
		pthread_mutex_unlock(&m->submit);
		return strdup("the machine is not running\n");
	}
	m->line = line;
	m->pending = true;
	pthread_cond_broadcast(&m->cond); /* a stopped VCPU waits in monitor_serve */
	pthread_mutex_unlock(&m->lock);
	__atomic_or_fetch(&m->v->hot->attn_req, ATTN_REQ_MONITOR, __ATOMIC_RELAXED);
	syscall(SYS_tgkill, getpid(), m->vcpu_tid, BOARD_POKE_SIGNAL);
	pthread_mutex_lock(&m->lock);
	while (m->pending && !m->gone)
		pthread_cond_wait(&m->cond, &m->lock);
	m->pending = false;
	out = m->out;
	m->out = NULL;
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_unlock(&m->submit);
	return out;
}

/* To stdout, or to the socket's client: a client gone gives EPIPE there,
 * never SIGPIPE, which would end the run. */
static void write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t k = fd == STDOUT_FILENO ? write(fd, s, n) : send(fd, s, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		s += k;
		n -= (size_t)k;
	}
}

/* Writes s to the socket's client with QEMU's line ends (CR LF). */
static void client_puts(struct monitor *m, const char *s)
{
	for (const char *nl; (nl = strchr(s, '\n')); s = nl + 1) {
		write_all(m->fd, s, (size_t)(nl - s));
		write_all(m->fd, "\r\n", 2);
	}
	write_all(m->fd, s, strlen(s));
}

static void client_line(struct monitor *m, const char *line)
{
	client_puts(m, line); /* the echo QEMU's line editor gives */
	client_puts(m, "\n");
	char *out = run_line(m, line);
	if (out)
		client_puts(m, out);
	free(out);
	client_puts(m, PROMPT);
}

static void *socket_main(void *p)
{
	struct monitor *m = p;
	char line[LINE_MAX_BYTES];
	size_t len = 0;

	for (;;) {
		struct pollfd fds[2] = {{m->wake[0], POLLIN, 0}, {m->fd >= 0 ? m->fd : m->listen_fd, POLLIN, 0}};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (fds[0].revents)
			return NULL;
		if (!fds[1].revents)
			continue;
		if (m->fd < 0) {
			m->fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (m->fd >= 0)
				client_puts(m, BANNER PROMPT);
			len = 0;
			continue;
		}
		char buf[512];
		ssize_t got = read(m->fd, buf, sizeof buf);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			close(m->fd);
			m->fd = -1;
			continue;
		}
		for (ssize_t i = 0; i < got; i++) {
			if (buf[i] == '\n' || buf[i] == '\r') {
				if (buf[i] == '\r' && i + 1 < got && buf[i + 1] == '\n')
					i++;
				line[len] = 0;
				client_line(m, line);
				len = 0;
			} else if (len + 1 < sizeof line) {
				line[len++] = buf[i];
			}
		}
	}
}

void monitor_console(void *opaque, const uint8_t *buf, size_t n)
{
	struct monitor *m = opaque;

	if (n == 0) {
		if (!m->greeted)
			write_all(STDOUT_FILENO, "\n" BANNER, sizeof BANNER);
		m->greeted = true;
		write_all(STDOUT_FILENO, PROMPT, strlen(PROMPT));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char c = (char)buf[i];
		if (c == '\r' || c == '\n') {
			write_all(STDOUT_FILENO, "\n", 1);
			m->cline[m->clen] = 0;
			char *out = run_line(m, m->cline);
			if (out)
				write_all(STDOUT_FILENO, out, strlen(out));
			free(out);
			m->clen = 0;
			write_all(STDOUT_FILENO, PROMPT, strlen(PROMPT));
		} else if (c == 0x7F || c == '\b') {
			if (m->clen) {
				m->clen--;
				write_all(STDOUT_FILENO, "\b \b", 3);
			}
		} else if ((unsigned char)c >= 0x20 && m->clen + 1 < sizeof m->cline) {
			m->cline[m->clen++] = c;
			write_all(STDOUT_FILENO, &c, 1); /* the terminal is raw: no echo of its own */
		}
	}
}

void monitor_console_closed(void *opaque)
{
	struct monitor *m = opaque;

	pthread_mutex_lock(&m->lock);
	m->console_gone = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/* --- life cycle ---------------------------------------------------------- */

/* Parses "unix:PATH[,server][,nowait]" (or server=on, wait=off). */
static int parse_spec(const char *spec, char *path, size_t pathlen, bool *wait, char *err, size_t errlen)
{
	bool server = false;
	*wait = true;
	if (strncmp(spec, "unix:", 5)) {
		snprintf(err, errlen, "-monitor %s: bt86's monitor listens on unix:PATH,server,nowait only", spec);
		return -1;
	}
	const char *p = spec + 5, *comma = strchr(p, ',');
	size_t n = comma ? (size_t)(comma - p) : strlen(p);
	if (n == 0 || n >= pathlen || n >= sizeof((struct sockaddr_un *)0)->sun_path) {
		snprintf(err, errlen, "-monitor %s: the socket path is empty or too long", spec);
		return -1;
	}
	memcpy(path, p, n);
	path[n] = 0;
	while (comma) {
		p = comma + 1;
		comma = strchr(p, ',');
		n = comma ? (size_t)(comma - p) : strlen(p);
		if ((n == 6 && !strncmp(p, "server", 6)) || (n == 9 && !strncmp(p, "server=on", 9)))
			server = true;
		else if ((n == 6 && !strncmp(p, "nowait", 6)) || (n == 8 && !strncmp(p, "wait=off", 8)))
			*wait = false;
		else if (n == 7 && !strncmp(p, "wait=on", 7))
			*wait = true;
		else {
			snprintf(err, errlen, "-monitor %s: unknown option '%.*s'", spec, (int)n, p);
			return -1;
		}
	}
	if (!server) {
		snprintf(err, errlen, "-monitor %s: bt86 listens for the monitor's clients: add ',server,nowait'", spec);
		return -1;
	}
	return 0;
}

struct monitor *monitor_open(const char *spec, char *err, size_t errlen)
{
	struct monitor *m = calloc(1, sizeof *m);
	if (!m || pipe2(m->wake, O_CLOEXEC)) {
		snprintf(err, errlen, "the monitor: %s", strerror(errno));
		free(m);
		return NULL;
	}
	m->listen_fd = m->fd = -1;
	m->fmt = 'x';
	m->size = 4;
	pthread_mutex_init(&m->submit, NULL);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	if (!spec)
		return m;

	struct sockaddr_un a = {.sun_family = AF_UNIX};
	bool wait;
	if (parse_spec(spec, a.sun_path, sizeof a.sun_path, &wait, err, errlen)) {
		monitor_close(m);
		return NULL;
	}
	m->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(a.sun_path); /* a socket left by an earlier run, as QEMU does */
	if (m->listen_fd < 0 || bind(m->listen_fd, (struct sockaddr *)&a, sizeof a) || listen(m->listen_fd, 1)) {
		snprintf(err, errlen, "-monitor %s: cannot listen: %s", spec, strerror(errno));
		monitor_close(m);
		return NULL;
	}
	if (wait) {
		fprintf(stderr, "bt86: waiting for a monitor client on %s\n", a.sun_path);
		m->fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (m->fd < 0) {
			snprintf(err, errlen, "-monitor %s: accept: %s", spec, strerror(errno));
			monitor_close(m);
			return NULL;
		}
		client_puts(m, BANNER PROMPT);
	}
	return m;
}

int monitor_start(struct monitor *m, struct vcpu *v, int vcpu_tid, bool stopped, char *err, size_t errlen)
{
	m->v = v;
	m->vcpu_tid = vcpu_tid;
	m->stopped = stopped;
	if (stopped) /* the VCPU's first look at its requests holds it */
		__atomic_or_fetch(&v->hot->attn_req, ATTN_REQ_MONITOR, __ATOMIC_RELAXED);
	if (m->listen_fd < 0)
		return 0;
	if (pthread_create(&m->thread, NULL, socket_main, m)) {
		snprintf(err, errlen, "cannot start the monitor's thread");
		return -1;
	}
	m->started = true;
	return 0;
}

void monitor_close(struct monitor *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->gone = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (m->started) {
		ssize_t w = write(m->wake[1], "", 1); /* one byte, once: the pipe has room */
		(void)w;
		pthread_join(m->thread, NULL);
		m->started = false;
	}
	if (m->fd >= 0)
		close(m->fd);
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	m->fd = m->listen_fd = -1;
	/* The struct itself stays: the console's input thread, which reads
	 * until the process ends, may still hand it a line (run_line answers
	 * that the machine is not running). */
}
