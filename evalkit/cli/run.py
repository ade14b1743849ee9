"""``evalkit run SUITE``: run a suite, store every case, print the summary and the run id."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, print_json


def run(
    suite: Annotated[Path, typer.Argument(help="Suite file (YAML).", show_default=False)],
    store: StoreOpt = None,
    concurrency: Annotated[int | None, typer.Option(help="Cases in flight at once [default: suite's, else 16].", min=1)] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Per-case timeout in seconds [default: 60].")] = None,
    repeat: Annotated[int | None, typer.Option("--repeat", help="Run every case K times.", min=1)] = None,
    limit: Annotated[int | None, typer.Option(help="Run only the first N cases.", min=1)] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the LLM response cache.")] = False,
    no_trace: Annotated[bool, typer.Option("--no-trace", help="Do not record OpenTelemetry spans.")] = False,
    json_out: JsonOpt = False,
) -> int:
    """Run a suite: every case through the target and the scorers, results stored as they finish."""
    from evalkit.cli.progress import Progress
    from evalkit.session import RunPlan, execute
    from evalkit.store.db import open_store
    from evalkit.suite import load_suite

    s = load_suite(suite)  # validates everything before the store is touched
    assert s.target is not None
    cases = s.cases[:limit] if limit else s.cases
    repeats = repeat or s.defaults.repeats
    plan = RunPlan(
        suite=s.name, cases=cases, target=s.target, scorers=s.scorers,
        concurrency=concurrency or s.defaults.concurrency, timeout_s=timeout or s.defaults.timeout_s,
        repeats=repeats, cache=not no_cache, total=len(cases) * repeats, dataset_path=s.dataset_path,
        config={"suite_file": str(suite), "suite": s.raw, "target": s.target.name},
    )
    st = open_store(store)
    tracer = None
    if not no_trace:
        from evalkit.api import _make_tracer

        tracer = _make_tracer(st)
    progress = Progress(plan.total, s.name)
    try:
        record = execute(plan, st, tracer=tracer, on_result=progress.update)
    finally:
        progress.close()
        st.close()
    if json_out:
        print_json({"run_id": record.run_id, "status": record.status, "summary": record.summary.model_dump(mode="json"),
                    "metrics": record.summary.metrics()})
    else:
        from evalkit.cli.summary_view import summary_table

        out = console()
        out.print(summary_table(record.summary))
        out.print(f"run id: [bold]{record.run_id}[/bold]   (evalkit show {record.run_id})")
    return 130 if record.status == "interrupted" else 0
