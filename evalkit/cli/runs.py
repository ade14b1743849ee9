"""``evalkit runs``: list stored runs, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, print_json
from evalkit.safe_text import terminal


def runs(
    store: StoreOpt = None,
    suite: Annotated[str | None, typer.Option(help="Only runs of this suite.")] = None,
    limit: Annotated[int, typer.Option(help="How many runs.", min=1)] = 20,
    json_out: JsonOpt = False,
) -> None:
    """List runs in the store, newest first."""
    from rich.table import Table

    from evalkit.store.db import open_store

    with open_store(store, read_only=True) as st:
        rows = st.list_runs(limit=limit, suite=suite)
    if json_out:
        print_json(rows)
        return
    t = Table(title="runs")
    for col in ("run id", "suite", "status", "started", "cases", "errors", "target", "commit"):
        t.add_column(col)
    for r in rows:
        summ = r.get("summary") or {}
        t.add_row(
            terminal(r["run_id"]), terminal(r["suite"]), terminal(r["status"]),
            f"{r['started_at']:%Y-%m-%d %H:%M:%S}" if r["started_at"] else "",
            str(summ.get("cases", r.get("cases_total") or "")), str(summ.get("errors", "")),
            terminal(r.get("target") or ""), terminal((r.get("git_commit") or "")[:8]),
        )
    console().print(t)
