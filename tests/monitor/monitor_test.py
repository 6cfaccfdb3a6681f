#!/usr/bin/env python3
"""The monitor, as a user at QEMU's monitor would use it: bt86 and, when
qemu-system-i386 is installed, QEMU run the monitored guest with a monitor
on a Unix socket; once the guest spins, the same commands go to both and
the answers must be the same, less what differs by design:

  - the EIP and EFLAGS where "stop" found the spinning loop (the flags
    are those of the last increment); the EIP must be one of the loop's
    two instructions on both,
  - the counter the loop counts, which must hold while stopped and move on
    after "cont" on both,
  - the banner and prompt (bt86's names itself).

bt86 alone: "info tc" and "info blocks" (QEMU has no such commands), -S
holding the guest at its entry until "cont", SIGTERM still ending a held
run (status 12), the console's Ctrl-A c
switching stdin to the monitor, "quit" ending the run with status 0, and
one-line errors for bad -monitor arguments.

  monitor_test.py BT86 MONITORED_ELF
"""
import contextlib, os, re, select, socket, subprocess, sys, tempfile, time

ESC = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")
# What both must answer alike (after "stop"); addresses from the guest's
# "# ready" line fill in PAT, CNT and SPIN.
COMMANDS = [
    "info mem",
    "info tlb",
    "x/8xw PAT",
    "x/4xb 0xc0000000+PAT",
    "x/20c PAT+64",
    "xp/3xh PAT+4",
    "x/3dw PAT",
    "x/2ug PAT+8",
    "x/2xg PAT",
    "x/3xw 0x13000",
    "x/2i SPIN",
    "x /2x PAT",
    "info foo",
    "info   foo bar",
    "bogus 1 2",
    "xp/x 0x7ffffff0",
]


class Monitor:
    def __init__(self, path, prompt, timeout=30):
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        self.prompt = prompt
        self.banner = self.read_prompt()

    def read_prompt(self, timeout=30):
        data = b""
        end = time.monotonic() + timeout
        while not ESC.sub(b"", data).endswith(self.prompt):
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no prompt; got {data!r}")
            r, _, _ = select.select([self.s], [], [], left)
            if r:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise EOFError(f"monitor closed; got {data!r}")
                data += chunk
        return ESC.sub(b"", data).replace(b"\r", b"").decode(errors="replace")

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\n")
        out = self.read_prompt()
        lines = out.split("\n")
        # The echo of the line (QEMU's line editor redraws the line as it
        # grows: its echo ends with the line), the answer, the next prompt.
        if not lines[0].endswith(line):
            raise AssertionError(f"echo {lines[0]!r} of {line!r}")
        return "\n".join(lines[1:-1])


@contextlib.contextmanager
def running(p, fails, what):
    """A run of P: a failure of the protocol is one of WHAT's, and P ends."""
    try:
        yield p
    except (AssertionError, OSError, EOFError, TimeoutError, subprocess.TimeoutExpired) as e:
        fails.append(f"{what}: {e}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def quit_run(mon, p, fails, what):
    """quit: the run must end with status 0."""
    mon.s.sendall(b"quit\n")
    status = p.wait(timeout=30)
    if status != 0:
        fails.append(f"{what}: quit ended the run with status {status}")


def wait_for(path, want, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path) as f:
                m = re.search(want, f.read())
            if m:
                return m
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    return None


def counter(mon, addr):
    return int(mon.cmd(f"x/xw {addr:#x}").split()[-1], 16)


def session(system, bt86, image, tmp, fails):
    """Runs SYSTEM with its monitor and returns its answers by command."""
    sock, out = f"{tmp}/{system}.sock", f"{tmp}/{system}.out"
    spec = f"unix:{sock},server,nowait"
    if system == "bt86":
        argv = [bt86, "-m", "128", "-monitor", spec, image]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(out, "w"),
                             stderr=open(f"{tmp}/{system}.err", "w"))
        prompt = b"(bt86) "
    else:
        argv = ["qemu-system-i386", "-kernel", image, "-display", "none", "-serial", f"file:{out}",
                "-m", "128", "-no-reboot", "-monitor", spec]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(f"{tmp}/{system}.err", "w"))
        prompt = b"(qemu) "
    answers = {}
    with running(p, fails, system):
        ready = wait_for(out, r"# ready pattern (\w+) counter (\w+) spin (\w+)")
        if not ready:
            fails.append(f"{system}: the guest never became ready")
            return answers
        pat, cnt, spin = (int(x, 16) for x in ready.groups())
        mon = Monitor(sock, prompt)
        if "monitor - type 'help' for more information" not in mon.banner:
            fails.append(f"{system}: banner {mon.banner!r}")
        # The guest may still be in its printf (a loaded host): stop until
        # it is in the loop, "incl counter" (6 bytes) then "jmp spin".
        for _ in range(50):
            time.sleep(0.2)
            mon.cmd("stop")
            regs = mon.cmd("info registers")
            eip = re.search(r"EIP=(\w+)", regs)
            if eip and int(eip.group(1), 16) in (spin, spin + 6):
                break
            mon.cmd("cont")
        else:
            fails.append(f"{system}: never stopped in the loop: {regs.splitlines()[:4]}")
        answers["info registers"] = "\n".join(
            re.sub(r"EIP=\w+ EFL=\w+ \[.*?\]", "EIP=- EFL=- [-]", l) for l in regs.splitlines())
        c1 = counter(mon, cnt)
        time.sleep(0.3)
        c2 = counter(mon, cnt)
        if c1 != c2 or c1 == 0:
            fails.append(f"{system}: the counter moved while stopped ({c1:#x} then {c2:#x})")
        for c in COMMANDS:
            line = c.replace("PAT", f"{pat:#x}").replace("SPIN", f"{spin:#x}")
            answers[c] = mon.cmd(line)
        mon.cmd("cont")
        time.sleep(0.3)
        c3 = counter(mon, cnt)
        if c3 == c2:
            fails.append(f"{system}: the counter did not move after cont")
        if system == "bt86":
            tc = mon.cmd("info tc")
            if "translated" not in tc:
                fails.append(f"bt86: info tc: {tc!r}")
            blocks = mon.cmd(f"info blocks {spin:#x}")
            if "incl" not in blocks or "jmp" not in blocks:
                fails.append(f"bt86: info blocks of the loop: {blocks!r}")
            help_text = mon.cmd("help")
            for c in ("info registers", "x /fmt addr", "xp /fmt addr", "stop", "cont", "quit"):
                if c not in help_text:
                    fails.append(f"bt86: help does not list {c!r}")
        quit_run(mon, p, fails, system)
    return answers


def held_at_entry(bt86, image, tmp, fails):
    """-S with a monitor and no debugger: the guest waits for "cont"."""
    sock, out = f"{tmp}/held.sock", f"{tmp}/held.out"
    p = subprocess.Popen([bt86, "-S", "-monitor", f"unix:{sock},server,nowait", image],
                         stdin=subprocess.DEVNULL, stdout=open(out, "w"), stderr=subprocess.STDOUT)
    with running(p, fails, "-S"):
        mon = Monitor(sock, b"(bt86) ")
        regs = mon.cmd("info registers")
        time.sleep(0.3)
        if "# ready" in open(out).read():
            fails.append("-S: the guest ran before cont")
        if not re.search(r"EIP=00100\w{3}", regs):
            fails.append(f"-S: not held at the kernel's entry: {regs.splitlines()[:1]}")
        mon.cmd("c")
        if not wait_for(out, r"# ready"):
            fails.append("-S: cont did not start the guest")
        mon.s.sendall(b"q\n")
        p.wait(timeout=30)


def term_while_stopped(bt86, image, tmp, fails):
    """SIGTERM ends a run the monitor holds, with the signal's status."""
    sock = f"{tmp}/term.sock"
    p = subprocess.Popen([bt86, "-S", "-monitor", f"unix:{sock},server,nowait", image],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with running(p, fails, "SIGTERM while stopped"):
        Monitor(sock, b"(bt86) ").cmd("info registers")
        p.terminate()
        status = p.wait(timeout=30)
        if status != 12:
            fails.append(f"SIGTERM while stopped: status {status}, expected 12")


def console_switch(bt86, image, fails):
    """Ctrl-A c on stdin: the monitor in the console, then back."""
    p = subprocess.Popen([bt86, image], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    seen = b""
    def read_until(want, timeout=30):
        nonlocal seen
        end = time.monotonic() + timeout
        while want not in seen and time.monotonic() < end:
            r, _, _ = select.select([p.stdout], [], [], max(0, end - time.monotonic()))
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
        return want in seen
    with running(p, fails, "console"):
        if not read_until(b"# ready"):
            fails.append("console: the guest never became ready")
        p.stdin.write(b"\x01c")
        p.stdin.flush()
        if not read_until(b"(bt86) "):
            fails.append(f"console: Ctrl-A c gave no monitor prompt: {seen[-200:]!r}")
        # Until the guest has set its registers (it may still be in its
        # printf on a loaded host).
        for _ in range(50):
            p.stdin.write(b"info registers\r")
            p.stdin.flush()
            if read_until(b"EDI=66666666", 0.5):
                break
        else:
            fails.append(f"console: no registers from the monitor: {seen[-300:]!r}")
        p.stdin.write(b"quit\r")
        p.stdin.flush()
        status = p.wait(timeout=30)
        if status != 0:
            fails.append(f"console: quit ended the run with status {status}")


def bad_specs(bt86, image, fails):
    for spec in ("tcp::4444", "unix:", "unix:/nonexistent/dir/sock,server,nowait", "unix:/tmp/x,bogus"):
        r = subprocess.run([bt86, "-monitor", spec, image], capture_output=True, text=True, timeout=30)
        lines = r.stderr.strip().splitlines()
        if r.returncode == 0 or len(lines) != 1 or not lines[0].startswith("bt86:"):
            fails.append(f"-monitor {spec}: status {r.returncode}, stderr {r.stderr!r}")


def main():
    bt86, image = sys.argv[1:3]
    fails = []
    with tempfile.TemporaryDirectory() as tmp:
        ours = session("bt86", bt86, image, tmp, fails)
        have_qemu = subprocess.run(["sh", "-c", "command -v qemu-system-i386"],
                                   capture_output=True).returncode == 0
        if have_qemu:
            theirs = session("qemu", bt86, image, tmp, fails)
            for c in ours:
                if c in theirs and ours[c] != theirs[c]:
                    fails.append(f"'{c}' differs from QEMU's:\n--- qemu\n{theirs[c]}\n--- bt86\n{ours[c]}")
            if not theirs:
                fails.append("no answers from QEMU's monitor")
        else:
            print("note: qemu-system-i386 not installed; not compared with QEMU's monitor")
        held_at_entry(bt86, image, tmp, fails)
        term_while_stopped(bt86, image, tmp, fails)
    console_switch(bt86, image, fails)
    bad_specs(bt86, image, fails)
    for f in fails:
        print("FAIL:", f)
    if not fails:
        print(f"PASS: monitor: {len(ours)} answers the same as QEMU's; -S, SIGTERM while stopped, Ctrl-A c, quit, bad specs")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
