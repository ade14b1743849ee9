"""The run use-case: plan → engine → finalise → gate → outputs → tracking, for every door.

The CLI, ``evaluate()`` and the batch engines call :func:`run_suite`; the pytest plugin runs its
cases as test items and joins at :func:`finish` (finalise → conclude), so every door gets the
same ledger, gate and tracking.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from evalkit.errors import StoreError, UserError
from evalkit.pipeline.conclude import conclude
from evalkit.pipeline.engine import run_local
from evalkit.pipeline.finalise import cancel_unstarted, finalise
from evalkit.pipeline.finished import FinishedRun
from evalkit.pipeline.plan import Door, Plan, make_plan, start_run
from evalkit.pipeline.settings import RunSettings
from evalkit.runner import RunOutcome
from evalkit.schema import CaseResult
from evalkit.store.db import Store, open_store
from evalkit.suite import Suite


class Progress(Protocol):
    """What a progress display gets told (the CLI's bar; nothing for the API)."""

    def update(self, result: CaseResult) -> None: ...

    def set_totals(self, cases: int, errors: int, tokens: int, cost_usd: float) -> None: ...

    def close(self) -> None: ...


def run_suite(
    suite: Suite,
    settings: RunSettings,
    explicit: frozenset[str] = frozenset(),
    *,
    door: Door,
    store: Store | Path | str | None = None,
    progress: Callable[[Plan], Progress] | None = None,
    handle_signals: bool = True,
    config: dict[str, Any] | None = None,
) -> FinishedRun:
    """Run a loaded suite under ``settings``; ``store`` is a Store, a path, or None for the workspace store."""
    if suite.target is None:
        raise UserError("no target: give target= or a suite with a target", file=suite.path)
    if not suite.scorers:
        raise UserError("no scorers: give scorers= or a suite with scorers", file=suite.path)
    own = not isinstance(store, Store)
    st = store if isinstance(store, Store) else open_store(store)
    try:
        plan = make_plan(suite, settings, explicit, st, door=door, config=config)
        bar = progress(plan) if progress is not None else None
        start_run(plan, st)
        receiver = None
        if settings.collect is not None:
            from evalkit.tracing.receiver import start_receiver

            receiver = start_receiver(st, "127.0.0.1", settings.collect)
        hung_before = set(_abandoned())
        try:
            outcome = _execute(plan, st, bar, handle_signals)
        finally:
            if receiver is not None:
                receiver.close()
            if bar is not None:
                bar.close()
        hung = [c for c in _abandoned() if c not in hung_before]
        if hung:  # their threads are daemons: they cannot keep the process from exiting
            outcome.failures.append(f"{len(hung)} target call(s) still running after their timeout were abandoned: "
                                    + ", ".join(hung[:3]) + (" …" if len(hung) > 3 else ""))
        return close_run(st, plan, outcome)
    finally:
        if own:
            st.close()


def close_run(store: Store, plan: Plan, outcome: RunOutcome) -> FinishedRun:
    """The ledger closes (unstarted work cancelled), then finalise and conclude.

    When the store itself failed, the run is marked failed as far as the store still allows and
    the failure is raised as one clear :class:`StoreError` (exit 3) with how to continue.
    """
    if outcome.store_error is not None:
        with contextlib.suppress(Exception):
            finalise(store, plan.run_id, plan.suite.name, planned=plan.planned, engine=outcome)
        raise StoreError(f"{outcome.store_error}; the cases finished before it are stored: free the space, "
                         f"then continue with: {plan.resume_command()}")
    if outcome.status == "interrupted":
        cancel_unstarted(store, plan.run_id, plan.keys(), [s.name for s in plan.suite.scorers],
                         "run interrupted before it started")
    return finish(store, plan.run_id, plan.suite.name, planned=plan.planned, outcome=outcome, settings=plan.settings,
                  thresholds=plan.thresholds, baseline_id=plan.baseline_id, suite_file=plan.suite.path,
                  resume_command=plan.resume_command(), notes=plan.notes)


def finish(store: Store, run_id: str, suite: str, *, planned: int | None, outcome: RunOutcome, settings: RunSettings,
           thresholds: list[Any], baseline_id: str | None = None, suite_file: Path | None = None,
           resume_command: str | None = None, notes: Sequence[str] = ()) -> FinishedRun:
    """Finalise (ledger and summary) and conclude (gate, outputs, tracking): the shared end of every door."""
    from evalkit.store.reads import run_frames

    frames = run_frames(store, run_id)  # read once: finalise, the gate and evaluate() share them
    summary = finalise(store, run_id, suite, planned=planned, engine=outcome, notes=notes, frames=frames)
    return conclude(store, summary, settings=settings, thresholds=thresholds, baseline_id=baseline_id,
                    suite_file=suite_file, resume_command=resume_command, frames=frames)


def _execute(plan: Plan, store: Store, bar: Progress | None, handle_signals: bool) -> RunOutcome:
    s = plan.settings
    on_progress = bar.set_totals if bar is not None else None
    if s.engine == "ray":
        from evalkit.batch.ray_engine import run_on_ray

        try:
            return run_on_ray(plan, store, address=s.ray_address, num_workers=plan.workers, tracing=s.tracing,
                              on_progress=on_progress, handle_signals=handle_signals)
        except UserError as exc:  # a worker fault after the run started: the run is failed, not lost
            return RunOutcome(status="failed", failures=[exc.message])
    if plan.workers is not None and plan.workers > 1:  # local worker processes, driven as the Ray engine's
        from evalkit.batch.local_workers import run_on_workers

        try:
            return run_on_workers(plan, store, workers=plan.workers, tracing=s.tracing, on_progress=on_progress,
                                  handle_signals=handle_signals)
        except UserError as exc:
            return RunOutcome(status="failed", failures=[exc.message])
    if plan.mode != "new" and not store.shared:  # continuing a run workers began: what they committed counts
        from evalkit.batch.driver import recover_shards

        recover_shards(plan, store)
    tracer = None
    if s.tracing:
        from evalkit.tracing.setup import tracer_for_store

        tracer = tracer_for_store(store, capture_content=s.capture_content)
    return run_local(plan, store, tracer=tracer, on_result=bar.update if bar is not None else None,
                     handle_signals=handle_signals)


def _abandoned() -> Sequence[str]:
    """Sync target calls that outlived their timeout (only once sync targets have run at all)."""
    import sys

    threads = sys.modules.get("evalkit.targets.threads")
    return threads.abandoned() if threads is not None else ()
