/*
 * The guest event log (-d, -D), in QEMU's i386 layout.
 *
 * QEMU writes one record per event it delivers in protected mode (its
 * do_interrupt_all) and, after it, the CPU state; so does bt86, from the
 * state delivery starts from: EIP is the faulting or interrupted
 * instruction (for int n, the int itself), as in QEMU.  The dump has
 * QEMU's lines for what bt86 models; QEMU's lazy-flags line (CCS/CCD/CCO)
 * and EFER have no counterpart here and are left out.
 */
#include "trace.h"

#include <string.h>

#include "../cache/tc.h"
#include "../loader/symbols.h"
#include "vcpu.h"

static const struct {
	const char *name;
	unsigned item;
	const char *help;
} trace_items[] = {
	{"int", TRACE_INT, "interrupts and exceptions: vector, error code, EIP, CPL, registers"},
	{"exec", TRACE_EXEC, "each translated block entered from the monitor's loop (slow)"},
	{"cpu", TRACE_CPU, "the registers at each such block entry (slow)"},
	{"nochain", TRACE_NOCHAIN, "no chaining, so that exec and cpu show every block (slower)"},
};

int trace_parse_items(const char *spec, unsigned *items, FILE *out, char *err, size_t errlen)
{
	char buf[256], *save = NULL;

	*items = 0;
	if (strlen(spec) >= sizeof buf) {
		snprintf(err, errlen, "-d %s: too long", spec);
		return -1;
	}
	strcpy(buf, spec);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "help")) {
			fprintf(out, "Log items (comma separated):\n");
			for (size_t i = 0; i < sizeof trace_items / sizeof trace_items[0]; i++)
				fprintf(out, "%-10s %s\n", trace_items[i].name, trace_items[i].help);
			*items = 0;
			return 0;
		}
		size_t i = 0;
		while (i < sizeof trace_items / sizeof trace_items[0] && strcmp(tok, trace_items[i].name))
			i++;
		if (i == sizeof trace_items / sizeof trace_items[0]) {
			snprintf(err, errlen, "-d %s: unknown log item %s (-d help lists them)", spec, tok);
			return -1;
		}
		*items |= trace_items[i].item;
	}
	if (!*items) {
		snprintf(err, errlen, "-d '%s': no log item given (-d help lists them)", spec);
		return -1;
	}
	return 0;
}

/* A segment register as QEMU's cpu_x86_dump_seg_cache prints it: the
 * descriptor's flag bits (its high word less the base bytes), then, for
 * a present segment, what kind it is. */
static void dump_segment(FILE *f, const char *name, const struct seg_cache *c)
{
	static const char *const system_types[16] = {
		"Reserved", "TSS16-avl", "LDT", "TSS16-busy", "CallGate16", "TaskGate",
		"IntGate16", "TrapGate16", "Reserved", "TSS32-avl", "Reserved", "TSS32-busy",
		"CallGate32", "Reserved", "IntGate32", "TrapGate32",
	};
	uint32_t raw_limit = c->g ? c->limit >> 12 : c->limit;
	uint32_t flags = (uint32_t)c->type << 8 | (uint32_t)c->s << 12 | (uint32_t)c->dpl << 13 |
				(uint32_t)c->p << 15 | (raw_limit & 0xF0000) | (uint32_t)c->db << 22 |
				(uint32_t)c->g << 23;
	fprintf(f, "%-3s=%04x %08x %08x %08x", name, c->sel, c->base, c->limit, flags);
	if (!(flags & 0x8000)) {
		fputc('\n', f);
		return;
	}
	fprintf(f, " DPL=%u ", c->dpl);
	if (!c->s)
		fprintf(f, "%s", system_types[c->type]);
	else if (c->type & 8)
		fprintf(f, "%s [%c%c%c]", c->db ? "CS32" : "CS16", c->type & 4 ? 'C' : '-',
			c->type & 2 ? 'R' : '-', c->type & 1 ? 'A' : '-');
	else
		fprintf(f, "%s [%c%c%c]", c->db ? "DS  " : "DS16", c->type & 4 ? 'E' : '-',
			c->type & 2 ? 'W' : '-', c->type & 1 ? 'A' : '-');
	fputc('\n', f);
}

void trace_cpu_state(const struct vcpu *v, FILE *f)
{
	static const char *const names[S_COUNT] = {"ES", "CS", "SS", "DS", "FS", "GS"};
	const uint32_t *r = v->hot->gpr;
	uint32_t fl = vcpu_eflags(v);

	fprintf(f, "EAX=%08x EBX=%08x ECX=%08x EDX=%08x\n", r[R_EAX], r[R_EBX], r[R_ECX], r[R_EDX]);
	fprintf(f, "ESI=%08x EDI=%08x EBP=%08x ESP=%08x\n", r[R_ESI], r[R_EDI], r[R_EBP], r[R_ESP]);
	/* No interrupt shadow, A20 gate or SMM is modelled: II=0 A20=1 SMM=0. */
	fprintf(f, "EIP=%08x EFL=%08x [%c%c%c%c%c%c%c] CPL=%u II=0 A20=1 SMM=0 HLT=%d\n",
		v->hot->eip, fl, fl & FL_DF ? 'D' : '-', fl & FL_OF ? 'O' : '-', fl & FL_SF ? 'S' : '-',
		fl & FL_ZF ? 'Z' : '-', fl & FL_AF ? 'A' : '-', fl & FL_PF ? 'P' : '-',
		fl & FL_CF ? 'C' : '-', v->cpl, v->halted);
	for (enum sreg s = S_ES; s < S_COUNT; s++)
		dump_segment(f, names[s], &v->seg[s]);
	dump_segment(f, "LDT", &v->ldtr);
	dump_segment(f, "TR", &v->tr);
	fprintf(f, "GDT=     %08x %08x\n", v->gdtr.base, v->gdtr.limit);
	fprintf(f, "IDT=     %08x %08x\n", v->idtr.base, v->idtr.limit);
	fprintf(f, "CR0=%08x CR2=%08x CR3=%08x CR4=%08x\n", v->cr0, v->hot->cr2, v->cr3, v->cr4);
	fprintf(f, "DR0=%08x DR1=%08x DR2=%08x DR3=%08x \n", v->dr[0], v->dr[1], v->dr[2], v->dr[3]);
	fprintf(f, "DR6=%08x DR7=%08x\n", v->dr[6], v->dr[7]);
}

void trace_interrupt(struct vcpu *v, unsigned vec, uint32_t err, bool soft)
{
	struct trace *t = &v->trace;
	const struct seg_cache *cs = &v->seg[S_CS];

	if (!(t->items & TRACE_INT) || !(v->cr0 & CR0_PE))
		return;
	/* QEMU's count is an int printed with %6d. */
	fprintf(t->log, "%6d: v=%02x e=%04x i=%d cpl=%u IP=%04x:%08x pc=%08x SP=%04x:%08x",
		(int)t->events++, vec, err, soft, v->cpl, cs->sel, v->hot->eip, cs->base + v->hot->eip,
		v->seg[S_SS].sel, v->hot->gpr[R_ESP]);
	if (vec == EXC_PF)
		fprintf(t->log, " CR2=%08x\n", v->hot->cr2);
	else
		fprintf(t->log, " env->regs[R_EAX]=%08x\n", v->hot->gpr[R_EAX]);
	trace_cpu_state(v, t->log);
}

void trace_external(struct vcpu *v, unsigned vec)
{
	if (v->trace.items & TRACE_INT)
		fprintf(v->trace.log, "Servicing hardware INT=0x%02x\n", vec);
}

void trace_block(struct vcpu *v, const struct tc_block *b, const void *host)
{
	struct trace *t = &v->trace;

	uint32_t cs_base = v->seg[S_CS].base, pc = cs_base + b->eip;

	/* QEMU's TB flags and cflags are its own; bt86 shows the block's
	 * mode bits and its instruction count there.  pc is linear, as QEMU's. */
	if (t->items & TRACE_EXEC)
		fprintf(t->log, "Trace 0: %p [%08x/%08x/%08x/%08x] %s\n", host, cs_base, pc, b->mode,
			b->n_insns, symbols_find(t->syms, pc));
	if (t->items & TRACE_CPU)
		trace_cpu_state(v, t->log);
}
