"""The DuckDB span sink: finished spans queue up as rows and a background thread inserts them in batches.

Each span becomes a row tuple of strings and numbers as it ends (:func:`~evalkit.tracing.columns.make_row`:
evalkit's own spans in :meth:`EvalSpan.end <evalkit.tracing.record.EvalSpan.end>`, the SDK's through
:meth:`DuckDBSpanSink.add`), so the queue holds no span objects: with the SDK's spans queued instead,
the garbage collector's work grows with the queue and dominated the cost under load.

Nothing is ever dropped for lack of room: when the queue holds ``max_pending`` spans, the
thread ending a span waits until the writer has caught up (backpressure). Each batch becomes
one polars frame and one ``INSERT`` (through :meth:`Store.insert_frame`, which takes the store's
lock). ``flush()`` returns once every span queued before it is in the table.

After ``close()`` no writer thread is started again: a late span (from a call abandoned after
its timeout) is written synchronously. While the interpreter finalizes, late spans are dropped
and counted instead, since a frozen daemon thread may hold a lock a write would wait on.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

from evalkit.redact import Redactor
from evalkit.tracing.columns import SpanColumns, sdk_row

if TYPE_CHECKING:
    from evalkit.store.db import Store
    from evalkit.tracing.state import Route

_log = logging.getLogger(__name__)
INTERVAL_S = 0.25  # how often the writer commits spans that do not fill a batch


class DuckDBSpanSink:
    """Queue + writer thread for one store."""

    def __init__(
        self,
        store: Store,
        *,
        redactor: Redactor | None = None,
        batch_size: int = 5_000,
        max_pending: int = 50_000,  # backpressure, not growth: ~1 KB a queued span
        interval_s: float = INTERVAL_S,
    ) -> None:
        # The writer's libraries load here, as the run sets up: imported by the writer thread on its first
        # batch, polars' import fought the agent's spans for the GIL (spans.py: ~40k → ~46k spans/s).
        import polars  # noqa: F401

        from evalkit.store import arrow_rows  # noqa: F401

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
        self._closed = False

    # -- producer side (called as spans end) ------------------------------------------------
    def add(self, span: Any, route: Route | None) -> tuple[Any, ...] | None:
        """Queue one ended SDK span (the router's ``on_end``); returns its row (None if it could not be made)."""
        try:
            row = sdk_row(span, route)
        except Exception as exc:  # an odd span must never break the agent
            self.dropped += 1
            _log.debug("evalkit: span not converted: %s", exc)
            return None
        self.add_row(row)
        return row

    def add_row(self, row: tuple[Any, ...]) -> None:
        """Queue one row (in :data:`~evalkit.tracing.columns.COLUMNS` order)."""
        if self._closed or sys.is_finalizing():
            self._late([row])
            return
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
            while len(self._q) >= self.max_pending and self._thread is not None and not sys.is_finalizing():
                self._wake.set()
                self._space.wait(0.05)

    def _start(self) -> None:
        with self._life:
            if self._thread is None and not self._closed and not sys.is_finalizing():
                self._stop_evt = stop = threading.Event()
                self._thread = threading.Thread(target=self._loop, args=(stop,), name="evalkit-span-writer", daemon=True)
                self._thread.start()
                return
            closed = self._thread is None
        if closed:  # closed since add_row checked: no thread will take what is queued
            self._late([])

    def _late(self, rows: list[tuple[Any, ...]]) -> None:
        """A span after close(): written here and now, or dropped and counted while the interpreter exits."""
        if sys.is_finalizing():
            self.dropped += len(rows) + len(self._q)
            self._q.clear()
            return
        self._q.extend(rows)
        self.drain()

    # -- writer side -----------------------------------------------------------------------
    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self.drain(upto=len(self._q))  # what is there now: the lock is free between rounds
        self.drain()

    def drain(self, *, upto: int | None = None) -> int:
        """Write everything queued (at most ``upto`` spans: those queued before a caller's point), in batches;
        returns the number of spans written."""
        total = 0
        q = self._q
        with self._write_lock:
            while q and (upto is None or total < upto):
                n = min(len(q), self.batch_size, upto - total if upto is not None else len(q))
                batch = [q.popleft() for _ in range(n)]
                with self._space:
                    self._space.notify_all()
                self._write(batch)
                total += n
        return total

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        try:
            self.store.insert_frame("spans", SpanColumns(self.redactor, batch).to_frame())
            self.written += len(batch)
        except Exception as exc:  # a broken store must not break the agent; counted and logged
            self.dropped += len(batch)
            if self.last_error is None:
                _log.warning("evalkit: spans not written to %s: %s", getattr(self.store, "label", "?"), exc)
            self.last_error = exc

    # -- lifecycle -------------------------------------------------------------------------
    def flush(self) -> None:
        """Block until every span queued so far is in the store (spans queued meanwhile may wait)."""
        self.drain(upto=len(self._q))

    def close(self) -> None:
        """Flush and stop the writer thread for good (later spans are written synchronously)."""
        with self._life:
            self._closed = True
            t, self._thread = self._thread, None
            self._stop_evt.set()
            self._wake.set()
        if sys.is_finalizing():  # the writer may be frozen mid-batch: waiting on it would hang the exit
            self._late([])
            return
        if t is not None and t is not threading.current_thread():
            t.join()
        self.drain()

    @property
    def pending(self) -> int:
        return len(self._q)
