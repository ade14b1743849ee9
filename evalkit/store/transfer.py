"""Copying one run, with its cases, scores and traces, from one store to another (``push`` / ``pull``).

The copy is lossless and idempotent: values a file store keeps in side files are copied in full (and
spilled again when the destination is a file), and the destination's rows of the run are replaced in
one transaction, so pushing twice leaves one copy and a reader never sees half a run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.store import large_values

if TYPE_CHECKING:
    import polars as pl

    from evalkit.store.db import Store

TABLES = ("runs", "case_results", "scores", "spans", "unattributed_spans", "human_labels", "judge_calibrations")
_TEXT_MARKER = re.compile(r" … \[evalkit: truncated \d+ bytes; full text in (?P<rel>[^\]]+)\]$", re.S)


def copy_run(src: Store, dst: Store, run_id: str) -> dict[str, int]:
    """Replace ``run_id``'s rows in ``dst`` by ``src``'s (a prefix of the id is enough); rows per table."""
    rid = src.get_run(run_id)["run_id"]
    frames = {t: _full_values(src, t, src.frame(f"SELECT * FROM {t} WHERE run_id = ?", [rid])) for t in TABLES}
    if dst.inline_limit and dst.url is None and str(dst.path) != ":memory:":
        frames = {t: _spilled(dst, t, f) for t, f in frames.items()}

    def replace(st: Store) -> None:
        for t in TABLES:
            st.execute(f"DELETE FROM {t} WHERE run_id = ?", [rid])
        for t, frame in frames.items():
            st.insert_frame(t, frame)
    dst.atomic(replace)
    return {t: f.height for t, f in frames.items()}


def run_rows(store: Store, run_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of a run, full values restored, in a stable order: what two stores must agree on."""
    out = {}
    for t in TABLES:
        frame = _full_values(store, t, store.frame(f"SELECT * FROM {t} WHERE run_id = ?", [run_id]))
        out[t] = sorted(frame.rows(), key=repr)
    return out


def _columns(table: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return large_values.JSON_COLUMNS.get(table, ()), large_values.TEXT_COLUMNS.get(table, ())


def _full_values(store: Store, table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Side-file markers of a file store replaced by the values they stand for."""
    import polars as pl

    json_cols, text_cols = _columns(table)
    if store.url is not None or frame.height == 0 or str(store.path) == ":memory:":
        return frame
    updates = []
    for name in (*json_cols, *text_cols):
        if name not in frame.columns or frame[name].dtype != pl.String:
            continue
        values = frame[name].to_list()
        if not any((isinstance(v, str) and large_values.MARKER in v) or _TEXT_MARKER.search(v or "") for v in values):
            continue
        restore = _restore_json if name in json_cols else _restore_text
        updates.append(pl.Series(name, [restore(v, store.path) for v in values], dtype=pl.String))
    return frame.with_columns(updates) if updates else frame


def _restore_json(value: str | None, store_path: Path) -> str | None:
    if value is None or large_values.MARKER not in value:
        return value
    decoded = json.loads(value)
    if not large_values.is_truncated(decoded):
        return value
    return json.dumps(large_values.load(decoded, store_path), ensure_ascii=False)


def _restore_text(value: str | None, store_path: Path) -> str | None:
    m = _TEXT_MARKER.search(value or "")
    if value is None or m is None:
        return value
    file = (store_path.parent / m.group("rel")).resolve()
    if not file.is_relative_to(large_values.values_dir(store_path).resolve()):
        return value  # marker-shaped text that names no side file of this store: a value like any other
    return file.read_text(encoding="utf-8")


def _spilled(dst: Store, table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Oversized values of a frame bound for a file store moved to its side files (as its writes do)."""
    import polars as pl

    json_cols, text_cols = _columns(table)
    names = [c for c in (*json_cols, *text_cols) if c in frame.columns and frame[c].dtype == pl.String]
    if not names or frame.height == 0:
        return frame
    cols: dict[str, list[Any]] = {c: frame[c].to_list() for c in names}
    cols["run_id"] = frame["run_id"].to_list()
    if not large_values.spill(table, cols, dst.path, dst.inline_limit):
        return frame
    return frame.with_columns([pl.Series(c, cols[c], dtype=pl.String) for c in names])
