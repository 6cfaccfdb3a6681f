#include "gdbstub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../cache/tc.h"
#include "../cpu/run.h"
#include "../cpu/vcpu.h"
#include "../devices/board.h"
#include "../exit_status.h"
#include "../mem/gmem.h"
#include "../mem/vmem.h"
#include "../mem/pagewalk.h"
#include "../mem/shadow.h"
#include "../mem/watch.h"

#define GDB_MAX_BREAKS 64u
#define GDB_PACKET_MAX 4096u /* the PacketSize we announce */

struct gdb {
	int listen_fd;
	int fd;          /* the debugger's connection, -1 for none */
	int wake[2];     /* the VCPU wakes the watcher out of poll through it */
	bool wait;       /* -S: the first stop comes before the first instruction */
	struct vcpu *v;
	int vcpu_tid;
	pthread_t watcher;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool running;    /* the guest runs: the watcher watches (under lock) */
	bool started;    /* the watcher exists */
	bool closing;    /* the watcher must end (under lock) */
	uint32_t breaks[GDB_MAX_BREAKS];
	unsigned n_breaks;
	char in[GDB_PACKET_MAX + 1];
	char out[2 * GDB_PACKET_MAX + 64];
};

/* The registers, in the order of the target description below and of the
 * 'g' packet: QEMU's i386 order less its k_gs_base, cr8 and efer, which
 * this CPU model does not have. */
enum {
	G_EAX, G_EIP = 8, G_EFLAGS, G_CS, G_SS, G_DS, G_ES, G_FS, G_GS,
	G_ST0, G_FCTRL = G_ST0 + 8, G_FSTAT, G_FTAG, G_FISEG, G_FIOFF, G_FOSEG, G_FOOFF, G_FOP,
	G_XMM0, G_MXCSR = G_XMM0 + 8, G_FS_BASE, G_GS_BASE, G_CR0, G_CR2, G_CR3, G_CR4, G_COUNT
};

static const char target_xml[] =
	"<?xml version=\"1.0\"?>"
	"<!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
	"<target><architecture>i386</architecture>"
	"<feature name=\"org.gnu.gdb.i386.core\">"
	"<flags id=\"i386_eflags\" size=\"4\">"
	"<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"\" start=\"1\" end=\"1\"/>"
	"<field name=\"PF\" start=\"2\" end=\"2\"/><field name=\"AF\" start=\"4\" end=\"4\"/>"
	"<field name=\"ZF\" start=\"6\" end=\"6\"/><field name=\"SF\" start=\"7\" end=\"7\"/>"
	"<field name=\"TF\" start=\"8\" end=\"8\"/><field name=\"IF\" start=\"9\" end=\"9\"/>"
	"<field name=\"DF\" start=\"10\" end=\"10\"/><field name=\"OF\" start=\"11\" end=\"11\"/>"
	"<field name=\"NT\" start=\"14\" end=\"14\"/><field name=\"RF\" start=\"16\" end=\"16\"/>"
	"<field name=\"VM\" start=\"17\" end=\"17\"/><field name=\"AC\" start=\"18\" end=\"18\"/>"
	"<field name=\"VIF\" start=\"19\" end=\"19\"/><field name=\"VIP\" start=\"20\" end=\"20\"/>"
	"<field name=\"ID\" start=\"21\" end=\"21\"/></flags>"
	"<reg name=\"eax\" bitsize=\"32\" type=\"int32\"/><reg name=\"ecx\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"edx\" bitsize=\"32\" type=\"int32\"/><reg name=\"ebx\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"esp\" bitsize=\"32\" type=\"data_ptr\"/><reg name=\"ebp\" bitsize=\"32\" type=\"data_ptr\"/>"
	"<reg name=\"esi\" bitsize=\"32\" type=\"int32\"/><reg name=\"edi\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"eip\" bitsize=\"32\" type=\"code_ptr\"/>"
	"<reg name=\"eflags\" bitsize=\"32\" type=\"i386_eflags\"/>"
	"<reg name=\"cs\" bitsize=\"32\" type=\"int32\"/><reg name=\"ss\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"ds\" bitsize=\"32\" type=\"int32\"/><reg name=\"es\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"fs\" bitsize=\"32\" type=\"int32\"/><reg name=\"gs\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"st0\" bitsize=\"80\" type=\"i387_ext\"/><reg name=\"st1\" bitsize=\"80\" type=\"i387_ext\"/>"
	"<reg name=\"st2\" bitsize=\"80\" type=\"i387_ext\"/><reg name=\"st3\" bitsize=\"80\" type=\"i387_ext\"/>"
	"<reg name=\"st4\" bitsize=\"80\" type=\"i387_ext\"/><reg name=\"st5\" bitsize=\"80\" type=\"i387_ext\"/>"
	"<reg name=\"st6\" bitsize=\"80\" type=\"i387_ext\"/><reg name=\"st7\" bitsize=\"80\" type=\"i387_ext\"/>"
	"<reg name=\"fctrl\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"fstat\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"ftag\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"fiseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"fioff\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"foseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"fooff\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"fop\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"</feature>"
	"<feature name=\"org.gnu.gdb.i386.sse\">"
	"<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>"
	"<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>"
	"<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>"
	"<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>"
	"<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>"
	"<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>"
	"<union id=\"vec128\"><field name=\"v4_float\" type=\"v4f\"/><field name=\"v2_double\" type=\"v2d\"/>"
	"<field name=\"v16_int8\" type=\"v16i8\"/><field name=\"v8_int16\" type=\"v8i16\"/>"
	"<field name=\"v4_int32\" type=\"v4i32\"/><field name=\"v2_int64\" type=\"v2i64\"/>"
	"<field name=\"uint128\" type=\"uint128\"/></union>"
	"<reg name=\"xmm0\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm1\" bitsize=\"128\" type=\"vec128\"/>"
	"<reg name=\"xmm2\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm3\" bitsize=\"128\" type=\"vec128\"/>"
	"<reg name=\"xmm4\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm5\" bitsize=\"128\" type=\"vec128\"/>"
	"<reg name=\"xmm6\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm7\" bitsize=\"128\" type=\"vec128\"/>"
	"<reg name=\"mxcsr\" bitsize=\"32\" type=\"int\" group=\"vector\"/>"
	"</feature>"
	"<feature name=\"org.bt86.i386.system\">"
	"<reg name=\"fs_base\" bitsize=\"32\" type=\"int32\"/><reg name=\"gs_base\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"cr0\" bitsize=\"32\" type=\"int32\"/><reg name=\"cr2\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"cr3\" bitsize=\"32\" type=\"int32\"/><reg name=\"cr4\" bitsize=\"32\" type=\"int32\"/>"
	"</feature></target>";

/* --- the connection ---------------------------------------------------- */

static void *watcher_main(void *p);

static int parse_spec(const char *spec, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *rest = strncmp(spec, "tcp:", 4) ? NULL : spec + 4;
	const char *colon = rest ? strrchr(rest, ':') : NULL;
	if (!colon || !colon[1] || (size_t)(colon - rest) >= hostlen || strlen(colon + 1) >= portlen)
		return -1;
	memcpy(host, rest, (size_t)(colon - rest));
	host[colon - rest] = 0;
	strcpy(port, colon + 1);
	return 0;
}

struct gdb *gdb_open(const char *spec, bool wait, char *err, size_t errlen)
{
	char host[256], port[32];
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	int fd = -1, one = 1;

	if (parse_spec(spec, host, sizeof host, port, sizeof port)) {
		snprintf(err, errlen, "-gdb %s: expected tcp::PORT or tcp:HOST:PORT", spec);
		return NULL;
	}
	int rc = getaddrinfo(host[0] ? host : "localhost", port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "-gdb %s: %s", spec, gai_strerror(rc));
		return NULL;
	}
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen, "-gdb %s: cannot listen: %s", spec, strerror(errno));
		return NULL;
	}
	struct gdb *g = calloc(1, sizeof *g);
	if (!g || pipe(g->wake)) {
		snprintf(err, errlen, "-gdb %s: %s", spec, strerror(errno));
		free(g);
		close(fd);
		return NULL;
	}
	g->listen_fd = fd;
	g->fd = -1;
	g->wait = wait;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	if (wait) {
		fprintf(stderr, "bt86: waiting for GDB on %s\n", spec);
		g->fd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (g->fd < 0) {
			snprintf(err, errlen, "-gdb %s: accept: %s", spec, strerror(errno));
			gdb_close(g);
			return NULL;
		}
		setsockopt(g->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	return g;
}

int gdb_start(struct gdb *g, struct vcpu *v, int vcpu_tid, char *err, size_t errlen)
{
	g->v = v;
	g->vcpu_tid = vcpu_tid;
	v->gdb = g;
	if (g->wait)
		__atomic_or_fetch(&v->hot->attn_req, ATTN_REQ_DEBUG, __ATOMIC_RELAXED);
	else
		g->running = true;
	if (pthread_create(&g->watcher, NULL, watcher_main, g)) {
		snprintf(err, errlen, "cannot start the GDB watcher thread");
		return -1;
	}
	g->started = true;
	return 0;
}

void gdb_close(struct gdb *g)
{
	if (!g)
		return;
	if (g->started) {
		pthread_mutex_lock(&g->lock);
		g->closing = true;
		pthread_cond_signal(&g->cond);
		pthread_mutex_unlock(&g->lock);
		if (write(g->wake[1], "", 1) < 0)
			g->closing = true;
		pthread_join(g->watcher, NULL);
	}
	if (g->fd >= 0)
		close(g->fd);
	close(g->listen_fd);
	close(g->wake[0]);
	close(g->wake[1]);
	free(g);
}

/* Stops the guest for the debugger: the VCPU serves it at its next look
 * at its requests. */
static void request_stop(struct gdb *g)
{
	__atomic_or_fetch(&g->v->hot->attn_req, ATTN_REQ_DEBUG, __ATOMIC_RELAXED);
	syscall(SYS_tgkill, getpid(), g->vcpu_tid, BOARD_POKE_SIGNAL);
}

/* While the guest runs: accepts a debugger, or waits for its Ctrl-C, and
 * stops the guest; then waits until the VCPU lets the guest run again. */
static void *watcher_main(void *p)
{
	struct gdb *g = p;
	int one = 1;

	for (;;) {
		pthread_mutex_lock(&g->lock);
		while (!g->running && !g->closing)
			pthread_cond_wait(&g->cond, &g->lock);
		int fd = g->fd;
		bool closing = g->closing;
		pthread_mutex_unlock(&g->lock);
		if (closing)
			return NULL;
		struct pollfd pf[2] = {{.fd = fd >= 0 ? fd : g->listen_fd, .events = POLLIN},
				       {.fd = g->wake[0], .events = POLLIN}};
		if (poll(pf, 2, -1) < 0)
			continue;
		pthread_mutex_lock(&g->lock);
		if (pf[1].revents) {
			char c;
			if (read(g->wake[0], &c, 1) < 0)
				c = 0;
		}
		if (g->running && !g->closing && pf[0].revents) {
			if (fd < 0) {
				g->fd = accept4(g->listen_fd, NULL, NULL, SOCK_CLOEXEC);
				if (g->fd >= 0)
					setsockopt(g->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			}
			if (g->fd >= 0) {
				g->running = false;
				request_stop(g);
			}
		}
		pthread_mutex_unlock(&g->lock);
	}
}

/* The guest runs again: the watcher may watch. */
static void let_run(struct gdb *g)
{
	pthread_mutex_lock(&g->lock);
	g->running = true;
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* The VCPU stopped by itself (a breakpoint, a step): the watcher stops
 * polling the connection before the VCPU reads from it. */
static void take_connection(struct gdb *g)
{
	pthread_mutex_lock(&g->lock);
	if (g->running) {
		g->running = false;
		if (write(g->wake[1], "", 1) < 0)
			g->running = false;
	}
	pthread_mutex_unlock(&g->lock);
}

static void drop_connection(struct gdb *g)
{
	pthread_mutex_lock(&g->lock);
	if (g->fd >= 0)
		close(g->fd);
	g->fd = -1;
	pthread_mutex_unlock(&g->lock);
}

static const char hex[] = "0123456789abcdef";

static int unhex(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static bool send_all(struct gdb *g, const char *s, size_t n)
{
	while (n) {
		/* A debugger gone gives EPIPE, never SIGPIPE (which would end
		 * the run). */
		ssize_t w = send(g->fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		s += w;
		n -= (size_t)w;
	}
	return true;
}

/* Sends g->out as a packet and waits for the debugger's '+'. */
static bool put_packet(struct gdb *g)
{
	size_t n = strlen(g->out);
	char frame[sizeof g->out + 4];
	unsigned sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += (unsigned char)g->out[i];
	frame[0] = '$';
	memcpy(frame + 1, g->out, n);
	frame[n + 1] = '#';
	frame[n + 2] = hex[(sum >> 4) & 0xF];
	frame[n + 3] = hex[sum & 0xF];
	for (int tries = 0; tries < 3; tries++) {
		if (!send_all(g, frame, n + 4))
			return false;
		char c;
		ssize_t r;
		while ((r = read(g->fd, &c, 1)) < 0 && errno == EINTR)
			;
		if (r <= 0)
			return false;
		if (c == '+')
			return true;
	}
	return false;
}

/* Reads one packet into g->in (acknowledged); a lone 0x03 (Ctrl-C) while
 * stopped is dropped.  False when the debugger went away. */
static bool get_packet(struct gdb *g)
{
	char c;
	ssize_t r;

	for (;;) {
		do
			r = read(g->fd, &c, 1);
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			return false;
		if (c != '$')
			continue;
		size_t n = 0;
		unsigned sum = 0;
		bool overflow = false;
		for (;;) {
			do
				r = read(g->fd, &c, 1);
			while (r < 0 && errno == EINTR);
			if (r <= 0)
				return false;
			if (c == '#')
				break;
			sum += (unsigned char)c;
			if (n < GDB_PACKET_MAX)
				g->in[n++] = c;
			else
				overflow = true;
		}
		char ck[2];
		for (int i = 0; i < 2; i++) {
			do
				r = read(g->fd, &ck[i], 1);
			while (r < 0 && errno == EINTR);
			if (r <= 0)
				return false;
		}
		g->in[n] = 0;
		bool good = !overflow && unhex(ck[0]) * 16 + unhex(ck[1]) == (int)(sum & 0xFF);
		if (!send_all(g, good ? "+" : "-", 1))
			return false;
		if (good)
			return true;
	}
}

/* --- registers and memory ---------------------------------------------- */

static void put_le(char **o, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		*(*o)++ = hex[b[i] >> 4];
		*(*o)++ = hex[b[i] & 0xF];
	}
}


/* The full tag word from fxsave's abridged one: for each physical
 * register in use, what its value is (valid 0, zero 1, special 2). */
static uint32_t full_tag(const struct vcpu_fx *fx)
{
	unsigned top = (fx->fsw >> 11) & 7, tag = 0;

	for (unsigned phys = 0; phys < 8; phys++) {
		unsigned t = 3;
		if (fx->ftw & (1u << phys)) {
			const uint8_t *r = fx->st[(phys - top) & 7];
			uint64_t mant;
			memcpy(&mant, r, 8);
			unsigned exp = (r[8] | r[9] << 8) & 0x7FFF;
			t = exp == 0x7FFF ? 2 : exp == 0 ? (mant ? 2 : 1) : (mant >> 63) ? 0 : 2;
		}
		tag |= t << (2 * phys);
	}
	return tag;
}

static void put_register(struct gdb *g, unsigned n, char **o, const struct vcpu_fx *fx)
{
	struct vcpu *v = g->v;
	const uint8_t *xmm = v->hot->fx_guest + FX_XMM;
	uint32_t mxcsr, val;
	static const enum sreg sregs[6] = {S_CS, S_SS, S_DS, S_ES, S_FS, S_GS};

	memcpy(&mxcsr, v->hot->fx_guest + FX_MXCSR, 4);
	if (n < 8)
		val = v->hot->gpr[n];
	else if (n == G_EIP)
		val = v->hot->eip;
	else if (n == G_EFLAGS)
		val = vcpu_eflags(v);
	else if (n >= G_CS && n <= G_GS)
		val = v->seg[sregs[n - G_CS]].sel;
	else if (n >= G_ST0 && n < G_FCTRL) {
		put_le(o, fx->st[n - G_ST0], 10);
		return;
	} else if (n >= G_XMM0 && n < G_MXCSR) {
		put_le(o, xmm + 16 * (n - G_XMM0), 16);
		return;
	} else {
		switch (n) {
		case G_FCTRL: val = fx->fcw; break;
		case G_FSTAT: val = fx->fsw; break;
		case G_FTAG: val = full_tag(fx); break;
		case G_FISEG: val = fx->fcs; break;
		case G_FIOFF: val = fx->fip; break;
		case G_FOSEG: val = fx->fds; break;
		case G_FOOFF: val = fx->fdp; break;
		case G_FOP: val = fx->fop & 0x7FF; break;
		case G_MXCSR: val = mxcsr; break;
		case G_FS_BASE: val = v->seg[S_FS].base; break;
		case G_GS_BASE: val = v->seg[S_GS].base; break;
		case G_CR0: val = v->cr0; break;
		case G_CR2: val = v->hot->cr2; break;
		case G_CR3: val = v->cr3; break;
		default: val = v->cr4; break;
		}
	}
	put_le(o, &val, 4);
}

/* Writes register n from 8 hex digits (little-endian); only the general
 * registers, EIP and EFLAGS are writable. */
static bool set_register(struct gdb *g, unsigned n, const char *digits)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++) {
		int hi = unhex(digits[2 * i]), lo = hi < 0 ? -1 : unhex(digits[2 * i + 1]);
		if (lo < 0)
			return false;
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	uint32_t val = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	if (n < 8)
		g->v->hot->gpr[n] = val;
	else if (n == G_EIP)
		g->v->hot->eip = val;
	else if (n == G_EFLAGS)
		vcpu_set_eflags(g->v, val & ~FL_TF); /* bt86 has no guest single-stepping */
	else
		return false;
	return true;
}

/* --- breakpoints -------------------------------------------------------- */

bool gdb_breakpoint(const struct gdb *g, uint32_t eip)
{
	for (unsigned i = 0; i < g->n_breaks; i++)
		if (g->breaks[i] == eip)
			return true;
	return false;
}

bool gdb_has_breakpoints(const struct gdb *g)
{
	return g->n_breaks != 0;
}

bool gdb_stops_before(const void *ctx, uint32_t eip)
{
	return gdb_breakpoint(ctx, eip);
}

/* Sets or clears a breakpoint; the cache is flushed, so that no block runs
 * across the new one and no exit stays chained past it. */
static bool set_break(struct gdb *g, uint32_t addr, bool on)
{
	unsigned i = 0;

	while (i < g->n_breaks && g->breaks[i] != addr)
		i++;
	if (on && i == g->n_breaks) {
		if (g->n_breaks == GDB_MAX_BREAKS)
			return false;
		g->breaks[g->n_breaks++] = addr;
		tc_flush(g->v->tc);
	} else if (!on && i < g->n_breaks) {
		g->breaks[i] = g->breaks[--g->n_breaks];
	}
	return true;
}

/* --- the session -------------------------------------------------------- */

static void reply(struct gdb *g, const char *s)
{
	snprintf(g->out, sizeof g->out, "%s", s);
}

/* A stop a watchpoint caused names it, as QEMU's stub does. */
static void stop_reply(struct gdb *g, int sig)
{
	const struct vcpu *v = g->v;
	if (v->dbg.hit)
		snprintf(g->out, sizeof g->out, "T%02xthread:01;%swatch:%x;", sig,
			 v->dbg.hit_kind == WATCH_READ ? "r" : v->dbg.hit_kind == WATCH_WRITE ? "" : "a", v->dbg.hit_addr);
	else
		snprintf(g->out, sizeof g->out, "T%02xthread:01;", sig);
}

/* Parses "ADDR,LEN" (hex) at s; *end is past it. */
static bool addr_len(const char *s, uint32_t *addr, uint32_t *len, const char **end)
{
	char *e;
	unsigned long a = strtoul(s, &e, 16);
	if (*e != ',')
		return false;
	unsigned long l = strtoul(e + 1, &e, 16);
	if (a > UINT32_MAX || l > GDB_PACKET_MAX / 2)
		return false;
	*addr = (uint32_t)a;
	*len = (uint32_t)l;
	*end = e;
	return true;
}

static void read_memory(struct gdb *g, const char *args)
{
	uint32_t addr, len;
	const char *end;
	uint8_t buf[GDB_PACKET_MAX / 2];
	char *o = g->out;

	if (!addr_len(args, &addr, &len, &end) || !vmem_debug_access(g->v, addr, buf, len, false)) {
		reply(g, "E14");
		return;
	}
	put_le(&o, buf, len);
	*o = 0;
}

static void write_memory(struct gdb *g, const char *args)
{
	uint32_t addr, len;
	const char *end;
	uint8_t buf[GDB_PACKET_MAX / 2];

	if (!addr_len(args, &addr, &len, &end) || *end != ':' || strlen(end + 1) != 2 * (size_t)len) {
		reply(g, "E01");
		return;
	}
	for (uint32_t i = 0; i < len; i++) {
		int hi = unhex(end[1 + 2 * i]), lo = unhex(end[2 + 2 * i]);
		if (hi < 0 || lo < 0) {
			reply(g, "E01");
			return;
		}
		buf[i] = (uint8_t)(hi << 4 | lo);
	}
	reply(g, vmem_debug_access(g->v, addr, buf, len, true) ? "OK" : "E14");
}

static void read_registers(struct gdb *g)
{
	struct vcpu_fx fx;
	char *o = g->out;

	vcpu_fx_read(g->v, &fx);
	for (unsigned n = 0; n < G_COUNT; n++)
		put_register(g, n, &o, &fx);
	*o = 0;
}

static void read_register(struct gdb *g, const char *args)
{
	struct vcpu_fx fx;
	char *o = g->out, *end;
	unsigned long n = strtoul(args, &end, 16);

	if (*end || n >= G_COUNT) {
		reply(g, "E01");
		return;
	}
	vcpu_fx_read(g->v, &fx);
	put_register(g, (unsigned)n, &o, &fx);
	*o = 0;
}

static void write_register(struct gdb *g, const char *args)
{
	char *end;
	unsigned long n = strtoul(args, &end, 16);

	reply(g, *end == '=' && strlen(end + 1) == 8 && set_register(g, (unsigned)n, end + 1) ? "OK" : "E01");
}

/* 'G': the general registers, EIP and EFLAGS from the front of the block
 * (the rest, read-only here, is ignored). */
static void write_registers(struct gdb *g, const char *args)
{
	if (strlen(args) < 8 * (G_EFLAGS + 1)) {
		reply(g, "E01");
		return;
	}
	for (unsigned n = 0; n <= G_EFLAGS; n++)
		if (!set_register(g, n, args + 8 * n)) {
			reply(g, "E01");
			return;
		}
	reply(g, "OK");
}

static void features(struct gdb *g, const char *args)
{
	unsigned long off, len;
	const size_t total = sizeof target_xml - 1;

	if (sscanf(args, "target.xml:%lx,%lx", &off, &len) != 2) {
		reply(g, "E00");
		return;
	}
	if (len > GDB_PACKET_MAX - 2)
		len = GDB_PACKET_MAX - 2;
	if (off >= total) {
		reply(g, "l");
		return;
	}
	size_t n = total - off < len ? total - off : len;
	g->out[0] = off + n < total ? 'm' : 'l';
	memcpy(g->out + 1, target_xml + off, n);
	g->out[n + 1] = 0;
}

/* Sets or clears a watchpoint of `kind` (watch.h) on len bytes at addr:
 * the shadow takes the new set (every mapping goes). */
static bool set_watch(struct gdb *g, uint32_t addr, uint32_t len, unsigned kind, bool on)
{
	struct watch_set ws = g->v->shadow->watch;
	unsigned i = 0;

	if (len == 0 || addr + (len - 1) < addr)
		return false;
	while (i < ws.n && !(ws.w[i].addr == addr && ws.w[i].len == len && ws.w[i].kind == kind))
		i++;
	if (on && i == ws.n) {
		if (ws.n == WATCH_MAX)
			return false;
		ws.w[ws.n++] = (struct watch){addr, len, kind};
	} else if (!on && i < ws.n) {
		ws.w[i] = ws.w[--ws.n];
	} else {
		return true;
	}
	shadow_set_watches(g->v->shadow, &ws);
	return true;
}

/* Z/z TYPE,ADDR,KIND: breakpoints (types 0 and 1, software and hardware
 * alike) and watchpoints (2 write, 3 read, 4 access; KIND is the length). */
static void breakpoint_packet(struct gdb *g, const char *args, bool on)
{
	static const unsigned kinds[] = {[2] = WATCH_WRITE, [3] = WATCH_READ, [4] = WATCH_READ | WATCH_WRITE};
	char *end;
	unsigned long type = strtoul(args, &end, 10);
	if (*end != ',' || type > 4) {
		reply(g, "");
		return;
	}
	unsigned long addr = strtoul(end + 1, &end, 16);
	if (*end != ',' || addr > UINT32_MAX) {
		reply(g, "E01");
		return;
	}
	unsigned long len = strtoul(end + 1, &end, 16);
	bool ok = type <= 1 ? set_break(g, (uint32_t)addr, on)
			    : len <= UINT32_MAX && set_watch(g, (uint32_t)addr, (uint32_t)len, kinds[type], on);
	reply(g, ok ? "OK" : "E01");
}

enum resume { R_NONE, R_CONTINUE, R_STEP, R_DETACH, R_KILL, R_GONE };

/* Serves one packet from g->in, leaving the reply in g->out. */
static enum resume handle(struct gdb *g, int sig)
{
	const char *p = g->in;
	struct vcpu *v = g->v;
	char *end;

	g->out[0] = 0;
	switch (p[0]) {
	case '?':
		stop_reply(g, sig);
		break;
	case 'g':
		read_registers(g);
		break;
	case 'G':
		write_registers(g, p + 1);
		break;
	case 'p':
		read_register(g, p + 1);
		break;
	case 'P':
		write_register(g, p + 1);
		break;
	case 'm':
		read_memory(g, p + 1);
		break;
	case 'M':
		write_memory(g, p + 1);
		break;
	case 'c':
	case 's':
		if (p[1]) {
			unsigned long a = strtoul(p + 1, &end, 16);
			v->hot->eip = (uint32_t)a;
		}
		return p[0] == 'c' ? R_CONTINUE : R_STEP;
	case 'D':
		reply(g, "OK");
		return R_DETACH;
	case 'k':
		return R_KILL;
	case 'Z':
	case 'z':
		breakpoint_packet(g, p + 1, p[0] == 'Z');
		break;
	case 'H':
	case 'T':
		reply(g, "OK");
		break;
	case 'q':
		if (!strncmp(p, "qSupported", 10))
			snprintf(g->out, sizeof g->out, "PacketSize=%x;qXfer:features:read+", GDB_PACKET_MAX);
		else if (!strncmp(p, "qXfer:features:read:", 20))
			features(g, p + 20);
		else if (!strcmp(p, "qC"))
			reply(g, "QC1");
		else if (!strcmp(p, "qAttached"))
			reply(g, "1");
		else if (!strcmp(p, "qfThreadInfo"))
			reply(g, "m1");
		else if (!strcmp(p, "qsThreadInfo"))
			reply(g, "l");
		else if (!strncmp(p, "qSymbol", 7))
			reply(g, "OK");
		break;
	default:
		break; /* unsupported: the empty reply */
	}
	return R_NONE;
}

void gdb_stop(struct gdb *g, int sig)
{
	struct vcpu *v = g->v;

	take_connection(g);
	v->hot->eflags &= ~FL_TF;
	if (g->fd < 0) {
		let_run(g);
		return;
	}
	/* A stop the debugger asked for (continue, step, Ctrl-C) is reported
	 * at once; the first one, on connection, when it asks ('?'). */
	if (v->dbg.resumed) {
		stop_reply(g, sig);
		if (!put_packet(g)) {
			drop_connection(g);
			let_run(g);
			return;
		}
	}
	for (;;) {
		enum resume r = get_packet(g) ? handle(g, sig) : R_GONE;
		if (r == R_NONE) {
			if (!put_packet(g))
				r = R_GONE;
			else
				continue;
		}
		switch (r) {
		case R_CONTINUE:
		case R_STEP:
			v->dbg.resumed = true;
			v->dbg.step = r == R_STEP;
			v->dbg.skipping = true; /* do not stop again before it has run */
			v->dbg.skip = v->hot->eip;
			let_run(g);
			return;
		case R_DETACH:
			put_packet(g);
			/* fall through */
		case R_GONE:
			g->n_breaks = 0;
			if (v->shadow->watch.n) {
				static const struct watch_set none;
				shadow_set_watches(v->shadow, &none);
			}
			v->dbg.resumed = false;
			v->dbg.step = false;
			drop_connection(g);
			let_run(g);
			return;
		case R_KILL:
			drop_connection(g);
			vcpu_stop(v, BT86_EXIT_HALTED, "terminated from GDB");
			return;
		default:
			break;
		}
	}
}
