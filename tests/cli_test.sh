#!/usr/bin/env bash
# The runner's command line: help and version, and one clear line with a
# non-zero status for every kind of bad input (never a crash or a signal).
# usage: cli_test.sh BT86 GOOD_IMAGE PCBOARD_IMAGE
set -uo pipefail
bt86=$1 good=$2 pcboard=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0

# expect STATUS PATTERN -- ARGS...: stderr must be one line matching PATTERN
expect() {
	local want=$1 pattern=$2
	shift 3
	"$bt86" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	local got=$?
	local lines
	lines=$(wc -l <"$tmp/err")
	if [ "$got" -ne "$want" ] || ! grep -qE -- "$pattern" "$tmp/err" || [ "$lines" -ne 1 ]; then
		echo "FAIL: bt86 $* -> status $got (want $want), stderr:"; cat "$tmp/err"
		fails=$((fails + 1))
	else
		passes=$((passes + 1))
	fi
}

"$bt86" --help >"$tmp/help" && grep -q "usage: bt86" "$tmp/help" && passes=$((passes + 1)) || { echo "FAIL: --help"; fails=$((fails + 1)); }
"$bt86" --version | grep -qE '^bt86 [0-9]+\.[0-9]+' && passes=$((passes + 1)) || { echo "FAIL: --version"; fails=$((fails + 1)); }

expect 2 "no kernel given" --
expect 2 "unknown option --frobnicate" -- --frobnicate "$good"
expect 2 "option -m needs a value" -- "$good" -m
expect 2 "-m 12Q" -- -m 12Q "$good"
expect 2 "-m 1M: guest memory must be" -- -m 1M "$good"
expect 2 "-m 8G: guest memory must be" -- -m 8G "$good"
expect 2 "--tc-size 100K: expected" -- --tc-size 100K "$good"
expect 2 "--tc-size 1M: expected 4M to 1G" -- --tc-size 1M "$good" # smaller than the cache's tables
expect 2 "unexpected argument" -- "$good" "$good"
expect 6 "/nonexistent/k.elf: No such file" -- /nonexistent/k.elf
printf 'not an image' >"$tmp/text"
expect 6 "$tmp/text: not a Multiboot kernel" -- "$tmp/text"
head -c 100 "$good" >"$tmp/short"
expect 6 "$tmp/short: not a Multiboot kernel" -- "$tmp/short"
expect 6 "/nonexistent/mod: No such file" -- -initrd /nonexistent/mod "$good"
expect 2 "-d int,frob: unknown log item frob" -- -d int,frob "$good"
expect 2 "option -d needs a value" -- "$good" -d
expect 2 "the guest is stopped and stdin is closed" -- -S "$good"
# -S with the console's monitor: Ctrl-A c, then cont runs the guest.
printf '\001ccont\r' | "$bt86" -S "$good" >"$tmp/out" 2>"$tmp/err"
st=$?
if [ "$st" -eq 1 ] && grep -q "^ok" "$tmp/out"; then passes=$((passes + 1)); else
	echo "FAIL: -S, then cont from the console's monitor: status $st"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1)); fi
expect 6 "-gdb udp:1: expected tcp::PORT" -- -gdb udp:1 "$good"
expect 6 "cannot write /nonexistent/int.log" -- -d int -D /nonexistent/int.log "$good"
"$bt86" -d help >"$tmp/items" && grep -qE "^int +interrupts" "$tmp/items" && grep -qE "^nochain " "$tmp/items" && passes=$((passes + 1)) || { echo "FAIL: -d help"; fails=$((fails + 1)); }
head -c 3000000 /dev/zero >"$tmp/big"
expect 6 "$tmp/big: module .* does not fit" -- -m 2M -initrd "$tmp/big" "$good"

# Linux bzImages that cannot boot: each gets one line naming the problem.
# bzimage FILE VERSION PAYLOAD_BYTES CMDLINE_SIZE: a setup header (4 setup
# sectors, loaded high at 1 MiB) and a protected-mode part of zeros.
bzimage() {
	python3 - "$@" <<'PY'
import struct, sys
path, version, payload, cmax = sys.argv[1], int(sys.argv[2], 16), int(sys.argv[3]), int(sys.argv[4])
img = bytearray(5 * 512)
img[0x1F1] = 4
img[0x200:0x202] = b"\xEB\x66"
img[0x202:0x206] = b"HdrS"
struct.pack_into("<H", img, 0x206, version)
img[0x211] = 1                                     # LOADED_HIGH
struct.pack_into("<I", img, 0x214, 0x100000)       # code32_start
struct.pack_into("<I", img, 0x22C, 0x37FFFFFF)     # initrd_addr_max
struct.pack_into("<I", img, 0x238, cmax)
open(path, "wb").write(bytes(img) + bytes(payload))
PY
}
bzimage "$tmp/old" 0205 4096 255
expect 6 "$tmp/old: boot protocol 2.05 is too old" -- "$tmp/old"
bzimage "$tmp/nopm" 020f 0 255
expect 6 "$tmp/nopm: truncated" -- "$tmp/nopm"
bzimage "$tmp/huge" 020f 3000000 255
expect 6 "$tmp/huge: the kernel .* does not fit in guest memory" -- -m 2M "$tmp/huge"
bzimage "$tmp/short_cmd" 020f 4096 8
expect 6 "$tmp/short_cmd: the command line is longer than the kernel's 8 bytes" -- -append "console=ttyS0" "$tmp/short_cmd"
expect 6 "$tmp/big: the initrd .* does not fit in guest memory" -- -m 2M -initrd "$tmp/big" "$tmp/short_cmd"

# Disks: QEMU's -drive syntax, raw images on the primary ATA channel.
head -c 4096 /dev/zero >"$tmp/disk.img"
head -c 100 /dev/zero >"$tmp/tiny.img"
expect 6 "disk image /nonexistent/d.img: No such file" -- -hda /nonexistent/d.img "$good"
expect 6 "disk image $tmp/tiny.img: smaller than one 512-byte sector" -- -hdb "$tmp/tiny.img" "$good"
expect 6 "disk image $tmp: Is a directory" -- -drive "file=$tmp,index=0,format=raw" "$good"
expect 6 "disk image /dev/null: not a regular file" -- -hda /dev/null "$good"
expect 2 "format=qcow2: bt86 reads raw images only" -- -drive "file=$tmp/disk.img,format=qcow2" "$good"
expect 2 "index=2: bt86 has the primary ATA channel only" -- -drive "file=$tmp/disk.img,index=2" "$good"
expect 2 "-hdc: bt86 has the primary ATA channel only" -- -hdc "$tmp/disk.img" "$good"
expect 2 "if=virtio: bt86 has IDE" -- -drive "file=$tmp/disk.img,if=virtio" "$good"
expect 2 "unsupported key cache" -- -drive "file=$tmp/disk.img,cache=none" "$good"
expect 2 "no file=" -- -drive "index=0,format=raw" "$good"
expect 2 "drive index 0 is given twice" -- -hda "$tmp/disk.img" -drive "file=$tmp/disk.img,index=0" "$good"

# A good run: the exit port's status, and the statistics in both forms.
"$bt86" --stats --stats-json "$tmp/s.json" --stats-hot 2 -append "a b" "$good" </dev/null >"$tmp/out" 2>"$tmp/err"
status=$?
if [ "$status" -eq 1 ] && grep -q "^ok 1" "$tmp/out" && grep -q "chains:" "$tmp/err" &&
	grep -q "hottest blocks" "$tmp/err" && grep -q "translation: [0-9]* bytes at cache offset" "$tmp/err" && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['blocks'] > 0 and d['executed']['counted']" "$tmp/s.json"; then
	passes=$((passes + 1))
else
	echo "FAIL: a good run with statistics (status $status)"; cat "$tmp/err"; fails=$((fails + 1))
fi
expect 6 "cannot write /nonexistent/dir/s.json" -- --stats-json /nonexistent/dir/s.json "$good"

# The text screen at the end of a run, and a reset through port 0x92: the
# guest writes a line to the screen and resets; the run ends cleanly, as
# QEMU's does with -no-reboot.
"$bt86" --vga-log "$tmp/screen" -append reset "$pcboard" </dev/null >"$tmp/out" 2>"$tmp/err"
status=$?
if [ "$status" -eq 0 ] && grep -qx "bt86: the guest reset the machine (system control port A)" "$tmp/err" &&
	[ "$(head -1 "$tmp/screen")" = "bt86 text screen: reset through port 0x92" ] &&
	[ "$(wc -l <"$tmp/screen")" -eq 25 ]; then
	passes=$((passes + 1))
else
	echo "FAIL: --vga-log after a port 0x92 reset (status $status)"; cat "$tmp/err"; cat "$tmp/screen"
	fails=$((fails + 1))
fi
expect 6 "cannot write /nonexistent/dir/screen" -- --vga-log /nonexistent/dir/screen "$good"

# Ring 3's form (issue 14): --stats names it and what the start-up probe
# found, which must agree with whether this host runs a 32-bit program:
# where it does, auto runs ring 3 directly (unless the host cannot make
# cpuid fault, which --stats then names), --ring3=direct runs the guest
# and --ring3=translated keeps it translated; where it does not,
# --ring3=direct stops with the reason.
expect 2 "--ring3=sideways: expected auto, translated or direct" -- --ring3=sideways "$good"
stats_say() { # WHAT REGEX [options]
	local what=$1 re=$2
	shift 2
	"$bt86" --stats "$@" "$good" </dev/null >/dev/null 2>"$tmp/err"
	if grep -qE "$re" "$tmp/err"; then
		passes=$((passes + 1))
	else
		echo "FAIL: --stats $* does not say $what:"; grep "ring 3" "$tmp/err"
		fails=$((fails + 1))
	fi
}
printf 'int main(void) { return 0; }\n' >"$tmp/m32.c"
if gcc -m32 -static -o "$tmp/m32" "$tmp/m32.c" 2>/dev/null; then
	if "$tmp/m32" 2>/dev/null; then
		stats_say "ring 3 is direct (or why not)" \
			"^  ring 3: (direct \(auto\); direct execution possible|translated \(auto\); direct execution unavailable on this host: .*cpuid)"
		direct_on=$(grep -c "ring 3: direct" "$tmp/err")
		stats_say "ring 3 is translated when asked" "^  ring 3: translated; direct execution possible" --ring3=translated
		if [ "$direct_on" -ne 0 ]; then
			"$bt86" --ring3=direct "$good" </dev/null >/dev/null 2>"$tmp/err"
			got=$?
			if [ "$got" -eq 1 ] && [ ! -s "$tmp/err" ]; then
				passes=$((passes + 1))
			else
				echo "FAIL: --ring3=direct $good -> status $got (want 1), stderr:"; cat "$tmp/err"
				fails=$((fails + 1))
			fi
		fi
	else
		stats_say "ring 3 is translated, direct unavailable" "^  ring 3: translated \(auto\); direct execution unavailable"
		expect 8 "--ring3=direct: this host cannot run guest ring 3 directly: " -- --ring3=direct "$good"
	fi
else
	echo "note: no -m32 static toolchain; the ring-3 probe is not cross-checked"
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
