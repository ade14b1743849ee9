"""Local worker processes (``--workers N``): the Ray engine's driver and chunks, on this machine's cores.

The driver (:mod:`evalkit.batch.driver`) is the Ray engine's: chunks of cases in dataset order, one per
worker in flight, Parquet parts merged into the store as they are committed (one store writer: this
process), or written by the workers themselves into a team store. Each worker is a fresh interpreter
(never a fork: forking a process that holds DuckDB connections and threads is not safe, see
:mod:`evalkit.store.lease`), kept for the whole run, running :func:`~evalkit.batch.chunks.run_chunk`,
which rebuilds the target and scorers from the suite file. Workers are started as ``python -c``
(:mod:`evalkit.batch.worker_main`) rather than by :mod:`multiprocessing`'s ``spawn``, which would run
the caller's ``__main__`` again in every worker (an unguarded script calling ``evaluate()`` would
start runs from its workers).

- A worker that dies (SIGKILL, a segfault, ``os._exit`` in the agent) loses nothing: its chunk runs
  again in a new process, up to twice, skipping the cases it had committed. Only the dead worker is
  replaced; the others keep going.
- Workers ignore SIGINT: Ctrl-C is the driver's, as with Ray (first: no new chunks; second: the
  workers running chunks are terminated and what they had not committed is recorded cancelled).
- A worker whose driver is gone exits at once; ``--resume`` merges what it had committed.
- Workers inherit this process's environment (a local engine), plus the EVALKIT_* settings of the
  run with the per-model limit divided between them. What they print goes to stderr (``--json``
  output stays clean).
"""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from evalkit.batch.chunks import ChunkJob, ChunkReport
from evalkit.batch.driver import (
    ChunkCancelled,
    ProgressFn,
    WorkerDied,
    WorkerFailed,
    check_engine_inputs,
    discard_shards,
    drive_plan,
)
from evalkit.batch.worker_main import BOOT
from evalkit.runner import RunOutcome
from evalkit.store.db import Store

if TYPE_CHECKING:
    from evalkit.pipeline.plan import Plan

ENGINE = "local workers"
RETRIES = 2  # a chunk whose worker died runs again this many times (as Ray's max_retries)
KILL_AFTER_S = 3.0  # a cancelled worker that has not ended on SIGTERM by then gets SIGKILL


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT held back in this thread: a process started meanwhile inherits the mask, so a Ctrl-C cannot
    reach it before it ignores SIGINT (this process gets the signal when the block ends)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Worker:
    """One worker process and the driver's end of its line."""

    def __init__(self, watch_fd: int) -> None:
        here, there = socket.socketpair()
        try:
            with _sigint_blocked():
                self.proc = subprocess.Popen(
                    [sys.executable, "-c", BOOT, str(there.fileno()), str(watch_fd)],
                    pass_fds=(there.fileno(), watch_fd), stdin=subprocess.DEVNULL, stdout=2, close_fds=True,
                )
        except BaseException:
            here.close()
            raise
        finally:
            there.close()
        self.conn = Connection(here.detach())
        self.cancelled_at: float | None = None
        self.conn.send(list(sys.path))  # imports resolve as here (paths added at run time included)

    def gone(self) -> bool:
        return self.proc.poll() is not None

    def end(self, *, kill: bool = False) -> str:
        """Make sure the process is gone; returns how it ended."""
        if kill and self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(KILL_AFTER_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            self.conn.close()
        code = self.proc.returncode
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"


class _Handle:
    """One submitted chunk."""

    __slots__ = ("chunk", "lost")

    def __init__(self, chunk: int, lost: str | None = None) -> None:
        self.chunk = chunk
        self.lost = lost  # the chunk never reached a worker: why


class LocalWorkers:
    """An :class:`~evalkit.batch.driver.Executor` of ``workers`` local processes, one chunk at a time each."""

    retries = RETRIES

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._watch_r, self._watch_w = os.pipe()  # the workers' read ends see EOF when this process is gone
        self._idle: list[_Worker] = []
        self._busy: dict[_Handle, _Worker] = {}
        self._cancelled: set[_Handle] = set()
        self.started = 0  # processes started (replacements of dead ones included)

    def submit(self, job: ChunkJob) -> _Handle:
        why = "no worker"
        for _ in range(2):  # an idle worker may have died since its last chunk: then a fresh one
            try:
                worker = self._idle.pop() if self._idle else self._start()
            except OSError as exc:
                why = f"cannot start a worker process: {exc}"
                continue
            try:
                worker.conn.send(job)
            except (OSError, ValueError) as exc:
                why = f"the worker took no chunk: {exc}"
                worker.end(kill=True)
                continue
            handle = _Handle(job.chunk)
            self._busy[handle] = worker
            return handle
        return _Handle(job.chunk, lost=why)

    def _start(self) -> _Worker:
        self.started += 1
        return _Worker(self._watch_r)

    def wait(self, handles: list[_Handle], timeout: float) -> list[_Handle]:
        lost = [h for h in handles if h.lost is not None or h not in self._busy]
        if lost:
            return lost
        now = time.monotonic()
        for h in handles:
            w = self._busy[h]
            if w.cancelled_at is not None and now - w.cancelled_at > KILL_AFTER_S and not w.gone():
                w.proc.kill()  # it did not end on SIGTERM
        lines = {self._busy[h].conn: h for h in handles}
        ready = {lines[c] for c in multiprocessing.connection.wait(list(lines), timeout)}  # type: ignore[index]
        # a dead worker's line reads EOF, unless a process it started holds it open: its exit tells then
        ready |= {h for h in handles if self._busy[h].gone()}
        return [h for h in handles if h in ready]

    def result(self, handle: _Handle) -> ChunkReport:
        if handle.lost is not None:
            raise WorkerDied(handle.lost)
        worker = self._busy.pop(handle)
        msg: Any = None
        try:
            if worker.conn.poll():
                msg = worker.conn.recv()
        except Exception:  # EOF, a torn message: the worker died
            msg = None
        if msg is None:
            how = worker.end(kill=True)
            if handle in self._cancelled:
                raise ChunkCancelled(how)
            raise WorkerDied(how)
        self._idle.append(worker)
        kind, value = msg
        if kind == "ok":
            report: ChunkReport = value
            return report
        raise WorkerFailed(str(value))

    def cancel(self, handles: list[_Handle]) -> None:
        for h in handles:
            worker = self._busy.get(h)
            if worker is None:
                continue
            self._cancelled.add(h)
            worker.cancelled_at = time.monotonic()
            with contextlib.suppress(OSError):
                worker.proc.terminate()

    def shutdown(self) -> None:
        """Stop every worker: idle ones are asked to exit, busy ones (a run that failed) are killed."""
        for w in self._idle:
            with contextlib.suppress(OSError, ValueError):
                w.conn.send(None)
        for w in self._busy.values():
            with contextlib.suppress(OSError):
                w.proc.kill()
        for w in [*self._idle, *self._busy.values()]:
            w.end()
        self._idle.clear()
        self._busy.clear()
        for fd in (self._watch_r, self._watch_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def run_on_workers(
    plan: Plan,
    store: Store,
    *,
    workers: int,
    tracing: bool = True,
    chunk_size: int | None = None,
    on_progress: ProgressFn | None = None,
    handle_signals: bool = True,
    keep_shards: bool = False,
    poll_s: float = 0.5,
) -> RunOutcome:
    """Run a started ``plan`` on ``workers`` local processes; returns the engine's outcome (the pipeline
    finalises the run). ``on_progress(cases, errors, tokens, cost_usd)`` gets the stored totals after
    each merge."""
    suite_path = check_engine_inputs(plan, {}, ENGINE)
    executor = LocalWorkers(workers)
    try:
        outcome = drive_plan(plan, store, executor, engine=ENGINE, suite_path=suite_path,
                             config={"local_workers": {}}, tracing=tracing, chunk_size=chunk_size,
                             on_progress=on_progress, handle_signals=handle_signals, poll_s=poll_s, check_suite=True)
    finally:
        executor.shutdown()
    if not keep_shards:
        discard_shards(store, plan.run_id)
    return outcome


__all__ = ["LocalWorkers", "run_on_workers"]
