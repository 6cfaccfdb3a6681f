#!/usr/bin/env bash
# Runs one guest image under bt86 and, when qemu-system-i386 is installed,
# under QEMU, and fails unless:
#  - bt86's serial output is a complete TAP run with no failures,
#  - bt86 leaves through the exit port with status 1 (guest reported success),
#  - QEMU prints the same output and leaves with the same status,
#  - and any disk images the two runs were given end up identical.
# usage: run_guest.sh BT86 IMAGE [options for both]
# QEMU_CPU in the environment is QEMU's -cpu, for features its default
# qemu32 model lacks and bt86's has.  STATS_EXPECT in the environment is an
# extended regular expression bt86's --stats report must match (the
# mechanism a guest is there to exercise took part); STATS_REJECT one it
# must not match (the slow path it replaces did not).
# RING3 in the environment is bt86's --ring3 (direct: the test is skipped,
# status 77, on a host that cannot run guest ring 3 directly).
# In the options, DISK0 and DISK1 stand for fresh 1 MiB pattern images
# (mkdisk.py), one set a system.
set -uo pipefail
bt86=$1 image=$2
shift 2
name=$(basename "$image" .elf)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
here=$(dirname "$0")
args=("$@")
disks=()

# Sets sys_args to the options with DISKn replaced by SYSTEM's own images.
options_for() {
	sys_args=()
	for a in "${args[@]}"; do
		for d in 0 1; do
			if [[ $a == *DISK$d* ]]; then
				python3 "$here/mkdisk.py" "$out/$1.disk$d" "$d" 2048
				a=${a//DISK$d/$out/$1.disk$d}
				[[ $1 == bt86 ]] && disks+=("$d")
			fi
		done
		sys_args+=("$a")
	done
}

options_for bt86
stats=${STATS_EXPECT:-}${STATS_REJECT:-}
timeout 120 "$bt86" ${stats:+--stats} ${RING3:+--ring3="$RING3"} "${sys_args[@]}" "$image" </dev/null \
	>"$out/bt86.out" 2>"$out/bt86.err"
bt86_status=$?
if [ -n "${RING3:-}" ] && [ "$bt86_status" -eq 8 ] && grep -q -- "--ring3=$RING3: " "$out/bt86.err"; then
	echo "SKIP $name: $(cat "$out/bt86.err")"
	exit 77
fi
fail=0
if [ -n "${STATS_EXPECT:-}" ] && ! grep -qE "$STATS_EXPECT" "$out/bt86.err"; then
	echo "FAIL $name: bt86's --stats do not show /$STATS_EXPECT/"; fail=1
fi
if [ -n "${STATS_REJECT:-}" ] && grep -qE "$STATS_REJECT" "$out/bt86.err"; then
	echo "FAIL $name: bt86's --stats show /$STATS_REJECT/"; fail=1
fi
if [ "$bt86_status" -ne 1 ]; then
	echo "FAIL $name: bt86 exit status $bt86_status, expected 1"; fail=1
fi
plan=$(grep -m1 -E '^1\.\.[0-9]+$' "$out/bt86.out" | cut -d. -f3)
count=$(grep -cE '^(not )?ok [0-9]+' "$out/bt86.out")
if [ -z "$plan" ] || [ "$count" -ne "$plan" ]; then
	echo "FAIL $name: TAP plan ${plan:-missing}, $count results"; fail=1
fi
if grep -q '^not ok' "$out/bt86.out"; then
	echo "FAIL $name: failing TAP lines under bt86"; fail=1
fi
if command -v qemu-system-i386 >/dev/null; then
	options_for qemu
	timeout 120 qemu-system-i386 -kernel "$image" -display none -serial stdio -no-reboot \
		-device isa-debug-exit,iobase=0xf4,iosize=4 -m 128 ${QEMU_CPU:+-cpu "$QEMU_CPU"} "${sys_args[@]}" \
		</dev/null >"$out/qemu.out" 2>"$out/qemu.err"
	qemu_status=$?
	if [ "$qemu_status" -ne "$bt86_status" ]; then
		echo "FAIL $name: exit status bt86 $bt86_status, QEMU $qemu_status"; fail=1
	fi
	if ! diff -u --label qemu --label bt86 "$out/qemu.out" "$out/bt86.out"; then
		echo "FAIL $name: output differs from QEMU's"; fail=1
	fi
	for d in "${disks[@]}"; do
		if ! cmp "$out/qemu.disk$d" "$out/bt86.disk$d"; then
			echo "FAIL $name: disk $d differs from QEMU's after the run"; fail=1
		fi
	done
else
	echo "note: qemu-system-i386 not installed; compared against TAP only"
fi
if [ "$fail" -ne 0 ]; then
	echo "--- bt86 output"; cat "$out/bt86.out"; echo "--- bt86 stderr"; cat "$out/bt86.err"
	exit 1
fi
echo "PASS $name ($count tests, same as QEMU)"
