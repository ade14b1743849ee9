"""The driver of the batch engines: cut a plan's cases into chunks, keep workers busy, merge what they commit.

The driver cuts the case stream into contiguous chunks (in dataset order, so by stable case id)
and keeps one chunk per worker in flight through an :class:`Executor`: Ray tasks
(:mod:`evalkit.batch.ray_engine`) or local worker processes (:mod:`evalkit.batch.local_workers`).
Each chunk runs :func:`~evalkit.batch.chunks.run_chunk`, which writes results, scores and spans as
Parquet parts. Only the driver opens the DuckDB store: it merges committed parts as they appear (so
``evalkit status`` and the progress bar move), then the spans of each finished chunk. With a team
store the workers write it themselves and the driver only watches the totals. The pipeline
(:mod:`evalkit.pipeline`) plans, starts and finalises the run around it; what a stopped run never
started it records as cancelled.

A chunk whose worker died is run again (``Executor.retries`` times; Ray retries its tasks itself),
skipping the cases it had committed. First Ctrl-C (or SIGTERM): start no more chunks, let the ones in
flight finish; second: cancel the chunks in flight.

Limits are engine-wide, as on one machine: the run's ``concurrency`` and the per-model limit
(``EVALKIT_MODEL_CONCURRENCY``) are divided between the workers. Retries with backoff, the adaptive
rate limiter and the response cache run inside each worker exactly as in a local run.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from evalkit.batch.chunks import ChunkJob, ChunkReport, fingerprint
from evalkit.batch.parquet_sink import (
    committed_parts,
    merge_parts,
    merge_spans,
    part_keys,
    run_totals,
    span_files,
)
from evalkit.errors import UserError
from evalkit.pipeline.plan import Plan
from evalkit.runner import RunOutcome
from evalkit.schema import Case
from evalkit.store.db import Store

OVERRIDE_KEYS = frozenset({"target", "scorers", "env"})
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
ProgressFn = Callable[[int, int, int, float], None]
FLUSH_ROWS = 500  # a worker commits a Parquet part every this many cases


# -- what an engine provides -----------------------------------------------------------------

class WorkerDied(Exception):  # a fact about the worker, not an error of the driver
    """The worker running a chunk is gone (killed, crashed, lost): the chunk may run again."""


class WorkerFailed(Exception):
    """The chunk raised in its worker (a broken suite file, a store that refused a write): its message says why."""


class ChunkCancelled(Exception):
    """The chunk was cancelled (the driver asked for it)."""


class Executor(Protocol):
    """Runs :class:`ChunkJob` s somewhere; a handle stands for one submitted chunk."""

    workers: int  # chunks the driver keeps in flight (and divides the limits by)
    retries: int  # times the driver runs a chunk again whose worker died (0: the engine retries itself)

    def submit(self, job: ChunkJob) -> Any:
        """Start a chunk; returns its handle (never raises: a failure to start shows in :meth:`result`)."""
        ...

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        """The handles among ``handles`` whose chunk ended, waiting at most ``timeout`` seconds for one."""
        ...

    def result(self, handle: Any) -> ChunkReport:
        """The report of an ended chunk; raises :class:`WorkerDied`, :class:`WorkerFailed` or :class:`ChunkCancelled`."""
        ...

    def cancel(self, handles: list[Any]) -> None:
        """Stop the chunks in flight (they end as :class:`ChunkCancelled`)."""
        ...


# -- shared by the engines -------------------------------------------------------------------

def check_engine_inputs(plan: Plan, overrides: dict[str, Any], engine: str) -> Path:
    """The suite file the workers rebuild the target and scorers from (bad overrides, no file: UserError)."""
    unknown = set(overrides) - OVERRIDE_KEYS
    if unknown:
        raise UserError(f"{engine}: unknown override '{sorted(unknown)[0]}' (known: {', '.join(sorted(OVERRIDE_KEYS))})")
    if plan.suite.path is None or not Path(plan.suite.path).is_file():
        raise UserError(f"the {engine} needs a suite file (workers rebuild the target and scorers from it)")
    return Path(plan.suite.path).resolve()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _worker_env(overrides: dict[str, Any], workers: int) -> dict[str, str]:
    """EVALKIT_* settings for the workers (never credentials), with the per-model limit divided."""
    env = {k: v for k, v in os.environ.items()
           if k.startswith("EVALKIT_") and not any(w in k for w in _SECRET_WORDS)}
    from evalkit.llm.config import settings

    env["EVALKIT_MODEL_CONCURRENCY"] = str(max(1, math.ceil(settings().model_concurrency / workers)))
    env.update({str(k): str(v) for k, v in (overrides.get("env") or {}).items()})
    return env


def _chunks(cases: Iterable[Case], size: int) -> Iterator[list[Case]]:
    it = iter(cases)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _shard_root(store: Store) -> Path:
    base = store.path.parent if str(store.path) != ":memory:" else Path(".evalkit")
    return (base / "shards").resolve()


def shard_dir(store: Store, run_id: str) -> Path:
    """Where a run's Parquet parts go (beside the store file)."""
    return _shard_root(store) / run_id


def discard_shards(store: Store, run_id: str) -> None:
    """Remove a run's shard directory (once its workers are stopped)."""
    shutil.rmtree(shard_dir(store, run_id), ignore_errors=True)


def recover_shards(plan: Plan, store: Store) -> None:
    """A continued run: merge the parts its workers committed that an interrupted driver never merged (and
    their spans), add them to what the plan skips, and remove the shard directory. Any engine calls it."""
    shards = shard_dir(store, plan.run_id)
    if plan.mode == "new" or store.shared or not shards.exists():
        return
    leftover = committed_parts(shards)
    merge_parts(store, plan.run_id, leftover)
    merge_spans(store, plan.run_id, span_files(shards), dedupe=True)
    plan.skip |= part_keys(leftover)
    shutil.rmtree(shards)


class _Interrupt:
    """First Ctrl-C: start no more chunks. Second: cancel the chunks in flight."""

    def __init__(self) -> None:
        self.presses = 0
        self._old: list[tuple[int, Any]] = []

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old.append((sig, signal.signal(sig, self._on_signal)))

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.presses += 1

    def restore(self) -> None:
        for sig, old in self._old:
            signal.signal(sig, old)
        self._old.clear()


def drive_plan(
    plan: Plan,
    store: Store,
    executor: Executor,
    *,
    engine: str,
    suite_path: Path,
    config: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    tracing: bool = True,
    chunk_size: int | None = None,
    on_progress: ProgressFn | None = None,
    handle_signals: bool = True,
    poll_s: float = 0.5,
    check_suite: bool = False,
) -> RunOutcome:
    """Run a started ``plan`` through ``executor``; returns the engine's outcome (the pipeline finalises the run).

    ``engine`` names it in failures; ``config`` is stored under the run's config (``chunk_size`` and
    ``workers`` added to each of its entries); ``check_suite``: the workers check that they built the
    run's own target and scorers. The caller stops its workers, then :func:`discard_shards`.
    """
    overrides = overrides or {}
    if "evalkit.llm.cache" in sys.modules:
        from evalkit.llm import cache

        cache.flush()  # workers read the cache file: everything this process learnt must be in it

    s = plan.settings
    workers = max(1, executor.workers)
    run_id = plan.run_id
    shards = shard_dir(store, run_id)
    direct = store.shared  # workers write the team store themselves
    size = chunk_size or min(1000, max(1, math.ceil(len(plan.cases) / (workers * 4))))
    store.update_run(run_id, config={**plan.config, **{k: {"workers": workers, "chunk_size": size, **v}
                                                        for k, v in config.items()}})
    if not direct:
        recover_shards(plan, store)
    skip = set(plan.skip)
    if not direct:
        shards.mkdir(parents=True, exist_ok=True)

    replaced = any(k in overrides for k in ("target", "scorers"))
    job_base = dict(
        run_id=run_id, suite=plan.suite.name, suite_file=str(suite_path), suite_sha256=_sha256(suite_path),
        scorer_names=[sc.name for sc in plan.suite.scorers], cwd=os.getcwd(), env=_worker_env(overrides, workers),
        overrides={k: v for k, v in overrides.items() if k != "env"},
        concurrency=max(1, math.ceil(s.concurrency / workers)), timeout_s=s.timeout_s,
        repeats=s.repeats, cache=s.cache, tracing=tracing, shard_dir=str(shards), flush_rows=FLUSH_ROWS,
        store_url=store.url.text if direct and store.url else None, capture_content=s.capture_content,
        fingerprint=fingerprint(plan.suite.target, plan.suite.scorers) if check_suite and not replaced else None,
    )
    return _drive(executor, engine, job_base, plan, skip, size, workers, store, run_id, shards,
                  on_progress, handle_signals, poll_s)


def _drive(
    executor: Executor, engine: str, job_base: dict[str, Any], plan: Plan, skip: set[tuple[str, int]], size: int,
    workers: int, store: Store, run_id: str, shards: Path, on_progress: ProgressFn | None, handle_signals: bool,
    poll_s: float,
) -> RunOutcome:
    """Submit chunks (at most ``workers`` in flight), merge parts as they land; returns the engine's outcome."""
    merged: set[Path] = set()
    pending: dict[Any, ChunkJob] = {}
    attempts: dict[int, int] = {}
    failure: str | None = None
    notes: list[str] = []
    abandoned: list[str] = []
    cancelled = False
    stop = _Interrupt()
    if handle_signals:
        stop.install()

    direct = bool(job_base.get("store_url"))

    def merge_new() -> None:
        if direct:  # nothing to merge: the workers wrote the store; only the totals move
            if on_progress is not None:
                on_progress(*run_totals(store, run_id))
            return
        new = [p for p in committed_parts(shards) if p.cases not in merged]
        if new:
            merge_parts(store, run_id, new)
            merged.update(p.cases for p in new)
            if on_progress is not None:
                on_progress(*run_totals(store, run_id))

    repeats = plan.settings.repeats
    chunks = enumerate(_chunks(plan.cases, size))

    def submit(job: ChunkJob) -> None:
        pending[executor.submit(job)] = job

    def submit_next() -> bool:
        for index, cases in chunks:
            keys = [(c.id, r) for c in cases for r in range(repeats) if (c.id, r) in skip]
            if len(keys) == len(cases) * repeats:
                continue  # everything here is done already
            todo = [c for c in cases if any((c.id, r) not in skip for r in range(repeats))]
            submit(ChunkJob(chunk=index, cases=todo, skip=keys, **job_base))
            return True
        return False

    def step() -> None:
        """Wait for chunks to end (``poll_s`` at most), take their results, keep the workers busy."""
        nonlocal failure, cancelled
        if stop.presses >= 2 and not cancelled:
            executor.cancel(list(pending))
            cancelled = True
        ready = executor.wait(list(pending), poll_s)
        merge_new()
        for handle in ready:
            job = pending.pop(handle)
            index = job.chunk
            try:
                report = executor.result(handle)
                notes.extend(f"chunk {index}: {f}" for f in report.failures)
                abandoned.extend(report.abandoned)
                if report.status != "completed":
                    cancelled = True
            except WorkerDied as exc:
                tries = attempts.get(index, 0)
                why = f" ({exc})" if str(exc) else ""
                if cancelled:
                    pass
                elif tries < executor.retries and stop.presses:  # stopping: its unstarted cases are cancelled
                    notes.append(f"chunk {index}: the worker died{why} while the run was stopping")
                elif tries < executor.retries and failure is None:
                    attempts[index] = tries + 1  # run again: the cases it committed are skipped
                    notes.append(f"chunk {index}: the worker died{why}; the chunk ran again")
                    submit(job)
                    continue
                else:
                    more = f", {tries + 1} attempts" if executor.retries else ""
                    failure = failure or f"chunk {index}: the worker died{why}{more}"
            except ChunkCancelled:
                if not cancelled:
                    failure = failure or f"chunk {index}: the worker died"
            except WorkerFailed as exc:
                failure = failure or f"chunk {index}: {exc}"
            merge_new()  # this chunk's last parts, before its spans
            if not direct:
                merge_spans(store, run_id, span_files(shards, index))
            if failure is None and stop.presses == 0:
                submit_next()

    try:
        try:
            while len(pending) < workers and submit_next():
                pass
        except KeyboardInterrupt:  # no handler of ours (handle_signals=False): a Ctrl-C all the same
            stop.presses += 1
        while pending:
            try:
                step()
            except KeyboardInterrupt:
                stop.presses += 1
    finally:
        stop.restore()
    merge_new()
    if direct:  # spans of cases a dead worker had in flight (run again since, under new trace ids)
        store.execute("DELETE FROM spans WHERE run_id = $run AND trace_id NOT IN (SELECT trace_id FROM case_results"
                      " WHERE run_id = $run AND trace_id IS NOT NULL)", {"run": run_id})
    failures = [f"{engine}: {n}" for n in notes]
    if abandoned:  # as the local engine says it (see evalkit.pipeline.run)
        failures.append(f"{len(abandoned)} target call(s) still running after their timeout were abandoned: "
                        + ", ".join(abandoned[:3]) + (" …" if len(abandoned) > 3 else ""))
    if failure is not None:
        return RunOutcome(status="failed", failures=[*failures, f"{engine}: {failure}"])
    return RunOutcome(status="interrupted" if stop.presses or cancelled else "completed", failures=failures)


__all__ = ["ChunkCancelled", "Executor", "WorkerDied", "WorkerFailed", "check_engine_inputs", "discard_shards",
           "drive_plan", "recover_shards", "shard_dir"]
