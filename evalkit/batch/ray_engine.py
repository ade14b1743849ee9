"""The Ray engine: cases run on Ray workers; results go straight into a team store, or come back as
Parquet shards the driver merges into a file store.

The driver loop is :mod:`evalkit.batch.driver` (shared with the local worker processes of
:mod:`evalkit.batch.local_workers`); each chunk is a Ray task running
:func:`~evalkit.batch.chunks.run_chunk`, which rebuilds the suite's target and scorers from the
suite file (nothing executable is pickled). This module holds the Ray side only: connecting to (or
starting) Ray and submitting, waiting for and cancelling tasks. Ray retries a task whose worker
died (``max_retries=2``); a retried chunk skips the cases an earlier attempt committed.

With a team store (``EVALKIT_STORE=ducklake+postgresql://…``) there are no shards: each worker opens
the store and writes its results and spans itself, as a local run does, and the driver only watches
the totals.

A local Ray is started on demand (and stopped afterwards) unless Ray is already initialised or
``address`` names a cluster. On a multi-node cluster the workers need evalkit and the agent's
code installed, and the suite, dataset and shard directory at the same paths (a shared disk);
provider credentials must be set in the workers' environment (they are never shipped with tasks).
"""

from __future__ import annotations

import os
from typing import Any

from evalkit.batch.chunks import ChunkJob, ChunkReport, run_chunk
from evalkit.batch.driver import (
    OVERRIDE_KEYS,
    ChunkCancelled,
    ProgressFn,
    WorkerDied,
    WorkerFailed,
    check_engine_inputs,
    discard_shards,
    drive_plan,
)
from evalkit.errors import UserError
from evalkit.pipeline.plan import Plan
from evalkit.runner import RunOutcome
from evalkit.store.db import Store

ENGINE = "ray engine"


def _connect(address: str | None, num_workers: int | None) -> bool:
    """Make sure Ray is initialised; True when this call started a local Ray (to stop it afterwards)."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except Exception as exc:
            raise UserError(f"cannot connect to the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a local Ray started for one run stays offline
    ray.init(num_cpus=num_workers or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    return True


def _cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _worker_error(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}".rstrip(": ")


class RayExecutor:
    """Chunks as Ray tasks (one CPU each); Ray itself retries a task whose worker died."""

    retries = 0

    def __init__(self, workers: int) -> None:
        import ray

        self.workers = workers
        self._remote = ray.remote(num_cpus=1, max_retries=2)(run_chunk)
        self._cancelled: set[Any] = set()

    def submit(self, job: ChunkJob) -> Any:
        return self._remote.remote(job)

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        import ray

        ready, _ = ray.wait(handles, num_returns=1, timeout=timeout)
        return list(ready)

    def result(self, handle: Any) -> ChunkReport:
        import ray

        try:
            report: ChunkReport = ray.get(handle)
        except ray.exceptions.TaskCancelledError:
            if handle in self._cancelled:
                raise ChunkCancelled() from None
            raise WorkerDied() from None
        except ray.exceptions.WorkerCrashedError:
            raise WorkerDied() from None
        except ray.exceptions.RayError as exc:
            raise WorkerFailed(_worker_error(exc)) from None
        return report

    def cancel(self, handles: list[Any]) -> None:
        import ray

        for ref in handles:
            self._cancelled.add(ref)
            ray.cancel(ref)


def run_on_ray(
    plan: Plan,
    store: Store,
    *,
    overrides: dict[str, Any] | None = None,
    address: str | None = None,
    num_workers: int | None = None,
    tracing: bool = True,
    chunk_size: int | None = None,
    on_progress: ProgressFn | None = None,
    handle_signals: bool = True,
    keep_shards: bool = False,
    poll_s: float = 0.5,
) -> RunOutcome:
    """Run a started ``plan`` on Ray workers and merge their Parquet shards into ``store``.

    The workers rebuild the target and scorers from the plan's suite file; ``overrides`` may
    replace them (``target``: a target spec, ``scorers``: a list of scorer specs) and add worker
    environment variables (``env``). ``address`` names an existing cluster (``auto``,
    ``host:port``); otherwise a local Ray with ``num_workers`` CPUs (default: all) is started
    for the run. ``on_progress(cases, errors, tokens, cost_usd)`` gets the run's stored totals
    after each merge. Returns the engine's outcome; the pipeline finalises the run.
    """
    overrides = overrides or {}
    suite_path = check_engine_inputs(plan, overrides, ENGINE)
    try:
        import ray
    except ImportError:
        raise UserError("the Ray engine needs Ray: pip install 'evalkit[ray]'") from None

    started_ray = _connect(address, num_workers)
    try:
        executor = RayExecutor(num_workers or _cluster_cpus())
        outcome = drive_plan(plan, store, executor, engine=ENGINE, suite_path=suite_path,
                             config={"ray": {"address": address or "local"}}, overrides=overrides, tracing=tracing,
                             chunk_size=chunk_size, on_progress=on_progress, handle_signals=handle_signals,
                             poll_s=poll_s)
    finally:
        if started_ray:
            ray.shutdown()
    if not keep_shards:
        discard_shards(store, plan.run_id)
    return outcome


__all__ = ["OVERRIDE_KEYS", "ChunkJob", "ChunkReport", "RayExecutor", "run_chunk", "run_on_ray"]
