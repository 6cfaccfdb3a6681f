#!/usr/bin/env bash
# Debian's stock i386 kernel under bt86, with an initramfs whose /init runs
# checks (tests/linux/init).  Fetches the kernel and busybox with apt-get
# download on first use (scripts/fetch-linux).  Asserts that the kernel boots
# to /init, that its shell mounts proc, sysfs and tmpfs, runs 100 fork+exec,
# a pipe and a file round trip, that the kernel runs with SMAP (every
# access to user memory between stac and clac) and the PAE flavour with
# NX, reads two ATA disks (-drive index=0, -hdb) and writes one, whose
# image file must hold the write after the run, and
# that the run ends cleanly (status 0, "the guest powered off") when the
# kernel powers off through ACPI (\_S5 in PM1a_CNT).  From --stats: the
# devices' host timer was set a bounded number of times (a deadline that
# moved at every poll once set it at every exit, 465,000 times a boot) and
# most waits in hlt slept (a deadline in the past that polling never
# cleared once made the idle loop spin).  Every /init line is printed.
# usage: boot_test.sh BT86 DIR [FLAVOUR]   (686, or 686-pae: Debian's default,
# which needs PAE paging)
set -uo pipefail
bt86=$1 dir=$2 flavour=${3:-686}
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/scripts/fetch-linux" "$dir" "$flavour" || { echo "FAIL: could not fetch the kernel and busybox"; exit 1; }
out=$(mktemp) err=$(mktemp) disks=$(mktemp -d)
day_before=$(date -u +%Y-%m-%d)
trap 'rm -rf "$out" "$err" "$disks"' EXIT
for d in 0 1; do
	python3 -c "import sys; open(sys.argv[1], 'wb').write(b'bt86 test disk $d'.ljust(1 << 20, b'\0'))" "$disks/$d.img"
done
timeout 300 "$bt86" --stats -m 256 -kernel "$dir/vmlinuz" -initrd "$dir/initrd.cpio.gz" \
	-append "console=ttyS0 quiet panic=-1" -drive "file=$disks/0.img,index=0,format=raw" -hdb "$disks/1.img" \
	</dev/null >"$out" 2>"$err"
status=$?
day_after=$(date -u +%Y-%m-%d)
grep -E '^init:|^/init:' "$out"
cat "$err"
fails=0
for want in "init: started" "init: uname -m is i686" \
	"init: /proc/cpuinfo names the bt86 virtual CPU" "init: /proc/cpuinfo lists smap" "init: sysfs and tmpfs are mounted" "init: 100 fork+exec of /bin/true" \
	"init: pipe says HELLO THROUGH A PIPE" "init: a file written and read back" \
	"init: the ATA master has 2048 sectors; sector 0 says 'bt86 test disk 0'" \
	"init: the ATA slave has 2048 sectors; sector 0 says 'bt86 test disk 1'" \
	"init: the master's sector 1 now says 'written by /init'" "init: done"; do
	grep -qF "$want" "$out" || { echo "FAIL: no '$want' from /init"; fails=$((fails + 1)); }
done
# The guest's write is in the host file once bt86 has exited.
[ "$(dd if="$disks/0.img" bs=512 skip=1 count=1 2>/dev/null | head -c 16)" = "written by /init" ] ||
	{ echo "FAIL: the image file does not hold /init's write to the master"; fails=$((fails + 1)); }
# The kernel's clock comes from the RTC, which tells the host's time.
grep -qE "^init: uname -r is [0-9.-]+-$flavour[[:space:]]*$" "$out" ||
	{ echo "FAIL: the kernel that ran is not Debian's $flavour flavour"; fails=$((fails + 1)); }
# The PAE kernel finds NX in CPUID and turns it on (EFER.NXE, XD in its
# page tables); the non-PAE one cannot use it.
if [ "$flavour" = 686-pae ]; then
	grep -qF "init: NX (Execute Disable) protection: active" "$out" ||
		{ echo "FAIL: the PAE kernel did not turn NX on"; fails=$((fails + 1)); }
fi
grep -qE "^init: the date is ($day_before|$day_after)" "$out" ||
	{ echo "FAIL: the guest's date is not the host's ($day_before)"; fails=$((fails + 1)); }
[ "$status" -eq 0 ] || { echo "FAIL: bt86 exit status $status, expected 0"; fails=$((fails + 1)); }
grep -qF "the guest powered off" "$err" || { echo "FAIL: the run did not end by an ACPI poweroff"; fails=$((fails + 1)); }
read -r arms waits spins < <(sed -nE 's/.*host timer set ([0-9]+) times; ([0-9]+) waits in hlt, ([0-9]+) of them without sleeping.*/\1 \2 \3/p' "$err")
if [ -z "${arms:-}" ]; then
	echo "FAIL: --stats gave no host timer and hlt figures"; fails=$((fails + 1))
else
	[ "$arms" -le 20000 ] || { echo "FAIL: the host timer was set $arms times in one boot"; fails=$((fails + 1)); }
	[ $((2 * spins)) -le $((waits + 200)) ] ||
		{ echo "FAIL: $spins of $waits waits in hlt did not sleep"; fails=$((fails + 1)); }
fi
if [ "$fails" -ne 0 ]; then
	tail -40 "$out"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "1 passed, 0 failed"
