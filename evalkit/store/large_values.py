"""Oversized values live in side files beside the store; the row keeps a short head and a marker.

DuckDB materialises a column 2,048 rows at a time when it checkpoints, so values much larger than
``memory_limit / 2048`` end in "failed to pin block" and, during an autocheckpoint, a FATAL error.
A value longer than :func:`inline_limit` is therefore written to
``<store>.values/<run id>/<sha256>.json`` (or ``.txt`` for plain text columns) under the store's
folder, and the row holds instead:

* JSON columns: ``{"evalkit_truncated": {"bytes": N, "sha256": H, "file": REL}, "head": "…"}``,
  ``head`` being the start of the value's JSON text;
* text columns (errors, rationales): the start of the text, then ``… [evalkit: truncated …; full text in REL]``.

``REL`` is relative to the store's folder; :func:`load` reads the full value back.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MARKER = "evalkit_truncated"
JSON_COLUMNS = {"case_results": ("input", "expected", "output", "tool_calls", "metadata"), "scores": ("metadata",)}
TEXT_COLUMNS = {"case_results": ("error",), "scores": ("rationale", "error")}
MIN_INLINE = 1024
MAX_HEAD = 2000


def inline_limit(memory_bytes: int) -> int:
    """The longest value (in characters) stored in a row: a 2,048-row vector of them stays under a quarter
    of the memory limit (16 KiB at the default 128 MB)."""
    return max(MIN_INLINE, memory_bytes // (2048 * 4))


def values_dir(store_path: Path) -> Path:
    """The folder side files of ``store_path`` go to."""
    return store_path.parent / f"{store_path.name}.values"


def spill(table: str, cols: dict[str, list[Any]], store_path: Path, limit: int) -> int:
    """Replace the oversized values of ``cols`` (a bulk insert's columns) by markers, in place; returns how many."""
    n = 0
    run_ids = cols.get("run_id", [])
    head = min(limit // 4, MAX_HEAD)  # a marker (head escaped, path, hash) stays within the limit
    for kind, names in (("json", JSON_COLUMNS.get(table, ())), ("text", TEXT_COLUMNS.get(table, ()))):
        for name in names:
            values = cols.get(name) or []
            for i, text in enumerate(values):
                if isinstance(text, str) and len(text) > limit:
                    rel, size, digest = _write(store_path, str(run_ids[i]), text, kind)
                    if kind == "json":
                        values[i] = json.dumps({MARKER: {"bytes": size, "sha256": digest, "file": rel},
                                                "head": text[:head]}, ensure_ascii=False)
                    else:
                        values[i] = f"{text[:head]} … [evalkit: truncated {size} bytes; full text in {rel}]"
                    n += 1
    return n


def _write(store_path: Path, run_id: str, text: str, kind: str) -> tuple[str, int, str]:
    data = text.encode("utf-8", errors="surrogatepass")
    digest = hashlib.sha256(data).hexdigest()
    safe_run = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)[:120] or "_"
    folder = values_dir(store_path) / safe_run
    path = folder / f"{digest}.{'json' if kind == 'json' else 'txt'}"
    if not path.exists():  # content-addressed: the same value (a repeat, a shared input) is written once
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path.relative_to(store_path.parent).as_posix(), len(data), digest


def is_truncated(value: Any) -> bool:
    """Whether a decoded JSON column value is a marker left by :func:`spill`."""
    return isinstance(value, dict) and isinstance(value.get(MARKER), dict)


def load(value: Any, store_path: Path | str) -> Any:
    """A decoded JSON column value as it was before :func:`spill` (the value itself when it was not spilled)."""
    if not is_truncated(value):
        return value
    store_path = Path(store_path)
    file = (store_path.parent / str(value[MARKER].get("file", ""))).resolve()
    if not file.is_relative_to(values_dir(store_path).resolve()):  # a marker-shaped output names no other file
        raise ValueError(f"not a side file of {store_path}: {value[MARKER].get('file')!r}")
    return json.loads(file.read_text(encoding="utf-8"))
