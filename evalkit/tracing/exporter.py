"""The DuckDB span sink: finished spans queue up as rows and a background thread inserts them in batches.

Each span becomes a row tuple of strings and numbers as it ends (:func:`sdk_row`), so the queue
holds no span objects: with the SDK's spans queued instead, the garbage collector's work grows
with the queue and dominated the cost under load.

Nothing is ever dropped for lack of room: when the queue holds ``max_pending`` spans, the
thread ending a span waits until the writer has caught up (backpressure). Each batch becomes
one Arrow table and one ``INSERT`` (through :meth:`Store.insert_arrow`, which takes the store's
lock). ``flush()`` returns once every span queued before it is in the table.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import TYPE_CHECKING, Any

from evalkit.tracing.columns import SpanColumns, sdk_row
from evalkit.tracing.redact import Redactor

if TYPE_CHECKING:
    from evalkit.store.db import Store
    from evalkit.tracing.state import Route

_log = logging.getLogger(__name__)


class DuckDBSpanSink:
    """Queue + writer thread for one store."""

    def __init__(
        self,
        store: Store,
        *,
        redactor: Redactor | None = None,
        batch_size: int = 5_000,
        max_pending: int = 50_000,  # backpressure, not growth: ~1 KB a queued span
        interval_s: float = 0.25,
    ) -> None:
        self.store = store
        self.redactor = redactor or Redactor()
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.interval_s = interval_s
        self.written = 0
        self.dropped = 0  # spans lost to a failing insert (never to a full queue)
        self.last_error: BaseException | None = None
        self._q: collections.deque[tuple[Any, ...]] = collections.deque()
        self._wake = threading.Event()
        self._space = threading.Condition()
        self._write_lock = threading.Lock()
        self._life = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()

    # -- producer side (called from SpanProcessor.on_end) ----------------------------------
    def add(self, span: Any, route: Route | None) -> None:
        try:
            row = sdk_row(span, route)
        except Exception as exc:  # an odd span must never break the agent
            self.dropped += 1
            _log.debug("evalkit: span not converted: %s", exc)
            return
        self.add_row(row)

    def add_row(self, row: tuple[Any, ...]) -> None:
        """Queue one row (in :data:`~evalkit.tracing.columns.COLUMNS` order)."""
        q = self._q
        q.append(row)
        n = len(q)
        if n >= self.batch_size:
            if not self._wake.is_set():
                self._wake.set()
            if n >= self.max_pending:
                self._wait_for_room()
        if self._thread is None:
            self._start()

    def _wait_for_room(self) -> None:
        if threading.current_thread() is self._thread:
            return
        with self._space:
            while len(self._q) >= self.max_pending and self._thread is not None:
                self._wake.set()
                self._space.wait(0.05)

    def _start(self) -> None:
        with self._life:
            if self._thread is None:
                self._stop_evt = stop = threading.Event()
                self._thread = threading.Thread(target=self._loop, args=(stop,), name="evalkit-span-writer", daemon=True)
                self._thread.start()

    # -- writer side -----------------------------------------------------------------------
    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self.drain()
        self.drain()

    def drain(self) -> int:
        """Write everything queued now, in batches; returns the number of spans written."""
        total = 0
        q = self._q
        with self._write_lock:
            while q:
                n = min(len(q), self.batch_size)
                batch = [q.popleft() for _ in range(n)]
                with self._space:
                    self._space.notify_all()
                self._write(batch)
                total += n
        return total

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        try:
            self.store.insert_arrow("spans", SpanColumns(self.redactor, batch).to_arrow())
            self.written += len(batch)
        except Exception as exc:  # a broken store must not break the agent; counted and logged
            self.dropped += len(batch)
            if self.last_error is None:
                _log.warning("evalkit: spans not written to %s: %s", getattr(self.store, "path", "?"), exc)
            self.last_error = exc

    # -- lifecycle -------------------------------------------------------------------------
    def flush(self) -> None:
        """Block until every span queued so far is in the store."""
        self.drain()

    def close(self) -> None:
        """Flush and stop the writer thread (it restarts if more spans arrive)."""
        with self._life:
            t, self._thread = self._thread, None
            self._stop_evt.set()
            self._wake.set()
        if t is not None and t is not threading.current_thread():
            t.join()
        self.drain()

    @property
    def pending(self) -> int:
        return len(self._q)
