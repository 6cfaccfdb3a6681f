#!/usr/bin/env bash
# The GDB stub: runs session.gdb (gdb -batch) against bt86's stub and, when
# qemu-system-i386 is installed, against QEMU's, on the debuggee guest,
# sending gdb SIGINT (Ctrl-C) while the guest spins, and fails unless:
#  - the guest passes (its TAP results need the debugger's writes) and
#    leaves through the exit port with status 1,
#  - its watchpoints stopped it with the values the guest stores and reads,
#  - gdb's answers are the same under both, less the first stop (QEMU's
#    is in the firmware at the reset vector, bt86's at the kernel's entry)
#    and where Ctrl-C lands in the guest's spin loop,
#  - and a second session's kill ends bt86 with status 0.
# usage: gdb_test.sh BT86 DEBUGGEE
set -uo pipefail
bt86=$1 image=$2
here=$(dirname "$0")
out=$(mktemp -d)
trap 'rm -rf "$out"; jobs -p | xargs -r kill 2>/dev/null' EXIT
fail=0

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# session SYSTEM SCRIPT: runs the system under SCRIPT's gdb session; the
# answers in $out/SYSTEM.gdb, the serial output in $out/SYSTEM.out, the
# exit status in $out/SYSTEM.status.
session() {
	local port pid gpid
	port=$(free_port)
	sed "s/PORT/$port/" "$2" >"$out/$1.script"
	if [ "$1" = bt86 ]; then
		timeout 60 "$bt86" -gdb "tcp::$port" -S "$image" </dev/null >"$out/$1.out" 2>"$out/$1.err" &
	else
		timeout 60 qemu-system-i386 -kernel "$image" -display none -serial "file:$out/$1.out" -no-reboot \
			-device isa-debug-exit,iobase=0xf4,iosize=4 -m 128 -gdb "tcp::$port" -S </dev/null 2>"$out/$1.err" &
	fi
	pid=$!
	sleep 0.5
	gdb -batch -nx -x "$out/$1.script" "$image" >"$out/$1.gdb" 2>&1 &
	gpid=$!
	if grep -q '^continue$' "$2" && grep -q 'release' "$2"; then
		# Ctrl-C once the guest spins: after the second checkpoint's answer.
		for _ in $(seq 100); do
			grep -q 'Breakpoint 3,' "$out/$1.gdb" && break
			sleep 0.1
		done
		sleep 0.5
		kill -INT "$gpid"
	fi
	wait "$gpid"
	wait "$pid"
	echo $? >"$out/$1.status"
}

# answers FILE: gdb's output less the first stop, the address where
# Ctrl-C found the spinning guest (either instruction of its loop) and
# the script's temporary name.
answers() {
	sed 1d "$1" | awk 'skip { skip = 0; next } /received signal SIGINT/ { skip = 1 } { print }' |
		sed -E 's#^.*(qemu|bt86)\.script:#SCRIPT:#'
}

session bt86 "$here/session.gdb"
if [ "$(cat "$out/bt86.status")" -ne 1 ] || grep -q '^not ok' "$out/bt86.out" || ! grep -q '^# released' "$out/bt86.out"; then
	echo "FAIL: under gdb, bt86 exit status $(cat "$out/bt86.status"), expected 1; serial output:"
	cat "$out/bt86.out" "$out/bt86.err"; fail=1
fi
for want in 'New value = 10' 'Value = 6210279' 'Value = 4002' 'Value = 30' 'New value = 8'; do
	if ! grep -q "^$want\$" "$out/bt86.gdb"; then
		echo "FAIL: no watchpoint stop with '$want' under bt86"; fail=1
	fi
done
if command -v qemu-system-i386 >/dev/null; then
	session qemu "$here/session.gdb"
	if ! diff -u --label qemu --label bt86 <(answers "$out/qemu.gdb") <(answers "$out/bt86.gdb"); then
		echo "FAIL: gdb's answers differ from QEMU's"; fail=1
	fi
	if ! cmp -s "$out/qemu.out" "$out/bt86.out"; then
		echo "FAIL: serial output differs from QEMU's"; fail=1
	fi
else
	echo "note: qemu-system-i386 not installed; not compared with QEMU's stub"
fi
session bt86 "$here/kill.gdb"
if [ "$(cat "$out/bt86.status")" -ne 0 ] || ! grep -q 'terminated from GDB' "$out/bt86.err"; then
	echo "FAIL: kill from gdb: bt86 exit status $(cat "$out/bt86.status"), expected 0"; cat "$out/bt86.err"; fail=1
fi
[ "$fail" -eq 0 ] && echo "PASS: gdb sessions: the same answers as QEMU's stub, kill ends the run"
exit "$fail"
