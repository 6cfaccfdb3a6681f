#!/usr/bin/env python3
"""Snapshots: the monitor's savevm and -loadvm, on the snapshotted guest
(sixty steps of timer waits, paging, x87 and SSE state, 4 MiB of memory).

  - A run saved at step 20 and restored in a new process prints, after the
    restore, exactly what an uninterrupted run prints after that point,
    and ends with the same status; the restored run saved again at step 40
    and restored once more does too.
  - The first run, a disk image attached, continues after savevm and ends
    with quit (status 0).
  - A snapshot over a disk image modified since is refused (one line,
    status 6) unless --allow-changed-disks.
  - savevm to a path that cannot be written answers with the error, and
    the guest runs on.
  - Bad files get one line and status 6: missing, empty, not a snapshot,
    another format, truncated, damaged; and -loadvm with -m of another
    size or with a kernel is a usage error (status 2).

  snapshot_test.py BT86 SNAPSHOTTED_ELF
"""
import os, re, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from monitor_test import Monitor, quit_run, running, wait_for  # noqa: E402


def run(argv, out, timeout=120):
    with open(out, "wb") as f:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stderr.decode(errors="replace")


def save_at(bt86, args, step, snap, out, tmp, fails, what):
    """Runs bt86 ARGS with a monitor, saves at STEP into SNAP, quits; returns
    how much the guest had printed when it was saved."""
    sock = f"{tmp}/{what}.sock"
    p = subprocess.Popen([bt86, "-monitor", f"unix:{sock},server,nowait"] + args, stdin=subprocess.DEVNULL,
                         stdout=open(out, "wb"), stderr=subprocess.PIPE)
    printed = None
    with running(p, fails, what):
        mon = Monitor(sock, b"(bt86) ")
        if not wait_for(out, rf"# step {step} "):
            fails.append(f"{what}: the guest never reached step {step}")
            return None
        mon.cmd("stop")
        answer = mon.cmd(f"savevm {snap}")
        if not re.match(rf"savevm: {re.escape(snap)}: 128 MiB of RAM \(\d+ pages not zero\)", answer):
            fails.append(f"{what}: savevm answered {answer!r}")
        printed = os.path.getsize(out)  # savevm flushed the guest's output
        bad = mon.cmd("savevm /nonexistent/dir/x.snap")
        if bad != "savevm: /nonexistent/dir/x.snap: No such file or directory":
            fails.append(f"{what}: savevm to a missing directory answered {bad!r}")
        mon.cmd("cont")
        time.sleep(0.2)
        if os.path.getsize(out) == printed:
            fails.append(f"{what}: the guest did not run on after savevm")
        quit_run(mon, p, fails, what)
    return printed


def one_line_error(bt86, args, want_status, pattern, fails, what):
    r = subprocess.run([bt86] + args, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    r.stderr = r.stderr.decode(errors="replace")
    lines = r.stderr.strip().splitlines()
    if r.returncode != want_status or len(lines) != 1 or not re.search(pattern, lines[0]):
        fails.append(f"{what}: status {r.returncode} (want {want_status}), stderr {r.stderr!r}")


def main():
    bt86, image = sys.argv[1:3]
    fails = []
    with tempfile.TemporaryDirectory() as tmp:
        disk = f"{tmp}/disk.img"
        with open(disk, "wb") as f:
            f.write(bytes(range(256)) * 4096)
        status_full, _ = run([bt86, image], f"{tmp}/full.out")
        full = open(f"{tmp}/full.out", "rb").read()
        if status_full != 1 or not full.endswith(b"ok 1 - sixty steps ran\n"):
            fails.append(f"the uninterrupted run: status {status_full}, output ends {full[-80:]!r}")

        # Saved at step 20, restored; the restored run saved at step 40, restored.
        s1, s2 = f"{tmp}/s1.snap", f"{tmp}/s2.snap"
        n1 = save_at(bt86, ["-hda", disk, image], 20, s1, f"{tmp}/a.out", tmp, fails, "first run")
        if n1 is not None:
            part = open(f"{tmp}/a.out", "rb").read()
            if part[:n1] != full[:n1]:
                fails.append("before savevm the guest printed what an uninterrupted run does not")
            status, err = run([bt86, "-loadvm", s1], f"{tmp}/b.out")
            rest = open(f"{tmp}/b.out", "rb").read()
            if status != status_full or full[:n1] + rest != full:
                fails.append(f"restored at step 20: status {status}, {err!r}; output differs after {n1} bytes")
            n2 = save_at(bt86, ["-loadvm", s1], 40, s2, f"{tmp}/c.out", tmp, fails, "restored run")
            if n2 is not None:
                status, err = run([bt86, "-loadvm", s2], f"{tmp}/d.out")
                again = open(f"{tmp}/d.out", "rb").read()
                if status != status_full or full[:n1] + open(f"{tmp}/c.out", "rb").read()[:n2] + again != full:
                    fails.append(f"restored twice: status {status}, {err!r}; the output differs")

            # The disk the snapshot recorded, modified.
            time.sleep(0.01)
            with open(disk, "r+b") as f:
                f.write(b"changed")
            one_line_error(bt86, ["-loadvm", s1], 6, r"was modified after the snapshot", fails,
                           "a modified disk")
            status, err = run([bt86, "-loadvm", s1, "--allow-changed-disks"], f"{tmp}/e.out")
            if status != status_full or full[:n1] + open(f"{tmp}/e.out", "rb").read() != full:
                fails.append(f"--allow-changed-disks: status {status}, {err!r}")

            # Bad files.
            data = open(s1, "rb").read()
            bad = {
                "empty": b"",
                "garbage": os.urandom(4096),
                "truncated": data[: len(data) // 2],
                "damaged": data[:2000] + bytes(b ^ 0x55 for b in data[2000:2016]) + data[2016:],
                "format": data[:8] + b"\x63\x00\x00\x00" + data[12:],
                "trailing": data[:-1],
            }
            want = {
                "empty": "not a bt86 snapshot", "garbage": "not a bt86 snapshot", "truncated": "truncated",
                "damaged": "damaged", "format": "a snapshot of another bt86 build \\(format 99",
                "trailing": "truncated|damaged",
            }
            for name, content in bad.items():
                path = f"{tmp}/{name}.snap"
                with open(path, "wb") as f:
                    f.write(content)
                one_line_error(bt86, ["-loadvm", path, "--allow-changed-disks"], 6,
                               rf"^bt86: -loadvm {re.escape(path)}: ({want[name]})", fails, f"a {name} file")
            one_line_error(bt86, ["-loadvm", f"{tmp}/none.snap"], 6, "No such file", fails, "a missing file")
            one_line_error(bt86, ["-loadvm", s1, "--allow-changed-disks", "-m", "64"], 2,
                           "holds 128 MiB of RAM, not the 64 MiB", fails, "-m of another size")
            one_line_error(bt86, ["-loadvm", s1, image], 2, "restores the whole machine", fails,
                           "-loadvm with a kernel")
    for f in fails:
        print("FAIL:", f)
    if not fails:
        print("PASS: snapshots: restored runs print what an uninterrupted run does; changed disks, bad files")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
