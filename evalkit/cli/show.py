"""``evalkit show RUN_ID``: the per-case table of a run, failures first."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, fmt, print_json
from evalkit.safe_text import terminal, terminal_line


def load_run_cases(st: Any, run_id: str) -> list[dict[str, Any]]:
    """Per-case rows with their scores, failures first (:func:`evalkit.store.reads.cases_with_scores`)."""
    from evalkit.store.reads import cases_with_scores

    return cases_with_scores(st, run_id)


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


def show(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).", show_default=False)],
    store: StoreOpt = None,
    failed: Annotated[bool, typer.Option(
        "--failed", help="Only cases that errored, were cancelled or have a failed score.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Show a run's cases and scores, failures first (n/a: the scorer did not apply to the case)."""
    from rich.table import Table

    from evalkit.store.db import open_store

    with open_store(store, read_only=True) as st:
        run = st.get_run(run_id)
        cases = load_run_cases(st, run["run_id"])
    if failed:
        cases = [c for c in cases if c["failed"]]
    if json_out:
        print_json({"run": run, "cases": cases})
        return
    names = sorted({s["name"] for c in cases for s in c["scores"]})
    ledger = any(c["outcome"] != "completed" for c in cases)  # the column only when a case errored or was cancelled
    t = Table(title=terminal_line(f"run {run['run_id']} · {run['suite']} · {run['status']}"), title_justify="left")
    t.add_column("case")
    if ledger:
        t.add_column("outcome")
    for n in names:
        t.add_column(terminal_line(n), justify="right")
    t.add_column("ms", justify="right")
    t.add_column("why")
    for c in cases:
        by = {s["name"]: s for s in c["scores"]}
        label = c["case_id"] + (f" #{c['repeat']}" if c["repeat"] else "")
        outcome = [outcome_cell(c)] if ledger else []
        t.add_row(terminal(label), *outcome, *(score_cell(by.get(n)) for n in names), fmt(c["latency_ms"], 1),
                  terminal(why(c), limit=120))
    console().print(t)
