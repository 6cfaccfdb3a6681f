/*
 * The guest event log: QEMU's -d ITEMS and -D FILE.
 *
 * Each item a run asks for writes its records, in the layout QEMU's
 * i386 target gives them, to one log (stderr unless -D names a file), so
 * that a log from bt86 and one from QEMU can be compared line by line.
 */
#ifndef BT86_TRACE_H
#define BT86_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct vcpu;
struct tc_block;
struct symbols;

/* Log items (-d). */
#define TRACE_INT 0x1u     /* every interrupt and exception delivered in protected mode */
#define TRACE_EXEC 0x2u    /* each block the monitor's loop enters at its start */
#define TRACE_CPU 0x4u     /* the registers at each such entry */
#define TRACE_NOCHAIN 0x8u /* no chained exits or inline lookups: every block is such an entry */

struct trace {
	FILE *log;          /* NULL: nothing is logged */
	unsigned items;     /* TRACE_* */
	unsigned long events; /* interrupts logged so far: each record's number */
	const struct symbols *syms; /* the kernel's functions, for TRACE_EXEC */
};

/* Parses -d's comma-separated list into *items; "help" lists the items
 * on out and sets *items to 0.  Fails with a message in err. */
int trace_parse_items(const char *spec, unsigned *items, FILE *out, char *err, size_t errlen);

/* Logs the delivery of vector vec about to start from the vcpu's state:
 * QEMU's "v=.. e=.. i=.. cpl=.." line and the register dump after it.
 * soft is an int n, int3 or into. */
void trace_interrupt(struct vcpu *v, unsigned vec, uint32_t err, bool soft);

/* Logs the acknowledgement of external interrupt vec, in any mode, as
 * QEMU's "Servicing hardware INT" line (its record follows). */
void trace_external(struct vcpu *v, unsigned vec);

/* Logs the entry of block b, whose code is at host, for TRACE_EXEC and
 * TRACE_CPU: QEMU's "Trace 0: ..." line and register dump. */
void trace_block(struct vcpu *v, const struct tc_block *b, const void *host);

/* The register dump of QEMU's "info registers" (and of each -d int
 * record), for the parts of the state bt86 models. */
void trace_cpu_state(const struct vcpu *v, FILE *f);

#endif
