"""A background writer thread: results are queued as cases finish and inserted in batches.

Batches form naturally: while one insert runs, the next results queue up, so a slow disk
gives bigger batches instead of a slower runner. A crash loses only what is still queued
(cases that finished in the last few milliseconds). The queue is bounded in results and in bytes
(outputs, inputs, errors), so a slow disk or huge answers slow the runner down rather than growing
memory; a batch holds at most ``max_batch_bytes`` unless one result alone is larger. A failed write
is kept and raised (a :class:`~evalkit.errors.StoreError`) at the next ``add()`` and at ``close()``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from evalkit.errors import StoreError, describe_exception
from evalkit.schema import Case, CaseResult
from evalkit.store.db import Store

_STOP = object()
MiB = 2**20


def approx_bytes(value: Any, budget: int = 1 << 40) -> int:
    """Roughly how many bytes ``value`` takes as JSON (strings and bytes by length, 8 per other leaf)."""
    total, stack = 0, [value]
    while stack and total < budget:
        v = stack.pop()
        if isinstance(v, (str, bytes, bytearray)):
            total += len(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)
        else:
            total += 8
    return total


def result_bytes(result: CaseResult, case: Case) -> int:
    """The approximate size of what storing ``result`` writes: output, case texts, error and rationales."""
    return 512 + approx_bytes([result.output, case.input, case.expected, case.metadata, result.error,
                               [(s.rationale, s.error) for s in result.scores]])


class StoreWriter:
    """Sink that writes case results to the store from one background thread."""

    def __init__(self, store: Store, max_batch: int = 2000, max_pending: int = 10_000,
                 max_batch_bytes: int = 32 * MiB, max_pending_bytes: int = 64 * MiB,
                 before_write: Callable[[], None] | None = None) -> None:
        self.store = store
        # the tracer's flush: a case's spans are stored before its result, so a process killed between the
        # two leaves a finished case with its trace (resume does not run it again), never one without
        self.before_write = before_write
        self.max_batch = max_batch
        self.max_batch_bytes = max_batch_bytes
        self.max_pending_bytes = max_pending_bytes
        # bounded: when the disk falls behind, the runner waits instead of memory growing
        self._q: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._room = threading.Condition()
        self._pending_bytes = 0
        self._error: BaseException | None = None
        self.written = 0
        self.errors = 0  # results written whose case did not end ok
        self._thread = threading.Thread(target=self._loop, name="evalkit-store-writer", daemon=True)
        self._thread.start()

    def add(self, result: CaseResult, case: Case) -> None:
        if self._error is not None:
            raise self._error
        size = result_bytes(result, case)
        with self._room:  # one result larger than the budget still goes, alone
            while (self._pending_bytes and self._pending_bytes + size > self.max_pending_bytes
                   and self._error is None and self._thread.is_alive()):
                self._room.wait(0.5)
            self._pending_bytes += size
        self._q.put((result, case, size))

    def _loop(self) -> None:
        done = False
        carry: Any = None
        while not done:
            item = carry if carry is not None else self._q.get()
            carry = None
            batch: list[tuple[CaseResult, Case, int]] = []
            size = 0
            while True:
                if item is _STOP:
                    done = True
                    break
                if batch and size + item[2] > self.max_batch_bytes:
                    carry = item  # starts the next batch
                    break
                batch.append(item)
                size += item[2]
                if len(batch) >= self.max_batch:
                    break
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
            if batch and self._error is None:
                try:
                    inputs = {c.id: c.model_dump(mode="json", include={"input", "expected", "metadata"})
                              for _, c, _ in batch}
                    if self.before_write is not None:
                        self.before_write()
                    self.store.write_results([r for r, _, _ in batch], inputs)
                    self.written += len(batch)
                    self.errors += sum(r.status != "ok" for r, _, _ in batch)
                except BaseException as exc:  # surfaced to the runner on its next add() and at close()
                    self._error = exc if isinstance(exc, StoreError) else StoreError(
                        f"{self.store.label}: results could not be written ({describe_exception(exc)})")
            del batch
            with self._room:
                self._pending_bytes -= size
                self._room.notify_all()

    def close(self) -> None:
        """Flush everything queued and stop the thread; re-raise a write failure."""
        self._q.put(_STOP)
        self._thread.join()
        if self._error is not None:
            raise self._error
