/* Shared pieces of the unit tests: suite constructors and a small machine
 * (guest RAM, cache, VCPU, board) that runs guest code through bt86. */
#ifndef BT86_UNIT_H
#define BT86_UNIT_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/stats.h"
#include "cache/tc.h"
#include "cpu/run.h"
#include "devices/board.h"
#include "mem/gmem.h"
#include "mem/shadow.h"
#include "translator/translate.h"

Suite *classify_suite(void);
Suite *rewrite_suite(void);
Suite *cache_suite(void);
Suite *loader_suite(void);
Suite *devices_suite(void);
Suite *insn_suite(void);
Suite *robust_suite(void);
Suite *paging_suite(void);
Suite *contain_suite(void);
Suite *direct_suite(void);

#define GUEST_CODE 0x100000u

struct machine {
	struct gmem mem;
	struct shadow shadow;
	struct tc tc;
	struct stats stats;
	struct vcpu v;
	struct board board;
	struct xlate x;
	FILE *serial;
	char *serial_buf;
	size_t serial_len;
};

/* Sets up a 16 MiB machine; every test runs in its own process (CK_FORK),
 * so each may reserve the low 4 GiB afresh. */
void machine_init(struct machine *m, int counting);
/* Copies code to GUEST_CODE, appends hlt, and runs it to the hlt. */
void machine_run(struct machine *m, const void *code, size_t len);

#endif
