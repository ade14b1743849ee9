"""The worker side of the batch engines: run one chunk of a plan's cases in this process.

A :class:`ChunkJob` is plain data (cases, settings, the suite file to rebuild the target and scorers
from; nothing executable is pickled). :func:`run_chunk` runs evalkit's own async
:class:`~evalkit.runner.Runner` over it and writes results, scores and spans as Parquet parts into
the run's shard directory (the driver merges them into the store), or straight into a team store.
A chunk run again (a retry after its worker died) skips the cases an earlier attempt committed.
The same function is the body of a Ray task (:mod:`evalkit.batch.ray_engine`) and of a local
worker process (:mod:`evalkit.batch.local_workers`); the driver loop is :mod:`evalkit.batch.driver`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.batch.parquet_sink import ParquetShardSink, ShardSpanStore, committed_parts, part_keys
from evalkit.errors import UserError
from evalkit.runner import RunOutcome
from evalkit.schema import Case
from evalkit.store.db import Store


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
    capture_content: bool | None = None  # prompts and completions in spans (None: ``EVALKIT_TRACE_CONTENT``)
    fingerprint: str | None = None  # the driver's target and scorers (see :func:`fingerprint`): checked when set


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
    failures: list[str] = field(default_factory=list)  # the runner's own faults (a case's tracer or sink)
    abandoned: list[str] = field(default_factory=list)  # sync target calls left running after their timeout


def fingerprint(target: Any, scorers: list[Any]) -> str:
    """What a run's target and scorers are, as a hash comparable across processes (kind and config, not
    identity: objects inside a config count by type only)."""

    def plain(obj: Any) -> Any:
        if isinstance(obj, Path):
            return str(obj)
        dump = getattr(obj, "model_dump", None)
        return dump(mode="json") if callable(dump) else type(obj).__name__

    what = [getattr(target, "kind", None), getattr(target, "config", None),
            [[s.name, s.config, s.threshold] for s in scorers]]
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=plain).encode()).hexdigest()


# -- per worker process ---------------------------------------------------------------------

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
    if job.fingerprint is not None and fingerprint(target, scorers) != job.fingerprint:
        raise UserError(f"{job.suite_file}: the worker built another target or other scorers than the run's "
                        "(replaced in Python?); run it with workers 1")
    _built.clear()
    _built[key] = (target, scorers)
    return target, scorers


def _worker_tracer(job: ChunkJob) -> tuple[Any, ShardSpanStore | None]:
    if not job.tracing:
        return None, None
    from evalkit.tracing.setup import tracer_for_store

    spans = ShardSpanStore(Path(job.shard_dir), job.chunk)
    return tracer_for_store(spans, capture_content=job.capture_content), spans  # type: ignore[arg-type]  # the span sink only calls insert_frame


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


def _hung() -> set[str]:
    threads = sys.modules.get("evalkit.targets.threads")
    return set(threads.abandoned()) if threads is not None else set()


def run_chunk(job: ChunkJob) -> ChunkReport:
    """Run one chunk in this process (a Ray task or local worker body; also callable directly)."""
    global _model_share
    from evalkit.runner import Runner, RunOptions

    t0 = time.perf_counter()
    old_cwd = os.getcwd()
    if os.path.isdir(job.cwd):
        os.chdir(job.cwd)
    os.environ.update(job.env)
    hung_before = _hung()
    try:
        share = job.env.get("EVALKIT_MODEL_CONCURRENCY")
        if share != _model_share and "evalkit.llm.limiter" in sys.modules:
            from evalkit.llm import limiter

            limiter.reset()
        _model_share = share
        target, scorers = _rebuild(job)
        if job.store_url:
            report = _run_into_store(job, target, scorers, t0)
        else:
            shard_dir = Path(job.shard_dir)
            # A retried chunk skips the cases an earlier attempt already committed.
            skip = set(job.skip) | part_keys(committed_parts(shard_dir, job.chunk))
            tracer, span_store = _worker_tracer(job)
            # a part's spans are written before the part commits: a worker killed later loses neither
            sink = ParquetShardSink(shard_dir, job.chunk, flush_rows=job.flush_rows,
                                    before_write=None if tracer is None else tracer.sync)
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
            report = ChunkReport(
                chunk=job.chunk, cases=sink.written, errors=sink.errors, parts=sink.parts,
                spans=None if span_store is None else span_store.rows, status=outcome.status,
                seconds=time.perf_counter() - t0, pid=os.getpid(), failures=_failures(outcome, tracer),
            )
        report.abandoned = sorted(_hung() - hung_before)
        return report
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

        tracer = tracer_for_store(store, capture_content=job.capture_content)
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
                       seconds=time.perf_counter() - t0, pid=os.getpid(), failures=_failures(outcome, tracer))


def _failures(outcome: RunOutcome, tracer: Any) -> list[str]:
    """The chunk's failures, and spans it could not write (after the tracer's flush)."""
    lost = tracer.loss_note() if tracer is not None else None
    return [*outcome.failures, *([lost] if lost else [])]


__all__ = ["ChunkJob", "ChunkReport", "fingerprint", "run_chunk"]
