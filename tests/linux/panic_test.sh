#!/usr/bin/env bash
# A guest kernel panic ends the run with status 4 and one line naming the
# panic: Debian's kernel booted without an initrd panics when it cannot mount
# a root file system, once spinning in its panic loop (no panic=), once
# resetting the machine (panic=-1).  Uses the image linux_boot fetched.
# usage: panic_test.sh BT86 DIR
set -uo pipefail
bt86=$1 dir=$2
err=$(mktemp)
trap 'rm -f "$err"' EXIT
fails=0
for extra in "" " panic=-1"; do
	timeout 120 "$bt86" -m 128 -kernel "$dir/vmlinuz" -append "console=ttyS0$extra" </dev/null >/dev/null 2>"$err"
	status=$?
	if [ "$status" -ne 4 ] || ! grep -q "^bt86: the guest kernel panicked: VFS: Unable to mount root fs" "$err"; then
		echo "FAIL: -append 'console=ttyS0$extra': status $status (want 4), stderr:"; cat "$err"
		fails=$((fails + 1))
	fi
done
[ "$fails" -eq 0 ] && echo "2 passed, 0 failed" || exit 1
