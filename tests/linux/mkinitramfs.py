#!/usr/bin/env python3
"""Writes a gzip-compressed newc cpio initramfs: /bin/busybox, /init, the
directories init mounts on, and /dev/console.  (The host cannot run the
i386 busybox's own cpio, and needs no cpio package for this.)  Given a
kernel module tree and module names, it adds those modules and the ones
they depend on as /lib/modules/NAME.ko, with /lib/modules/order listing
them in an order insmod can follow.

  mkinitramfs.py BUSYBOX INIT OUTPUT [MODULE_DIR MODULE...]
"""
import gzip, os, sys

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


def norm(name):
    return name.replace("-", "_")


def modinfo_deps(data):
    """The module's dependencies, read from its .modinfo strings: (name,
    required).  A soft dependency may name an alias rather than a module;
    those the tree has are loaded first too."""
    deps = []
    for field in data.split(b"\0"):
        if field.startswith(b"depends="):
            deps += [(d, True) for d in field[8:].decode().split(",") if d]
        elif field.startswith(b"softdep=pre:"):
            deps += [(d, False) for d in field[12:].decode().split()]
    return deps


def resolve(moddir, wanted):
    """Module files in dependency order (dependencies first)."""
    files = {}
    for dirpath, _, names in os.walk(moddir):
        for n in names:
            if n.endswith(".ko"):
                files[norm(n[:-3])] = os.path.join(dirpath, n)
    order, seen = [], set()

    def visit(name, required=True):
        key = norm(name)
        if key in seen or (key not in files and not required):
            return
        if key not in files:
            sys.exit(f"mkinitramfs: no module {name} under {moddir}")
        seen.add(key)
        data = open(files[key], "rb").read()
        for dep, required in modinfo_deps(data):
            visit(dep, required)
        order.append((key, data))

    for name in wanted:
        visit(name)
    return order


def main():
    if len(sys.argv) < 4 or len(sys.argv) == 5:
        sys.exit(__doc__)
    busybox, init, output = sys.argv[1:4]
    for d in ("bin", "dev", "proc", "sys", "tmp", "mnt", "lib", "lib/modules"):
        add(d, 0o040755)
    add("dev/console", 0o020600, rdev=(5, 1))
    add("bin/busybox", 0o100755, open(busybox, "rb").read())
    add("init", 0o100755, open(init, "rb").read())
    if len(sys.argv) > 5:
        modules = resolve(sys.argv[4], sys.argv[5:])
        for key, data in modules:
            add(f"lib/modules/{key}.ko", 0o100644, data)
        add("lib/modules/order", 0o100644, "".join(k + "\n" for k, _ in modules).encode())
    blob = b"".join(newc(i + 1, *e) for i, e in enumerate(entries))
    blob += newc(0, "TRAILER!!!", 0, b"", (0, 0))
    with gzip.open(output, "wb", compresslevel=6) as f:
        f.write(blob)


if __name__ == "__main__":
    main()
