"""The Ray engine: cases run on Ray workers; results go straight into a team store, or come back as
Parquet shards the driver merges into a file store.

The driver cuts the case stream into contiguous chunks (in dataset order, so by stable case id)
and keeps ``num_workers`` chunks in flight as Ray tasks. Each task rebuilds the suite's target
and scorers from the suite file (nothing executable is pickled), runs evalkit's own async
:class:`~evalkit.runner.Runner` over its chunk and writes results, scores and spans as Parquet
parts. Only the driver opens the DuckDB store: it merges committed parts as they appear (so
``evalkit status`` and the progress bar move), then the spans of each finished chunk. The
pipeline (:mod:`evalkit.pipeline`) plans, starts and finalises the run around it.

With a team store (``EVALKIT_STORE=ducklake+postgresql://…``) there are no shards: each worker opens
the store and writes its results and spans itself, as a local run does, and the driver only watches
the totals. A retried chunk skips the cases the store already holds, so every case lands once.

Limits are cluster-wide, as on one machine: the run's ``concurrency`` and the per-model limit
(``EVALKIT_MODEL_CONCURRENCY``) are divided between the workers. Retries with backoff, the
adaptive rate limiter and the response cache run inside each worker exactly as in a local run.

A local Ray is started on demand (and stopped afterwards) unless Ray is already initialised or
``address`` names a cluster. On a multi-node cluster the workers need evalkit and the agent's
code installed, and the suite, dataset and shard directory at the same paths (a shared disk);
provider credentials must be set in the workers' environment (they are never shipped with tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.batch.parquet_sink import (
    ParquetShardSink,
    ShardSpanStore,
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


# -- what travels to a worker --------------------------------------------------------------

@dataclass
class ChunkJob:
    """One chunk of cases and everything a worker needs to run it (all plain data)."""

    run_id: str
    suite: str
    suite_file: str
    suite_sha256: str
    scorer_names: list[str]
    cwd: str
    env: dict[str, str]
    overrides: dict[str, Any]
    concurrency: int
    timeout_s: float
    repeats: int
    cache: bool
    tracing: bool
    shard_dir: str
    chunk: int
    cases: list[Case]
    skip: list[tuple[str, int]] = field(default_factory=list)
    flush_rows: int = 500
    store_url: str | None = None  # a team store the worker writes into itself (no shards)


@dataclass
class ChunkReport:
    chunk: int
    cases: int
    errors: int
    parts: int
    spans: int | None  # None: the chunk ran without tracing
    status: str
    seconds: float
    pid: int


# -- worker side ---------------------------------------------------------------------------

_built: dict[str, tuple[Any, list[Any]]] = {}
_stores: dict[str, Store] = {}  # team stores this worker process writes into, kept open across chunks
_loop: asyncio.AbstractEventLoop | None = None
_model_share: str | None = None


def _rebuild(job: ChunkJob) -> tuple[Any, list[Any]]:
    """The suite's target and scorers, built once per worker process and suite version."""
    key = json.dumps([job.suite_file, job.suite_sha256, job.overrides], sort_keys=True, default=str)
    hit = _built.get(key)
    if hit is not None:
        return hit
    from evalkit.scorers.registry import build_scorer
    from evalkit.suite import load_suite
    from evalkit.targets import build_target

    spec_target = job.overrides.get("target")
    suite = load_suite(job.suite_file, build_target_now=spec_target is None)
    target = build_target(spec_target, Path(job.suite_file).parent) if spec_target is not None else suite.target
    specs = job.overrides.get("scorers")
    scorers = [build_scorer(s) for s in specs] if specs is not None else suite.scorers
    if target is None:
        raise UserError(f"{job.suite_file}: no target to run")
    names = [s.name for s in scorers]
    if names != job.scorer_names:
        raise UserError(f"{job.suite_file}: the worker built scorers {names}, the driver planned {job.scorer_names}")
    _built.clear()
    _built[key] = (target, scorers)
    return target, scorers


def _worker_tracer(job: ChunkJob) -> tuple[Any, ShardSpanStore | None]:
    if not job.tracing:
        return None, None
    from evalkit.tracing.setup import tracer_for_store

    spans = ShardSpanStore(Path(job.shard_dir), job.chunk)
    return tracer_for_store(spans), spans  # type: ignore[arg-type]  # the span sink only calls insert_frame


def _discard_loop() -> None:
    global _loop
    loop, _loop = _loop, None
    if loop is None or loop.is_closed():
        return
    tasks = asyncio.all_tasks(loop)
    for t in tasks:
        t.cancel()
    with contextlib.suppress(BaseException):
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.close()


def run_chunk(job: ChunkJob) -> ChunkReport:
    """Run one chunk in this process (a Ray task body; also callable directly)."""
    global _model_share
    from evalkit.runner import Runner, RunOptions

    t0 = time.perf_counter()
    old_cwd = os.getcwd()
    if os.path.isdir(job.cwd):
        os.chdir(job.cwd)
    os.environ.update(job.env)
    try:
        share = job.env.get("EVALKIT_MODEL_CONCURRENCY")
        if share != _model_share and "evalkit.llm.limiter" in sys.modules:
            from evalkit.llm import limiter

            limiter.reset()
        _model_share = share
        target, scorers = _rebuild(job)
        if job.store_url:
            return _run_into_store(job, target, scorers, t0)
        shard_dir = Path(job.shard_dir)
        # A retried chunk skips the cases an earlier attempt already committed.
        skip = set(job.skip) | part_keys(committed_parts(shard_dir, job.chunk))
        sink = ParquetShardSink(shard_dir, job.chunk, flush_rows=job.flush_rows)
        tracer, span_store = _worker_tracer(job)
        runner = Runner(
            target, scorers,
            RunOptions(run_id=job.run_id, suite=job.suite, concurrency=job.concurrency, timeout_s=job.timeout_s,
                       repeats=job.repeats, cache=job.cache, skip=skip),
            sink, tracer=tracer,
        )
        outcome = _run_on_loop(runner, job.cases)
        sink.flush()
        if tracer is not None:
            tracer.flush()
        return ChunkReport(
            chunk=job.chunk, cases=sink.written, errors=sink.errors, parts=sink.parts,
            spans=None if span_store is None else span_store.rows, status=outcome.status,
            seconds=time.perf_counter() - t0, pid=os.getpid(),
        )
    finally:
        if "evalkit.llm.cache" in sys.modules:
            from evalkit.llm import cache

            cache.close()  # flush this chunk's responses; the next chunk re-reads the keys others wrote
        os.chdir(old_cwd)


def _run_on_loop(runner: Any, cases: list[Case]) -> RunOutcome:
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()  # kept: HTTP clients and model limiters live per loop
    try:
        outcome: RunOutcome = _loop.run_until_complete(runner.run(cases))
    except BaseException:  # cancelled (ray.cancel) or broken: no task of this chunk may outlive it
        _discard_loop()
        raise
    return outcome


def _run_into_store(job: ChunkJob, target: Any, scorers: list[Any], t0: float) -> ChunkReport:
    """A chunk whose results and spans this worker writes into the team store itself."""
    from evalkit.runner import Runner, RunOptions
    from evalkit.store.reads import done_keys
    from evalkit.store.writer import StoreWriter

    assert job.store_url is not None
    store = _stores.get(job.store_url)
    if store is None:
        store = _stores[job.store_url] = Store(job.store_url)
    ids = {c.id for c in job.cases}
    stored = done_keys(store, job.run_id, outcomes=("completed", "errored", "cancelled"))
    skip = set(job.skip) | {k for k in stored if k[0] in ids}  # what an earlier attempt committed
    tracer = None
    if job.tracing:
        from evalkit.tracing.setup import tracer_for_store

        tracer = tracer_for_store(store)
    writer = StoreWriter(store, before_write=None if tracer is None else tracer.sync)
    runner = Runner(target, scorers,
                    RunOptions(run_id=job.run_id, suite=job.suite, concurrency=job.concurrency, timeout_s=job.timeout_s,
                               repeats=job.repeats, cache=job.cache, skip=skip),
                    writer, tracer=tracer)
    try:
        outcome = _run_on_loop(runner, job.cases)
    finally:
        writer.close()  # raises a write failure: the chunk fails, the driver says so
        if tracer is not None:
            tracer.flush()
    return ChunkReport(chunk=job.chunk, cases=writer.written, errors=writer.errors, parts=0,
                       spans=None if tracer is None else tracer.sink.written, status=outcome.status,
                       seconds=time.perf_counter() - t0, pid=os.getpid())


# -- driver side ---------------------------------------------------------------------------

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


def _shard_root(store: Store) -> Path:
    base = store.path.parent if str(store.path) != ":memory:" else Path(".evalkit")
    return (base / "shards").resolve()


def _worker_error(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}".rstrip(": ")


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
    unknown = set(overrides) - OVERRIDE_KEYS
    if unknown:
        raise UserError(f"ray engine: unknown override '{sorted(unknown)[0]}' (known: {', '.join(sorted(OVERRIDE_KEYS))})")
    if plan.suite.path is None or not Path(plan.suite.path).is_file():
        raise UserError("the ray engine needs a suite file (workers rebuild the target and scorers from it)")
    suite_path = Path(plan.suite.path).resolve()
    try:
        import ray
    except ImportError:
        raise UserError("the Ray engine needs Ray: pip install 'evalkit[ray]'") from None
    if "evalkit.llm.cache" in sys.modules:
        from evalkit.llm import cache

        cache.flush()  # workers read the cache file: everything this process learnt must be in it

    s = plan.settings
    started_ray = _connect(address, num_workers)
    try:
        workers = num_workers or _cluster_cpus()
        run_id = plan.run_id
        shard_dir = _shard_root(store) / run_id
        direct = store.shared  # workers write the team store themselves
        total_cases = len(plan.cases)
        size = chunk_size or min(1000, max(1, math.ceil(total_cases / (workers * 4))))
        store.update_run(run_id, config={**plan.config, "ray": {"workers": workers, "chunk_size": size,
                                                                 "address": address or "local"}})
        skip = set(plan.skip)
        if plan.mode != "new" and shard_dir.exists() and not direct:  # shards an interrupted driver never merged
            leftover = committed_parts(shard_dir)
            merge_parts(store, run_id, leftover)
            merge_spans(store, run_id, span_files(shard_dir), dedupe=True)
            skip |= part_keys(leftover)
            shutil.rmtree(shard_dir)
        if not direct:
            shard_dir.mkdir(parents=True, exist_ok=True)

        job_base = dict(
            run_id=run_id, suite=plan.suite.name, suite_file=str(suite_path), suite_sha256=_sha256(suite_path),
            scorer_names=[sc.name for sc in plan.suite.scorers], cwd=os.getcwd(), env=_worker_env(overrides, workers),
            overrides={k: v for k, v in overrides.items() if k != "env"},
            concurrency=max(1, math.ceil(s.concurrency / workers)), timeout_s=s.timeout_s,
            repeats=s.repeats, cache=s.cache, tracing=tracing, shard_dir=str(shard_dir),
            store_url=store.url.text if direct and store.url else None,
        )
        remote = ray.remote(num_cpus=1, max_retries=2)(run_chunk)
        outcome = _drive(remote, job_base, plan, skip, size, workers, store, run_id, shard_dir,
                         on_progress, handle_signals, poll_s)
    finally:
        if started_ray:
            ray.shutdown()
    if not keep_shards:
        shutil.rmtree(shard_dir, ignore_errors=True)
    return outcome


def _drive(
    remote: Any, job_base: dict[str, Any], plan: Plan, skip: set[tuple[str, int]], size: int, workers: int,
    store: Store, run_id: str, shard_dir: Path, on_progress: ProgressFn | None, handle_signals: bool, poll_s: float,
) -> RunOutcome:
    """Submit chunks (at most ``workers`` in flight), merge parts as they land; returns the engine's outcome."""
    import ray

    merged: set[Path] = set()
    pending: dict[Any, int] = {}
    failure: str | None = None
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
        new = [p for p in committed_parts(shard_dir) if p.cases not in merged]
        if new:
            merge_parts(store, run_id, new)
            merged.update(p.cases for p in new)
            if on_progress is not None:
                on_progress(*run_totals(store, run_id))

    repeats = plan.settings.repeats
    chunks = enumerate(_chunks(plan.cases, size))

    def submit_next() -> bool:
        for index, cases in chunks:
            keys = [(c.id, r) for c in cases for r in range(repeats) if (c.id, r) in skip]
            if len(keys) == len(cases) * repeats:
                continue  # everything here is done already
            todo = [c for c in cases if any((c.id, r) not in skip for r in range(repeats))]
            pending[remote.remote(ChunkJob(chunk=index, cases=todo, skip=keys, **job_base))] = index
            return True
        return False

    try:
        while len(pending) < workers and submit_next():
            pass
        while pending:
            if stop.presses >= 2 and not cancelled:
                for ref in pending:
                    ray.cancel(ref)
                cancelled = True
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=poll_s)
            merge_new()
            for ref in ready:
                index = pending.pop(ref)
                try:
                    report: ChunkReport = ray.get(ref)
                    if report.status != "completed":
                        cancelled = True
                except (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError):
                    if not cancelled:
                        failure = failure or f"chunk {index}: the worker died"
                except ray.exceptions.RayError as exc:
                    failure = failure or f"chunk {index}: {_worker_error(exc)}"
                merge_new()  # this chunk's last parts, before its spans
                if not direct:
                    merge_spans(store, run_id, span_files(shard_dir, index))
                if failure is None and stop.presses == 0:
                    submit_next()
    finally:
        stop.restore()
    merge_new()
    if direct:  # spans of cases a dead worker had in flight (run again since, under new trace ids)
        store.execute("DELETE FROM spans WHERE run_id = $run AND trace_id NOT IN (SELECT trace_id FROM case_results"
                      " WHERE run_id = $run AND trace_id IS NOT NULL)", {"run": run_id})
    if failure is not None:
        return RunOutcome(status="failed", failures=[f"ray engine: {failure}"])
    return RunOutcome(status="interrupted" if stop.presses or cancelled else "completed")


__all__ = ["ChunkJob", "ChunkReport", "run_chunk", "run_on_ray"]
