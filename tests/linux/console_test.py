#!/usr/bin/env python3
"""The interactive console, as a user at a terminal sees it: bt86 on a pty
boots the Linux test image with shell=1, the test types a command at the
busybox shell and reads the answer, ends the VM with Ctrl-A x, and checks
that bt86 exits with status 0 and leaves the terminal settings as it found
them (raw mode while the guest owned the terminal: echo off, no line
editing, and ^C reaching the guest instead of killing bt86).

  console_test.py BT86 DIR     (DIR from scripts/fetch-linux)
"""
import os, select, signal, subprocess, sys, termios, time


def read_until(fd, want, timeout, seen):
    end = time.monotonic() + timeout
    while want not in seen[0]:
        left = end - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                seen[0] += os.read(fd, 4096)
            except OSError:
                return False
    return True


def main():
    bt86, d = sys.argv[1:3]
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    p = subprocess.Popen([bt86, "-m", "256", "-kernel", f"{d}/vmlinuz", "-initrd", f"{d}/initrd.cpio.gz",
                          "-append", "console=ttyS0 quiet panic=-1 shell=1"],
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=False)
    seen = [b""]
    fails = []
    try:
        if not read_until(master, b"init: done", 120, seen):
            fails.append("no 'init: done' from the guest")
        time.sleep(0.5)
        during = termios.tcgetattr(slave)
        if during[3] & (termios.ECHO | termios.ICANON | termios.ISIG):
            fails.append("the terminal is not in raw mode while the guest runs")
        os.write(master, b"echo $((6 * 7))x\r")
        if not read_until(master, b"42x", 30, seen):
            fails.append("the shell did not answer a typed command")
        # ^C, once sleep runs in the foreground, goes to the guest, not to bt86.
        os.write(master, b"sleep 30\r")
        read_until(master, b"sleep 30", 10, seen)
        # The shell may not have put sleep in the foreground yet when a
        # loaded host is slow to fork and exec it (a ^C then goes to the
        # shell and flushes the line typed after it): try again, four
        # times within sleep's 30 s, so only a ^C that reached the guest's
        # sleep lets the shell answer in time.
        answered = False
        for _ in range(4):
            time.sleep(1.5)
            os.write(master, b"\x03")
            os.write(master, b"echo alive$((1 + 1))\r")
            if read_until(master, b"alive2", 5, seen):
                answered = True
                break
        if not answered:
            fails.append("after ^C the shell did not answer (did ^C reach bt86?)")
        os.write(master, b"\x01x")
        try:
            status = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            fails.append("Ctrl-A x did not end the run")
            p.kill()
            status = p.wait()
        read_until(master, b"Ctrl-A x", 5, seen)
        if status != 0:
            fails.append(f"bt86 exit status {status} after Ctrl-A x, expected 0")
        if b"terminated from the console (Ctrl-A x)" not in seen[0]:
            fails.append("no message for Ctrl-A x")
        if termios.tcgetattr(slave) != before:
            fails.append("the terminal settings were not restored")
    finally:
        if p.poll() is None:
            p.kill()
    for f in fails:
        print("FAIL:", f)
    if fails:
        print(seen[0][-2000:].decode(errors="replace"))
        print("0 passed, 1 failed")
        return 1
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
