"""Deterministic shards of a dataset, by stable case id."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

from evalkit.errors import UserError
from evalkit.schema import Case


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` → (2, 4): shard 2 of 4, counted from 1."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise UserError(f"--shard '{text}' must look like I/N, e.g. 1/4")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= i <= n:
        raise UserError(f"--shard '{text}': I must be between 1 and N")
    return i, n


def shard_of(case_id: str, n: int) -> int:
    """The shard (1..n) a case id belongs to; stable across machines and Python versions."""
    digest = hashlib.blake2b(case_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n + 1


def select_shard(cases: Iterable[Case], i: int, n: int) -> Iterator[Case]:
    """The cases of shard ``i`` of ``n``."""
    return (c for c in cases if shard_of(c.id, n) == i)
