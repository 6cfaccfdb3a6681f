#!/usr/bin/env bash
# Not a timing test: checks that the nanobenchmark guest runs to the end
# under bt86 and reports every figure the harness reads.
set -uo pipefail
out=$(timeout 120 "$1" -append quick "$2" </dev/null)
status=$?
missing=0
for f in syscall port_in port_out cli_sti pushf_popf call_ret indirect_jump user_page_fault divide_error \
	pte_invlpg context_switch compute_ring3 compute_ring0 done; do
	grep -qE "^bench $f( [0-9]+)?$" <<<"$out" || { echo "missing figure: $f"; missing=1; }
done
[ "$status" -eq 1 ] || { echo "bt86 exit status $status, expected 1"; missing=1; }
[ "$missing" -eq 0 ] && echo "1 passed, 0 failed" || { echo "$out"; echo "0 passed, 1 failed"; exit 1; }
