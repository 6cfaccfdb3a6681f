#!/usr/bin/env bash
# The -d log (-D FILE): runs guest images under bt86 and, when
# qemu-system-i386 is installed, under QEMU with the same log options, and
# fails unless:
#  - under -d int, bt86's log is whole records: QEMU's "v=.. e=.. i=..
#    cpl=.." line and its 16-line register dump, each,
#  - for EXACT, the whole -d int log equals QEMU's, once QEMU's log is cut
#    to what bt86 writes (from its first record; its lazy-flags CCS and
#    EFER lines dropped) and the two differences the SDM decides (docs,
#    "Known differences": the accessed bit of a CS loaded by a far
#    transfer, the busy type of a TR loaded by ltr) are put the SDM's way;
#  - for SYNC, the -d int record lines of synchronous events (exceptions,
#    int n) equal QEMU's, in order, less their numbers (the timer's records
#    depend on timing, and the dumps hold flags the SDM leaves undefined,
#    as after div);
#  - for EXEC, -d exec,nochain names the kernel's functions in the order
#    QEMU's does (consecutive blocks of one function counted once: the two
#    cut blocks at different places), -d exec alone logs fewer entries
#    (chained blocks run without the monitor), and -d exec,cpu,nochain
#    follows each entry with its register dump.
# usage: trace_log.sh BT86 EXACT SYNC EXEC
set -uo pipefail
bt86=$1 exact=$2 sync=$3 exec=$4
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0

# run SYSTEM IMAGE [ITEMS]: the system's -d ITEMS (int by default) log
# of IMAGE, at $out/SYSTEM.log.
run() {
	local items=${3:-int}
	if [ "$1" = bt86 ]; then
		timeout 120 "$bt86" -d "$items" -D "$out/bt86.log" "$2" </dev/null >/dev/null 2>"$out/bt86.err"
	elif [ "$items" != int ]; then
		timeout 120 qemu-system-i386 -kernel "$2" -display none -serial null -no-reboot \
			-device isa-debug-exit,iobase=0xf4,iosize=4 -m 128 -d "$items" -D "$out/qemu.log" </dev/null
	else
		timeout 120 qemu-system-i386 -kernel "$2" -display none -serial null -no-reboot \
			-device isa-debug-exit,iobase=0xf4,iosize=4 -m 128 -d int -D "$out/qemu.raw" </dev/null
		awk '/ v=/ { p = 1 } /^SMM: / { p = 0 } p' "$out/qemu.raw" |
			grep -v '^CCS=\|^EFER=\|^check_exception' |
			sed -E 's/^(CS =[0-9a-f]{4} [0-9a-f]{8} [0-9a-f]{8} [0-9a-f]{4}[9bdf])a(00 DPL=[0-3] CS(32|16) \[.)R-\]/\1b\2RA]/;
				s/^(TR =[0-9a-f]{4} [0-9a-f]{8} [0-9a-f]{8} [0-9a-f]{4})89(00 DPL=0) TSS32-avl/\18b\2 TSS32-busy/' >"$out/qemu.log"
	fi
}

# check IMAGE: bt86's log is whole records, one per event.
check() {
	local name records lines
	name=$(basename "$1" .elf)
	records=$(grep -c ' v=' "$out/bt86.log")
	lines=$(grep -vc '^Servicing hardware INT=' "$out/bt86.log")
	if [ "$records" -lt 1 ] || [ "$lines" -ne $((records * 17)) ]; then
		echo "FAIL $name: $records records in $lines lines, expected 17 lines each"; fail=1
	fi
	echo "$name: $records records"
}

# functions LOG: the kernel functions of LOG's block entries (pc in the
# kernel's 1-16 MiB, "?" for none), consecutive repeats dropped.
functions() {
	grep '^Trace 0: ' "$1" |
		sed -E 's/^Trace 0: [^ ]+ \[[0-9a-f]{8}\/([0-9a-f]{8})\/[0-9a-f]{8}\/[0-9a-f]{8}\] ?(.*)$/\1 \2/' |
		awk '$1 >= "00100000" && $1 < "01000000" { f = NF > 1 ? $2 : "?"; if (f != last) print f; last = f }'
}

run bt86 "$exact"
check "$exact"
cp "$out/bt86.log" "$out/exact.bt86"
run bt86 "$exec" exec
chained=$(grep -c '^Trace 0: ' "$out/bt86.log")
run bt86 "$exec" exec,cpu,nochain
entries=$(grep -c '^Trace 0: ' "$out/bt86.log")
if [ "$(wc -l <"$out/bt86.log")" -ne $((entries * 17)) ] || [ "$(grep -c '^EIP=' "$out/bt86.log")" -ne "$entries" ]; then
	echo "FAIL $(basename "$exec"): -d exec,cpu: not a register dump after each of $entries entries"; fail=1
fi
run bt86 "$exec" exec,nochain
functions "$out/bt86.log" >"$out/exec.bt86"
entries=$(grep -c '^Trace 0: ' "$out/bt86.log")
if [ "$chained" -lt 1 ] || [ "$chained" -ge "$entries" ]; then
	echo "FAIL $(basename "$exec"): block entries: $chained chained, $entries unchained"; fail=1
fi
echo "$(basename "$exec" .elf): $entries block entries unchained, $chained chained, $(wc -l <"$out/exec.bt86") function changes"
run bt86 "$sync"
check "$sync"
if ! command -v qemu-system-i386 >/dev/null; then
	echo "note: qemu-system-i386 not installed; logs not compared with QEMU's"
	exit "$fail"
fi
grep -E ' v=[01][0-9a-f] | i=1 ' "$out/bt86.log" | sed -E 's/^ *[0-9]+: //' >"$out/sync.bt86"
run qemu "$sync"
grep -E ' v=[01][0-9a-f] | i=1 ' "$out/qemu.log" | sed -E 's/^ *[0-9]+: //' >"$out/sync.qemu"
if ! cmp -s "$out/sync.qemu" "$out/sync.bt86"; then
	diff -u --label qemu --label bt86 "$out/sync.qemu" "$out/sync.bt86" | head -40
	echo "FAIL $(basename "$sync"): synchronous events differ from QEMU's"; fail=1
fi
run qemu "$exec" exec,nochain
functions "$out/qemu.log" >"$out/exec.qemu"
if [ ! -s "$out/exec.bt86" ] || ! cmp -s "$out/exec.qemu" "$out/exec.bt86"; then
	diff -u --label qemu --label bt86 "$out/exec.qemu" "$out/exec.bt86" | head -40
	echo "FAIL $(basename "$exec"): -d exec functions differ from QEMU's"; fail=1
fi
run qemu "$exact"
if ! cmp -s "$out/qemu.log" "$out/exact.bt86"; then
	diff -u --label qemu --label bt86 "$out/qemu.log" "$out/exact.bt86" | head -40
	echo "FAIL $(basename "$exact"): log differs from QEMU's"; fail=1
fi
[ "$fail" -eq 0 ] && echo "PASS: -d logs as QEMU's"
exit "$fail"
