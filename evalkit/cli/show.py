"""``evalkit show RUN_ID``: the per-case table of a run, failures first."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, fmt, print_json


def load_run_cases(st: Any, run_id: str) -> list[dict[str, Any]]:
    """Per-case rows with their scores, failures first."""
    cases = st.query(
        "SELECT case_id, repeat, status, input, expected, output, error, latency_ms, input_tokens, output_tokens,"
        " cost_usd, trace_id, tags, tool_calls FROM case_results WHERE run_id = ? ORDER BY case_id, repeat",
        [run_id],
    )
    scores = st.query(
        "SELECT case_id, repeat, name, value, is_bool, passed, rationale, error, metadata FROM scores WHERE run_id = ?",
        [run_id],
    )
    by_key: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for s in scores:
        value: Any = s["value"]
        if s["is_bool"] and value is not None:
            value = bool(value)
        by_key.setdefault((s["case_id"], s["repeat"]), []).append({
            "name": s["name"], "value": value, "passed": s["passed"], "rationale": s["rationale"], "error": s["error"],
            "metadata": json.loads(s["metadata"]) if s["metadata"] else {},
        })
    for c in cases:
        for k in ("input", "expected", "output", "tool_calls"):
            if isinstance(c[k], str):
                c[k] = json.loads(c[k])
        c["scores"] = by_key.get((c["case_id"], c["repeat"]), [])
        c["failed"] = c["status"] != "ok" or any(s["passed"] is False or s["error"] for s in c["scores"])
    cases.sort(key=lambda c: (not c["failed"], c["case_id"], c["repeat"]))
    return cases


def show(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).", show_default=False)],
    store: StoreOpt = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only cases with a failed or errored score.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Show a run's cases and scores, failures first."""
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
    t = Table(title=f"run {run['run_id']} · {run['suite']} · {run['status']}", title_justify="left")
    t.add_column("case")
    for n in names:
        t.add_column(n, justify="right")
    t.add_column("ms", justify="right")
    t.add_column("why")
    for c in cases:
        by = {s["name"]: s for s in c["scores"]}
        cells = []
        for n in names:
            s = by.get(n)
            if s is None:
                cells.append("")
            elif s["error"]:
                cells.append("[yellow]error[/yellow]")
            else:
                mark = "[green]" if s["passed"] is not False else "[red]"
                cells.append(f"{mark}{fmt(s['value'], 2)}[/]")
        why = c["error"] or "; ".join(f"{s['name']}: {s['rationale'] or s['error']}" for s in c["scores"]
                                      if (s["passed"] is False or s["error"]) and (s["rationale"] or s["error"]))
        label = c["case_id"] + (f" #{c['repeat']}" if c["repeat"] else "")
        t.add_row(label, *cells, fmt(c["latency_ms"], 1), why[:120])
    console().print(t)
