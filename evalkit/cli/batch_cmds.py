"""``evalkit status`` and ``evalkit merge``: batch-job helpers."""

from __future__ import annotations

from typing import Annotated

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, print_json
from evalkit.errors import UserError
from evalkit.safe_text import terminal_line


def status(
    run_id: Annotated[str, typer.Argument(help="Run id.", show_default=False)],
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Progress of a run: done / total, cases/s, ETA, errors, tokens and cost (works while it runs)."""
    from evalkit.batch.progress_file import process_gone, progress_path, read_progress
    from evalkit.store.db import default_store_path, open_store
    from evalkit.store.reads import ledger

    path = store or default_store_path()
    snap = read_progress(progress_path(path, run_id))
    try:
        with open_store(path, read_only=True) as st:  # readable while runs write (they take turns)
            run = st.get_run(run_id)
            books = ledger(st, run["run_id"])
    except UserError:
        if snap is None:
            raise
    else:
        summ = run.get("summary") or {}
        snap = {**(snap or {}), "run_id": run["run_id"], "status": run["status"], "done": books.recorded,
                "total": run["cases_total"], "completed": books.completed, "errors": books.errored,
                "cancelled": books.cancelled, "tokens": summ.get("tokens_total"),
                "cost_usd": summ.get("cost_usd_total")}
        if run["status"] == "running" and process_gone(snap):  # its process died without finishing it
            snap["stale"] = True
            snap["hint"] = f"no process is running it; continue with: evalkit run SUITE --resume {run['run_id']}"
    if json_out:
        print_json(snap)
        return
    total = snap.get("total") or "?"
    line = f"{snap['run_id']}: {snap['status']} · {snap['done']}/{total} cases · errors {snap.get('errors', 0)}"
    if snap.get("cancelled"):
        line += f" · cancelled {snap['cancelled']}"
    if snap.get("cases_per_s"):
        line += f" · {snap['cases_per_s']:.1f} cases/s"
    if snap.get("eta_s") is not None and snap["status"] == "running":
        line += f" · ETA {snap['eta_s']:.0f} s"
    if snap.get("tokens"):
        line += f" · tokens {snap['tokens']} · ${snap.get('cost_usd') or 0:.4f}"
    console().print(terminal_line(line))
    if snap.get("hint"):
        console().print(terminal_line(snap["hint"]))


def merge(
    sources: Annotated[list[str], typer.Argument(help="RUN_ID, FILE.duckdb (all its runs) or FILE.duckdb:RUN_ID.")],
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Merge shard runs (from this store or other store files) into one run, then summarise it."""
    from evalkit.batch.merge import merge_runs
    from evalkit.cli.summary_view import summary_table
    from evalkit.store.db import open_store

    with open_store(store) as st:
        run_id, summary = merge_runs(st, sources)
    if json_out:
        print_json({"run_id": run_id, "summary": summary.model_dump(mode="json")})
        return
    out = console()
    out.print(summary_table(summary))
    out.print(f"merged run id: [bold]{run_id}[/bold]")


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("merge")(merge)
