#!/usr/bin/env python3
"""Regenerate crates/portside-core/assets/iana-services.bin, portside's embedded port/protocol -> service name table.

Usage: python3 tools/gen-services.py [CSV [OUT]]
  CSV defaults to ../shared/data/iana-service-names-port-numbers.csv (relative to the repo root),
  OUT to crates/portside-core/assets/iana-services.bin. Python 3 standard library only; the output is a pure function
  of the CSV (no timestamps), so regenerating an unchanged registry gives identical bytes.

Rules:
  - Only tcp and udp rows with a service name and a port. Empty names (reservations,
    unassigned ranges) and other transports (sctp, dccp) are skipped.
  - A port range "a-b" (x11 6000-6063) names every port in it.
  - A port/protocol with several IANA names (80/tcp: http, www, www-http) keeps the FIRST row
    listed in the CSV; the later ones are aliases. Names are kept verbatim.

Layout (all integers little-endian), read in place by src/source/services.rs:
  header, 16 bytes: b"PSVC", u8 version (1), 3 zero bytes, u32 record count, u32 names length
  records, 8 bytes each, sorted by key = port * 2 + proto (tcp 0, udp 1), keys unique:
    u16 port, u8 proto, u8 name length, u32 offset of the name in the names blob
  names: the distinct names, ASCII, each stored once, in order of first use by the records
"""

import csv
import os
import struct
import sys

PROTOS = {"tcp": 0, "udp": 1}
MAGIC = b"PSVC"
VERSION = 1


def read_table(csv_path):
    """Return {(port, proto): name}, first listed name wins."""
    table = {}
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        if header[:3] != ["Service Name", "Port Number", "Transport Protocol"]:
            sys.exit(f"{csv_path}: unexpected header {header[:3]!r}")
        for row in reader:
            if len(row) < 3:
                continue
            name, ports, proto = row[0].strip(), row[1].strip(), row[2].strip().lower()
            if not name or not ports or proto not in PROTOS:
                continue
            lo, _, hi = ports.partition("-")
            lo, hi = int(lo), int(hi or lo)
            if not (0 <= lo <= hi <= 65535):
                sys.exit(f"{csv_path}: bad port {ports!r}")
            raw = name.encode("ascii")
            if len(raw) > 255:
                sys.exit(f"{csv_path}: name too long {name!r}")
            for port in range(lo, hi + 1):
                table.setdefault((port, PROTOS[proto]), raw)
    return table


def encode(table):
    records = bytearray()
    names = bytearray()
    offsets = {}
    for (port, proto), name in sorted(table.items()):
        if name not in offsets:
            offsets[name] = len(names)
            names += name
        records += struct.pack("<HBBI", port, proto, len(name), offsets[name])
    header = MAGIC + bytes([VERSION, 0, 0, 0]) + struct.pack("<II", len(table), len(names))
    return bytes(header + records + names)


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    csv_path = argv[1] if len(argv) > 1 else os.path.join(
        root, "..", "shared", "data", "iana-service-names-port-numbers.csv")
    out_path = argv[2] if len(argv) > 2 else os.path.join(root, "crates", "portside-core", "assets", "iana-services.bin")
    table = read_table(csv_path)
    data = encode(table)
    with open(out_path, "wb") as f:
        f.write(data)
    print(f"{out_path}: {len(table)} entries, {len(data)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
