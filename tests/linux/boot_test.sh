#!/usr/bin/env bash
# Debian's stock i386 kernel under bt86, with an initramfs whose /init runs
# checks (tests/linux/init).  Fetches the kernel and busybox with apt-get
# download on first use (scripts/fetch-linux).  Asserts that the kernel boots
# to /init, that its shell mounts proc, sysfs and tmpfs, runs 100 fork+exec,
# a pipe and a file round trip, and that the run ends cleanly when the kernel
# halts after poweroff.  Every /init line is printed.
# usage: boot_test.sh BT86 DIR
set -uo pipefail
bt86=$1 dir=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/scripts/fetch-linux" "$dir" || { echo "FAIL: could not fetch the kernel and busybox"; exit 1; }
out=$(mktemp) err=$(mktemp)
day_before=$(date -u +%Y-%m-%d)
trap 'rm -f "$out" "$err"' EXIT
timeout 300 "$bt86" -m 256 -kernel "$dir/vmlinuz" -initrd "$dir/initrd.cpio.gz" \
	-append "console=ttyS0 quiet panic=-1" </dev/null >"$out" 2>"$err"
status=$?
day_after=$(date -u +%Y-%m-%d)
grep -E '^init:|^/init:' "$out"
cat "$err"
fails=0
for want in "init: started" "init: uname -m is i686" \
	"init: /proc/cpuinfo names the bt86 virtual CPU" "init: sysfs and tmpfs are mounted" "init: 100 fork+exec of /bin/true" \
	"init: pipe says HELLO THROUGH A PIPE" "init: a file written and read back" "init: done"; do
	grep -qF "$want" "$out" || { echo "FAIL: no '$want' from /init"; fails=$((fails + 1)); }
done
# The kernel's clock comes from the RTC, which tells the host's time.
grep -qE "^init: the date is ($day_before|$day_after)" "$out" ||
	{ echo "FAIL: the guest's date is not the host's ($day_before)"; fails=$((fails + 1)); }
[ "$status" -eq 0 ] || { echo "FAIL: bt86 exit status $status, expected 0"; fails=$((fails + 1)); }
grep -qE "reset the machine|halted" "$err" || { echo "FAIL: the run did not end by a reset or a halt"; fails=$((fails + 1)); }
if [ "$fails" -ne 0 ]; then
	tail -40 "$out"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "1 passed, 0 failed"
