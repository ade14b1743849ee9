"""A background writer thread: results are queued as cases finish and inserted in batches.

Batches form naturally: while one insert runs, the next results queue up, so a slow disk
gives bigger batches instead of a slower runner. A crash loses only what is still queued
(cases that finished in the last few milliseconds). The queue is bounded, so a slow disk slows
the runner down rather than growing memory.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from evalkit.schema import Case, CaseResult
from evalkit.store.db import Store

_STOP = object()


class StoreWriter:
    """Sink that writes case results to the store from one background thread."""

    def __init__(self, store: Store, max_batch: int = 2000, max_pending: int = 10_000) -> None:
        self.store = store
        self.max_batch = max_batch
        # bounded: when the disk falls behind, the runner waits instead of memory growing
        self._q: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self.written = 0
        self._thread = threading.Thread(target=self._loop, name="evalkit-store-writer", daemon=True)
        self._thread.start()

    def add(self, result: CaseResult, case: Case) -> None:
        if self._error is not None:
            raise self._error
        self._q.put((result, case))

    def _loop(self) -> None:
        done = False
        while not done:
            item = self._q.get()
            batch = []
            while True:
                if item is _STOP:
                    done = True
                    break
                batch.append(item)
                if len(batch) >= self.max_batch:
                    break
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
            if batch and self._error is None:
                try:
                    inputs = {c.id: c.model_dump(mode="json", include={"input", "expected", "metadata"}) for _, c in batch}
                    self.store.write_results([r for r, _ in batch], inputs)
                    self.written += len(batch)
                except BaseException as exc:  # surfaced to the runner on its next add() and at close()
                    self._error = exc

    def close(self) -> None:
        """Flush everything queued and stop the thread; re-raise a write failure."""
        self._q.put(_STOP)
        self._thread.join()
        if self._error is not None:
            raise self._error
