#!/usr/bin/env python3
"""Writes a gzip-compressed newc cpio initramfs: /bin/busybox, /init, the
directories init mounts on, and /dev/console.  (The host cannot run the
i386 busybox's own cpio, and needs no cpio package for this.)

  mkinitramfs.py BUSYBOX INIT OUTPUT
"""
import gzip, sys

entries = []


def add(name, mode, data=b"", rdev=(0, 0)):
    entries.append((name, mode, data, rdev))


def newc(ino, name, mode, data, rdev):
    name_b = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0]
    hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = hdr + name_b
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def main():
    busybox, init, output = sys.argv[1:4]
    for d in ("bin", "dev", "proc", "sys", "tmp", "mnt"):
        add(d, 0o040755)
    add("dev/console", 0o020600, rdev=(5, 1))
    add("bin/busybox", 0o100755, open(busybox, "rb").read())
    add("init", 0o100755, open(init, "rb").read())
    blob = b"".join(newc(i + 1, *e) for i, e in enumerate(entries))
    blob += newc(0, "TRAILER!!!", 0, b"", (0, 0))
    with gzip.open(output, "wb", compresslevel=6) as f:
        f.write(blob)


if __name__ == "__main__":
    main()
