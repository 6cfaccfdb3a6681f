#include "stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>
#include <capstone/capstone.h>

#include "../mem/gmem.h"
#include "tc.h"

const char *const stats_exit_names[EXIT_REASONS] = {
	[EXIT_CHAIN] = "chain", [EXIT_LOOKUP_MISS] = "lookup_miss", [EXIT_EMULATE] = "emulate",
	[EXIT_ATTENTION] = "attention", [EXIT_STI] = "sti", [EXIT_SIGNAL] = "signal", [EXIT_SOFT_MISS] = "soft_miss",
	[EXIT_DIVIDE_ERROR] = "divide_error", [EXIT_PORT] = "port", [EXIT_INVLPG] = "invlpg",
	[EXIT_INT] = "int", [EXIT_IRET] = "iret", [EXIT_SYSENTER] = "sysenter", [EXIT_SYSEXIT] = "sysexit",
};
static const char *const inval_names[INVAL_CAUSES] = {
	[INVAL_GUEST_WRITE] = "guest_write", [INVAL_MONITOR_WRITE] = "monitor_write",
	[INVAL_UACCESS] = "uaccess",
	[INVAL_KSOFT] = "ksoft",
};
static const char *const signal_names[SIGK_KINDS] = {
	[SIGK_SEGV] = "SIGSEGV", [SIGK_BUS] = "SIGBUS", [SIGK_FPE] = "SIGFPE",
	[SIGK_ILL] = "SIGILL", [SIGK_TRAP] = "SIGTRAP",
};

_Static_assert(ZYDIS_MNEMONIC_MAX_VALUE < STATS_MNEMONICS, "emulated_by is too small");

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static const struct tc *sort_tc;

static uint64_t weight(const struct tc_block *b)
{
	return tc_block_execs(sort_tc, b) * b->n_insns;
}

static int by_weight(const void *a, const void *b)
{
	uint64_t x = weight(*(struct tc_block *const *)a), y = weight(*(struct tc_block *const *)b);
	return x < y ? 1 : x > y ? -1 : 0;
}

/* The `hot` blocks that executed the most guest instructions, best first. */
static size_t hottest(const struct tc *tc, unsigned hot, struct tc_block ***out)
{
	struct tc_block **v = malloc((tc->n_blocks ? tc->n_blocks : 1) * sizeof *v);
	size_t n = 0;

	for (size_t i = 0; v && i < tc->n_blocks; i++)
		if (tc_block_execs(tc, tc->by_host[i]))
			v[n++] = tc->by_host[i];
	sort_tc = tc;
	if (v)
		qsort(v, n, sizeof *v, by_weight);
	*out = v;
	return n < hot ? n : hot;
}

/* Capstone's listing of `len` bytes at `addr`: one JSON string each, or a
 * line each after `indent`. */
static void listing(cs_mode mode, const uint8_t *code, size_t len, uint64_t addr, const char *indent, bool json,
		    FILE *out)
{
	csh cs;
	cs_insn *insn;

	if (!code || cs_open(CS_ARCH_X86, mode, &cs) != CS_ERR_OK)
		return;
	size_t n = cs_disasm(cs, code, len, addr, 0, &insn);
	for (size_t i = 0; i < n; i++) {
		if (json)
			fprintf(out, "%s\"%08" PRIx64 "  %s %s\"", i ? ", " : "", insn[i].address,
				insn[i].mnemonic, insn[i].op_str);
		else
			fprintf(out, "%s%08" PRIx64 "  %s %s\n", indent, insn[i].address, insn[i].mnemonic,
				insn[i].op_str);
	}
	if (n)
		cs_free(insn, n);
	cs_close(&cs);
}

static void disassemble(const struct tc *tc, const struct tc_block *b, FILE *out, bool json)
{
	listing(CS_MODE_32, gmem_ptr(tc->mem, b->phys, b->guest_len), b->guest_len, b->eip, "      ", json, out);
}

/* The block's translation as it sits in the cache (chained branches show
 * their targets' offsets), stubs included, each line at its offset. */
static void disassemble_host(const struct tc *tc, const struct tc_block *b, FILE *out)
{
	fprintf(out, "      translation: %u bytes at cache offset %#x\n", b->host_len, b->host);
	listing(CS_MODE_64, tc->base + b->host, b->host_len, b->host, "        ", false, out);
}

/* Mnemonics the emulator ran, most frequent first; returns how many. */
static unsigned top_emulated(const struct stats *s, unsigned *idx, unsigned max)
{
	unsigned n = 0;
	for (unsigned m = 0; m < STATS_MNEMONICS; m++) {
		if (!s->emulated_by[m])
			continue;
		unsigned i = n < max ? n++ : max - 1;
		if (n == max && s->emulated_by[idx[i]] >= s->emulated_by[m])
			continue;
		idx[i] = m;
		for (; i > 0 && s->emulated_by[idx[i - 1]] < s->emulated_by[idx[i]]; i--) {
			unsigned t = idx[i];
			idx[i] = idx[i - 1];
			idx[i - 1] = t;
		}
	}
	return n;
}

void stats_print(const struct stats *s, const struct tc *tc, unsigned hot, FILE *out)
{
	uint64_t translated = s->insn_verbatim + s->insn_retargeted + s->insn_rewritten + s->insn_callout;

	fprintf(out, "bt86 statistics\n");
	if (s->ring3)
		fprintf(out, "  ring 3: %s; direct execution %s on this host: %s\n", s->ring3,
			s->direct_possible ? "possible" : "unavailable", s->direct_why);
	if (s->direct_runs || s->direct_declined) {
		fprintf(out, "  direct: %" PRIu64 " runs in the ring-3 host process; exits: page fills %" PRIu64 ", guest #PF %" PRIu64 ", emulated %" PRIu64 ", system calls %" PRIu64 ", interrupts and requests %" PRIu64 ", segment reloads %" PRIu64 "; view flushes %" PRIu64 ", fetches run translated %" PRIu64 ", spaces sent back to translation %" PRIu64 ", waits renewed for short turns %" PRIu64 ", pages kept across CR3 loads %" PRIu64 "\n",
			s->direct_runs, s->direct_fills, s->direct_guest_pf, s->direct_emulated, s->direct_syscalls,
			s->direct_kicks, s->direct_reloads, s->direct_flushes, s->direct_unsafe, s->direct_demotions,
			s->direct_declined, s->direct_kept);
	}
	fprintf(out, "  translated: %" PRIu64 " blocks, %" PRIu64 " host bytes, %" PRIu64 " guest instructions\n",
		s->blocks, s->tc_bytes, s->guest_insns);
	fprintf(out, "    verbatim %" PRIu64 " (%.1f%%), re-targeted branches %" PRIu64 " (%.1f%%), rewritten inline %" PRIu64 " (%.1f%%), callouts to the emulator %" PRIu64 " (%.1f%%)\n",
		s->insn_verbatim, pct(s->insn_verbatim, translated), s->insn_retargeted,
		pct(s->insn_retargeted, translated), s->insn_rewritten, pct(s->insn_rewritten, translated),
		s->insn_callout, pct(s->insn_callout, translated));
	if (tc->counting) {
		uint64_t e[4];
		tc_exec_totals(tc, e);
		uint64_t all = e[0] + e[1] + e[2] + e[3];
		fprintf(out, "  executed: %" PRIu64 " guest instructions: verbatim %.1f%%, re-targeted branches %.1f%%, rewritten inline %.1f%%, through the emulator %.1f%%\n",
			all, pct(e[0], all), pct(e[1], all), pct(e[2], all), pct(e[3], all));
		if (s->direct_counted) {
			/* The stub's own handler retires a few hundred an exit: an
			 * upper bound on the guest's share. */
			uint64_t d = s->direct_instructions, total = d + all + s->insn_emulated;
			fprintf(out, "  executed directly: %" PRIu64 " instructions retired in the ring-3 host process (guest code, and its handler's few hundred an exit), %.1f%% of all\n",
				d, pct(d, total));
		}
	}
	if (s->direct_runs && !s->direct_counted)
		fprintf(out, "  executed directly: not counted (perf_event_open gave no instruction counter for the ring-3 host process: no PMU, or perf_event_paranoid)\n");
	fprintf(out, "  emulated (executed by the emulator): %" PRIu64, s->insn_emulated);
	unsigned idx[8];
	unsigned ne = top_emulated(s, idx, 8);
	for (unsigned i = 0; i < ne; i++)
		fprintf(out, "%s%s %" PRIu64, i ? ", " : ": ", ZydisMnemonicGetString((ZydisMnemonic)idx[i]),
			s->emulated_by[idx[i]]);
	fprintf(out, "%s%" PRIu64 " decoded before (from the decode cache); %" PRIu64 " in real mode or 16-bit or based segments\n",
		ne ? "; " : ": ", s->emulated_decode_hits, s->insn_interpreted);
	fprintf(out,
		"  lookups: inline table %" PRIu64 " hits / %" PRIu64 " misses, hash %" PRIu64 " hits / %" PRIu64
		" misses, %" PRIu64 " entries put back from the victim cache\n",
		s->lookup_inline_hits, s->lookup_inline_misses, s->lookup_hash_hits, s->lookup_hash_misses,
		s->lookup_restored);
	fprintf(out, "  time: %.1f%% in translated guest code, %.1f%% in guest ring 3 run directly (hand-overs included), %.1f%% in the monitor (%" PRIu64 " Mcycles)\n",
		pct(s->cycles_guest, s->cycles_total), pct(s->cycles_direct, s->cycles_total),
		100.0 - pct(s->cycles_guest, s->cycles_total) - pct(s->cycles_direct, s->cycles_total),
		s->cycles_total / 1000000);
	fprintf(out, "  chains: %" PRIu64 " made, %" PRIu64 " broken\n", s->chains_made, s->chains_broken);
	fprintf(out, "  shadow paging: %" PRIu64 " hidden faults (%" PRIu64 " 4 MiB runs), %" PRIu64
		     " guest page faults (%" PRIu64 " retries mapped ahead), %" PRIu64 " pages kept across"
		     " CR3 loads, flushes cr3 %" PRIu64 " mode %" PRIu64
		     " capacity %" PRIu64 ", mappings %" PRIu64 " live / %" PRIu64 " peak, %" PRIu64
		     " ring-0 instructions through the kernel views\n",
		s->hidden_faults, s->shadow_runs, s->guest_page_faults, s->prefaults, s->shadow_kept,
		s->shadow_flushes[0],
		s->shadow_flushes[1], s->shadow_flushes[2], s->shadow_mappings, s->shadow_mappings_peak,
		s->uaccess_sites);
	fprintf(out, "  soft TLB: %" PRIu64 " entries made, %" PRIu64 " dropped unchecked at CR3 loads, %" PRIu64
		     " address spaces gone direct (taking %" PRIu64
		     " pages in %" PRIu64 " runs with them), %" PRIu64
		     " outgrew the host mappings; ring 0: %" PRIu64 " entries made for %" PRIu64
		     " instructions that touch churning pages\n",
		s->stlb_fills, s->stlb_dropped, s->stlb_promotions, s->adopted_pages, s->adopted_runs, s->stlb_outgrown, s->stlb_kernel_fills,
		s->ksoft_sites);
	fprintf(out, "  invalidations:");
	for (int i = 0; i < INVAL_CAUSES; i++)
		fprintf(out, " %s %" PRIu64, inval_names[i], s->invalidations[i]);
	fprintf(out, "; blocks invalidated %" PRIu64 "; flushes %" PRIu64 "\n", s->blocks_invalidated, s->flushes);
	fprintf(out, "  exits:");
	for (int i = 0; i < EXIT_REASONS; i++)
		fprintf(out, " %s %" PRIu64, stats_exit_names[i], s->exits[i]);
	fprintf(out, "\n  signals:");
	for (int i = 0; i < SIGK_KINDS; i++)
		fprintf(out, " %s %" PRIu64, signal_names[i], s->signals[i]);
	fprintf(out, "\n  guest events delivered: %" PRIu64 " exceptions, %" PRIu64 " interrupts; host timer set %" PRIu64 " times; %" PRIu64
		     " waits in hlt, %" PRIu64 " of them without sleeping\n",
		s->guest_exceptions, s->guest_interrupts, s->timer_arms, s->idle_waits, s->idle_spins);
	if (!hot)
		return;
	struct tc_block **v;
	size_t n = hottest(tc, hot, &v);
	fprintf(out, "  hottest blocks (by guest instructions executed):\n");
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "    #%zu eip %#010x, %u guest instructions, executed %" PRIu64 " times%s\n", i + 1,
			v[i]->eip, v[i]->n_insns, tc_block_execs(tc, v[i]), v[i]->valid ? "" : ", invalidated");
		disassemble(tc, v[i], out, false);
		disassemble_host(tc, v[i], out);
	}
	free(v);
}

int stats_write_json(const struct stats *s, const struct tc *tc, unsigned hot, FILE *f)
{
	fprintf(f, "{\n  \"ring3\": \"%s\",\n  \"direct_possible\": %s,\n  \"direct_why\": \"", s->ring3 ? s->ring3 : "",
		s->direct_possible ? "true" : "false");
	for (const char *c = s->direct_why; *c; c++)
		fprintf(f, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
	fprintf(f, "\",\n  \"direct\": {\"runs\": %" PRIu64 ", \"fills\": %" PRIu64 ", \"guest_pf\": %" PRIu64 ", \"emulated\": %" PRIu64 ", \"syscalls\": %" PRIu64 ", \"kicks\": %" PRIu64 ", \"reloads\": %" PRIu64 ", \"flushes\": %" PRIu64 ", \"run_translated\": %" PRIu64 ", \"demotions\": %" PRIu64 ", \"declined\": %" PRIu64 ", \"kept\": %" PRIu64 ", \"instructions\": ",
		s->direct_runs, s->direct_fills, s->direct_guest_pf, s->direct_emulated, s->direct_syscalls, s->direct_kicks,
		s->direct_reloads, s->direct_flushes, s->direct_unsafe, s->direct_demotions, s->direct_declined,
		s->direct_kept);
	if (s->direct_counted)
		fprintf(f, "%" PRIu64 "}", s->direct_instructions);
	else
		fprintf(f, "null}");
	fprintf(f, ",\n  \"blocks\": %" PRIu64 ",\n  \"tc_bytes\": %" PRIu64 ",\n  \"guest_insns_translated\": %" PRIu64 ",\n",
		s->blocks, s->tc_bytes, s->guest_insns);
	fprintf(f, "  \"insn_verbatim\": %" PRIu64 ",\n  \"insn_retargeted\": %" PRIu64 ",\n  \"insn_rewritten\": %" PRIu64 ",\n  \"insn_callout\": %" PRIu64 ",\n  \"insn_emulated\": %" PRIu64 ",\n  \"insn_interpreted\": %" PRIu64 ",\n  \"emulated_decode_hits\": %" PRIu64 ",\n",
		s->insn_verbatim, s->insn_retargeted, s->insn_rewritten, s->insn_callout, s->insn_emulated, s->insn_interpreted,
		s->emulated_decode_hits);
	fprintf(f, "  \"emulated_by_mnemonic\": {");
	for (unsigned m = 0, first = 1; m < STATS_MNEMONICS; m++)
		if (s->emulated_by[m]) {
			fprintf(f, "%s\"%s\": %" PRIu64, first ? "" : ", ", ZydisMnemonicGetString((ZydisMnemonic)m),
				s->emulated_by[m]);
			first = 0;
		}
	fprintf(f, "},\n");
	fprintf(f, "  \"lookups\": {\"inline_hits\": %" PRIu64 ", \"inline_misses\": %" PRIu64 ", \"hash_hits\": %" PRIu64 ", \"hash_misses\": %" PRIu64 ", \"restored\": %" PRIu64 "},\n",
		s->lookup_inline_hits, s->lookup_inline_misses, s->lookup_hash_hits, s->lookup_hash_misses,
		s->lookup_restored);
	fprintf(f, "  \"cycles\": {\"guest\": %" PRIu64 ", \"direct\": %" PRIu64 ", \"total\": %" PRIu64 "},\n",
		s->cycles_guest, s->cycles_direct, s->cycles_total);
	fprintf(f, "  \"chains_made\": %" PRIu64 ",\n  \"chains_broken\": %" PRIu64 ",\n", s->chains_made, s->chains_broken);
	fprintf(f, "  \"shadow\": {\"hidden_faults\": %" PRIu64 ", \"guest_page_faults\": %" PRIu64
		   ", \"prefaults\": %" PRIu64 ", \"kept\": %" PRIu64 ", \"flushes\": {\"cr3\": %" PRIu64
		   ", \"mode\": %" PRIu64 ", \"capacity\": %" PRIu64 "}, \"mappings_live\": %" PRIu64
		   ", \"mappings_peak\": %" PRIu64 ", \"uaccess_sites\": %" PRIu64 "},\n",
		s->hidden_faults, s->guest_page_faults, s->prefaults, s->shadow_kept, s->shadow_flushes[0],
		s->shadow_flushes[1],
		s->shadow_flushes[2], s->shadow_mappings, s->shadow_mappings_peak, s->uaccess_sites);
	fprintf(f, "  \"soft_tlb\": {\"entries\": %" PRIu64 ", \"dropped_at_cr3\": %" PRIu64 ", \"promotions\": %" PRIu64 ", \"adopted_runs\": %" PRIu64
		   ", \"adopted_pages\": %" PRIu64 ", \"outgrown\": %" PRIu64
		   ", \"kernel_entries\": %" PRIu64 ", \"kernel_sites\": %" PRIu64 "},\n",
		s->stlb_fills, s->stlb_dropped, s->stlb_promotions, s->adopted_runs, s->adopted_pages, s->stlb_outgrown,
		s->stlb_kernel_fills, s->ksoft_sites);
	fprintf(f, "  \"invalidations\": {");
	for (int i = 0; i < INVAL_CAUSES; i++)
		fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", inval_names[i], s->invalidations[i]);
	fprintf(f, "},\n  \"blocks_invalidated\": %" PRIu64 ",\n  \"flushes\": %" PRIu64 ",\n  \"exits\": {",
		s->blocks_invalidated, s->flushes);
	for (int i = 0; i < EXIT_REASONS; i++)
		fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", stats_exit_names[i], s->exits[i]);
	fprintf(f, "},\n  \"signals\": {");
	for (int i = 0; i < SIGK_KINDS; i++)
		fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", signal_names[i], s->signals[i]);
	uint64_t e[4] = {0, 0, 0, 0};
	if (tc->counting)
		tc_exec_totals(tc, e);
	fprintf(f, "},\n  \"guest_exceptions\": %" PRIu64 ",\n  \"guest_interrupts\": %" PRIu64 ",\n  \"timer_arms\": %" PRIu64 ",\n  \"idle_waits\": %" PRIu64 ",\n  \"idle_spins\": %" PRIu64 ",\n",
		s->guest_exceptions, s->guest_interrupts, s->timer_arms, s->idle_waits, s->idle_spins);
	fprintf(f, "  \"executed\": {\"counted\": %s, \"verbatim\": %" PRIu64 ", \"retargeted\": %" PRIu64 ", \"rewritten\": %" PRIu64 ", \"emulator\": %" PRIu64 "},\n  \"hot_blocks\": [",
		tc->counting ? "true" : "false", e[0], e[1], e[2], e[3]);
	struct tc_block **v = NULL;
	size_t n = hot ? hottest(tc, hot, &v) : 0;
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s\n    {\"eip\": %u, \"guest_insns\": %u, \"executions\": %" PRIu64 ", \"disassembly\": [",
			i ? "," : "", v[i]->eip, v[i]->n_insns, tc_block_execs(tc, v[i]));
		disassemble(tc, v[i], f, true);
		fprintf(f, "]}");
	}
	free(v);
	fprintf(f, "%s]\n}\n", n ? "\n  " : "");
	return fclose(f) == 0 ? 0 : -1;
}
