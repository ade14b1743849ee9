"""One evaluation run from start to finish: store, runner, signals, summary."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from evalkit.aggregate import summarise
from evalkit.datasets import file_sha256
from evalkit.provenance import evalkit_version, git_branch, git_info, new_run_id
from evalkit.runner import Runner, RunOptions, Tracer
from evalkit.schema import Case, CaseResult, RunSummary
from evalkit.scorers.registry import BoundScorer
from evalkit.store.db import Store
from evalkit.store.writer import StoreWriter
from evalkit.targets.base import Target


@dataclass
class RunPlan:
    """Everything a run needs, resolved."""

    suite: str
    cases: Iterable[Case]
    target: Target
    scorers: list[BoundScorer]
    concurrency: int = 16
    timeout_s: float = 60.0
    repeats: int = 1
    cache: bool = True
    total: int | None = None
    dataset_path: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    resume: bool = False
    skip: set[tuple[str, int]] = field(default_factory=set)


@dataclass
class RunRecord:
    run_id: str
    summary: RunSummary
    status: str


def read_frames(store: Store, run_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(case rows, score rows) of a run as polars frames."""
    cases = store.frame(
        "SELECT case_id, repeat, status, error, latency_ms, input_tokens, output_tokens, cost_usd, trace_id, tags"
        " FROM case_results WHERE run_id = ? ORDER BY case_id, repeat", [run_id]
    )
    scores = store.frame(
        "SELECT case_id, repeat, name, value, is_bool, passed, rationale, error FROM scores WHERE run_id = ?"
        " ORDER BY case_id, repeat, name", [run_id]
    )
    return cases, scores


def finalise(store: Store, run_id: str, suite: str, status: str) -> RunSummary:
    """Aggregate a run from the store and record its summary and status."""
    run = store.get_run(run_id)
    cases, scores = read_frames(store, run_id)
    ended = datetime.now(UTC)
    summary = summarise(run_id, suite, cases, scores, status=status, started_at=run["started_at"], ended_at=ended)
    store.update_run(run_id, status=status, ended_at=ended, summary=summary.model_dump(mode="json"))
    return summary


def start_run(plan: RunPlan, store: Store, run_id: str) -> None:
    """Create the run's row with its provenance (or mark a resumed run running again)."""
    if plan.resume:
        store.update_run(run_id, status="running")
        return
    where = plan.dataset_path.parent if plan.dataset_path else None
    commit, dirty = git_info(where)
    plan.config.setdefault("git_branch", git_branch(where))
    store.create_run({
        "run_id": run_id, "suite": plan.suite, "status": "running", "started_at": datetime.now(UTC),
        "target": plan.target.name, "dataset_path": str(plan.dataset_path) if plan.dataset_path else None,
        "dataset_sha256": file_sha256(plan.dataset_path) if plan.dataset_path else None,
        "cases_total": plan.total, "repeats": plan.repeats, "concurrency": plan.concurrency,
        "git_commit": commit, "git_dirty": dirty, "evalkit_version": evalkit_version(), "config": plan.config,
    })


def execute(
    plan: RunPlan,
    store: Store,
    *,
    tracer: Tracer | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
    handle_signals: bool = True,
) -> RunRecord:
    """Run the plan, writing results as they finish; returns the run's summary."""
    run_id = plan.run_id or new_run_id()
    start_run(plan, store, run_id)
    _warm_up(plan)
    writer = StoreWriter(store)
    runner = Runner(
        plan.target, plan.scorers,
        RunOptions(run_id=run_id, suite=plan.suite, concurrency=plan.concurrency, timeout_s=plan.timeout_s,
                   repeats=plan.repeats, cache=plan.cache, skip=plan.skip),
        writer, tracer=tracer, on_result=on_result,
    )

    async def main() -> str:
        loop = asyncio.get_running_loop()
        presses = 0

        def on_sigint() -> None:
            nonlocal presses
            presses += 1
            if presses == 1:
                runner.stop()
            else:
                runner.cancel()

        installed = False
        if handle_signals:
            try:
                loop.add_signal_handler(signal.SIGINT, on_sigint)
                loop.add_signal_handler(signal.SIGTERM, on_sigint)
                installed = True
            except (NotImplementedError, RuntimeError, ValueError):
                installed = False
        try:
            outcome = await runner.run(plan.cases)
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
        return outcome.status

    status = "failed"
    try:
        status = _run_async(main())
    finally:
        writer.close()
        flush = getattr(tracer, "flush", None)
        if flush is not None:
            flush()
        summary = finalise(store, run_id, plan.suite, status)
    return RunRecord(run_id=run_id, summary=summary, status=status)


def _warm_up(plan: RunPlan) -> None:
    """Pay the model stack's import before the clock starts, so it does not skew case latencies."""
    models = [*plan.target.models, *(m for s in plan.scorers if isinstance(m := getattr(s.fn, "model", None), str))]
    if models:
        from evalkit.llm.facade import warm_up

        warm_up(models)


def _run_async(coro: Any) -> Any:
    """Run a coroutine, also from inside a running loop (notebooks) by using a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
