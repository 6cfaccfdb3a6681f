#!/usr/bin/env python3
"""Writes a raw disk image of SECTORS 512-byte sectors for the ATA guest:
byte j of sector s of disk d is (s * 13 + j * 7 + d * 101) mod 256.

  mkdisk.py PATH D SECTORS
"""
import sys

path, d, sectors = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "wb") as f:
    for s in range(sectors):
        f.write(bytes((s * 13 + j * 7 + d * 101) & 0xFF for j in range(512)))
