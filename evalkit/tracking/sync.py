"""``sync``: log the runs MLflow has not seen yet (idempotent; safe to run twice)."""

from __future__ import annotations

from dataclasses import dataclass, field

from evalkit.store.db import Store
from evalkit.tracking.errors import TrackingError, TrackingUnavailable
from evalkit.tracking.mlflow_log import log_run


@dataclass
class SyncReport:
    logged: dict[str, str] = field(default_factory=dict)  # evalkit run id -> MLflow run id
    failed: dict[str, str] = field(default_factory=dict)  # evalkit run id -> error
    pending: list[str] = field(default_factory=list)  # not attempted (server went away)
    traces: dict[str, int] = field(default_factory=dict)  # evalkit run id -> case traces written now


def unsynced(store: Store, *, suite: str | None = None, every: bool = False) -> list[str]:
    """Finished runs without an MLflow run id (``every``: all finished runs, to re-check them)."""
    cond = ["status <> 'running'"]
    params: list[str] = []
    if not every:
        cond.append("mlflow_run_id IS NULL")
    if suite:
        cond.append("suite = ?")
        params.append(suite)
    rows = store.execute(f"SELECT run_id FROM runs WHERE {' AND '.join(cond)} ORDER BY started_at", params)
    return [r[0] for r in rows]


def sync_runs(
    store: Store,
    *,
    tracking_uri: str | None = None,
    team: str | None = None,
    suite: str | None = None,
    every: bool = False,
    traces: str | None = None,
    run_ids: list[str] | None = None,
) -> SyncReport:
    """Log every unsynced run; stops at the first unreachable-server error (the rest stay pending).

    ``traces`` (a trace mode, see :mod:`evalkit.tracking.mlflow_traces`): also (re)log the per-case
    traces of every finished run, those already in MLflow included; traces already there are skipped.
    ``run_ids``: exactly these runs (logged again if they are there: logging is idempotent).
    """
    report = SyncReport()
    todo = run_ids if run_ids is not None else unsynced(store, suite=suite, every=every or traces is not None)
    for i, run_id in enumerate(todo):
        try:
            report.logged[run_id] = log_run(store, run_id, tracking_uri=tracking_uri, team=team)
            if traces is not None:
                from evalkit.tracking.mlflow_traces import log_case_traces

                done = log_case_traces(store, run_id, mode=traces, tracking_uri=tracking_uri, team=team,
                                       mlflow_run_id=report.logged[run_id])
                report.traces[run_id] = done.logged
                if done.failed:
                    report.failed[run_id] = f"{done.failed} case trace(s) failed: {'; '.join(done.errors[:1])}"
        except TrackingUnavailable as exc:
            report.failed[run_id] = exc.message
            report.pending = todo[i + 1:]
            break
        except TrackingError as exc:
            report.failed[run_id] = exc.message
    return report
