#!/usr/bin/env python3
"""Fail when a lock file pins a release listed in known-bad-versions.txt.

Usage: check_lock.py [LOCK] [LIST]   (defaults: requirements.lock and .ci/known-bad-versions.txt)
Prints one line per bad pin and exits 1, else prints how many pins were checked and exits 0.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line (hash continuation lines are skipped)."""
    out = {}
    for line in text.splitlines():
        m = PIN.match(line.strip())
        if m:
            out[canonical(m.group(1))] = m.group(2)
    return out


def bad(text: str) -> dict[str, tuple[str, str]]:
    """``name==version -> (name, reason)`` from the known-bad list."""
    out = {}
    for line in text.splitlines():
        entry, _, reason = line.partition("#")
        m = PIN.match(entry.strip())
        if m:
            out[f"{canonical(m.group(1))}=={m.group(2)}"] = (m.group(1), reason.strip())
    return out


def main(argv: list[str]) -> int:
    lock = Path(argv[1]) if len(argv) > 1 else ROOT / "requirements.lock"
    listing = Path(argv[2]) if len(argv) > 2 else ROOT / ".ci" / "known-bad-versions.txt"
    pinned = pins(lock.read_text(encoding="utf-8"))
    known = bad(listing.read_text(encoding="utf-8"))
    found = [f"{lock.name}: {name}=={version} is a known-bad release: {known[f'{name}=={version}'][1]}"
             for name, version in sorted(pinned.items()) if f"{name}=={version}" in known]
    for line in found:
        print(line)
    if not found:
        print(f"{lock.name}: {len(pinned)} pins checked against {len(known)} known-bad releases, none found")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
