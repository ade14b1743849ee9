"""``evalkit show RUN_ID``: the per-case table of a run, failures first."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, fmt, print_json
from evalkit.safe_text import terminal, terminal_line, visible


def score_cell(s: dict[str, Any] | None) -> str:
    """One score as a table cell: its value (green pass, red fail), dim ``n/a`` or ``error (<kind>)``."""
    if s is None:
        return ""
    if s.get("outcome") == "not_applicable":
        return "[dim]n/a[/dim]"
    if s.get("outcome") == "error":
        return f"[yellow]error ({terminal_line(s.get('error_kind') or 'unknown')})[/yellow]"
    mark = "[green]" if s["passed"] is not False else "[red]"
    return f"{mark}{fmt(s['value'], 2)}[/]"


def outcome_cell(c: dict[str, Any]) -> str:
    """The case's ledger outcome: completed, ``errored (<kind>)`` or cancelled."""
    if c["outcome"] == "cancelled":
        return "[dim]cancelled[/dim]"
    if c["outcome"] == "errored":
        kind = c.get("error_kind") or next((s.get("error_kind") for s in c["scores"] if s.get("outcome") == "error"),
                                           None)
        return f"[yellow]errored ({terminal_line(kind or 'unknown')})[/yellow]"
    return "[red]failed[/red]" if c["failed"] else "completed"


def why(c: dict[str, Any]) -> str:
    """The case's error, else the rationale or error of each failed or errored score."""
    if c["error"]:
        return str(c["error"])
    return "; ".join(f"{s['name']}: {s['rationale'] or s['error']}" for s in c["scores"]
                     if (s["passed"] is False or s.get("outcome") == "error") and (s["rationale"] or s["error"]))


DEFAULT_LIMIT = 50
MAX_PIPE_WIDTH = 400  # a piped table is drawn at its natural width up to this (why is cut at 120)


def page_footer(run_id: str, *, shown: int, offset: int, total: int, failed_total: int, failed_only: bool,
                limit: int | None, store_arg: str | None = None) -> str:
    """The table's last line: which rows were shown of how many, and the command for the next page."""
    of = f"{failed_total:,} failed cases (of {total:,})" if failed_only else f"{total:,} cases ({failed_total:,} failed)"
    matching = failed_total if failed_only else total
    if not shown:
        return f"no cases at offset {offset:,}; the run has {of}" if matching else f"no cases; the run has {of}"
    text = f"showing {offset + 1:,}–{offset + shown:,} of {of}"
    if limit is not None and offset + shown < matching:
        cmd = ["evalkit", "show", run_id]
        if store_arg:
            cmd += ["--store", store_arg]
        if failed_only:
            cmd.append("--failed")
        if limit != DEFAULT_LIMIT:
            cmd += ["--limit", str(limit)]
        cmd += ["--offset", str(offset + shown)]
        text += "; next: " + shlex.join(cmd)
    return text


def show(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).", show_default=False)],
    store: StoreOpt = None,
    failed: Annotated[bool, typer.Option(
        "--failed", help="Only cases that errored, were cancelled or have a failed score.")] = False,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help=f"Show at most this many cases [default: {DEFAULT_LIMIT}].", show_default=False)] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many cases first (paging).")] = 0,
    show_all: Annotated[bool, typer.Option("--all", help="Show every case (no --limit).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Show a run's cases and scores, failures first, a page at a time (n/a: the scorer did not apply to the case)."""
    from rich.cells import cell_len
    from rich.markup import escape
    from rich.measure import Measurement
    from rich.table import Table

    from evalkit.store.db import open_store
    from evalkit.store.reads import case_page

    if show_all and limit is not None:
        raise typer.BadParameter("give --limit or --all, not both", param_hint="--all")
    page_size = None if show_all else (limit or DEFAULT_LIMIT)
    with open_store(store, read_only=True) as st:
        run = st.get_run(run_id)
        cases, total, failed_total = case_page(st, run["run_id"], failed_only=failed, limit=page_size, offset=offset)
        st_label = st.label
    if json_out:
        print_json({"run": run, "cases": cases, "total": total, "failed_total": failed_total, "offset": offset,
                    "limit": page_size})
        return
    names = sorted({s["name"] for c in cases for s in c["scores"]})
    ledger = any(c["outcome"] != "completed" for c in cases)  # the column only when a case errored or was cancelled
    labels = [visible(c["case_id"] + (f" #{c['repeat']}" if c["repeat"] else "")) for c in cases]
    t = Table(title=terminal_line(f"run {run['run_id']} · {run['suite']} · {run['status']}"), title_justify="left")
    # case ids are never cut: the column is as wide as the longest (the table grows past the width instead)
    t.add_column("case", no_wrap=True, overflow="fold", min_width=max((cell_len(x) for x in labels), default=4))
    if ledger:
        t.add_column("outcome")
    for n in names:
        t.add_column(terminal_line(n), justify="right")
    t.add_column("ms", justify="right")
    t.add_column("why")
    for c, label in zip(cases, labels, strict=True):
        by = {s["name"]: s for s in c["scores"]}
        outcome = [outcome_cell(c)] if ledger else []
        t.add_row(escape(label), *outcome, *(score_cell(by.get(n)) for n in names), fmt(c["latency_ms"], 1),
                  terminal(why(c), limit=120))
    out = console()
    if cases:
        # narrower than its columns' least width (the longest case id, each other column's longest word),
        # the table is drawn that wide rather than squeezing columns away
        measure = Measurement.get(out, out.options.update_width(100_000), t)
        least = measure.minimum
        if least > out.width:
            t.width = least
        if not sys.stdout.isatty():  # into a pipe or a CI log: rows unwrapped, greppable
            t.width = max(least, min(measure.maximum, MAX_PIPE_WIDTH))
        out.print(t, crop=False if not sys.stdout.isatty() else least <= out.width)
    env = os.environ.get("EVALKIT_STORE")
    store_arg = st_label if store is not None and (env is None or str(Path(env)) != str(store)) else None
    out.print(terminal_line(page_footer(run["run_id"], shown=len(cases), offset=offset, total=total,
                                        failed_total=failed_total, failed_only=failed, limit=page_size,
                                        store_arg=store_arg)))
