"""Render a run report or a baseline diff as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.report.compare import compare_payload
from evalkit.report.data import run_payload
from evalkit.report.embed import page
from evalkit.safe_text import displayable

if TYPE_CHECKING:
    from evalkit.store.db import Store


def render_run(store: Store, run_id: str, *, compress: bool | None = None) -> str:
    """The HTML report of one run (``compress``: None gzips the data only when it is large)."""
    data = displayable(run_payload(store, run_id))  # control characters shown, never obeyed; no NaN
    return page(f"evalkit · {data['run']['suite']} · {data['run']['run_id']}", data, compress=compress)


def render_compare(store: Store, run_a: str, run_b: str, *, compress: bool | None = None) -> str:
    """The HTML diff of run B (candidate) against run A (baseline)."""
    data = displayable(compare_payload(store, run_a, run_b))
    return page(f"evalkit diff · {data['a']['run_id']} → {data['b']['run_id']}", data, compress=compress)


def _write(path: Path | str, text: str) -> Path:
    out = Path(path)
    if out.parent != Path():
        out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


def write_report(store: Store, run_id: str, path: Path | str) -> Path:
    """Write the run report to ``path`` (atomically); returns the path."""
    return _write(path, render_run(store, run_id))


def write_compare(store: Store, run_a: str, run_b: str, path: Path | str) -> Path:
    """Write the baseline diff to ``path`` (atomically); returns the path."""
    return _write(path, render_compare(store, run_a, run_b))
