"""One process's share of a pytest eval run: case results kept in memory, written once at the end.

The per-case path touches no store: results are buffered and written in one batch when the
process finishes (to the workspace store, or to this worker's shard under xdist). The store is
opened earlier only when the tracer needs it for spans.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from evalkit.redact import Redactor
    from evalkit.schema import Case, CaseResult
    from evalkit.store.db import Store
    from evalkit.testing.cases import CaseSource

T = TypeVar("T")
SPAN_INTERVAL_S = 5.0


class Recorder:
    """Buffers this process's case results (a runner ``Sink``) and owns the store they go to."""

    def __init__(self, run_id: str, store_path: Path, *, tracing: bool = True) -> None:
        self.run_id = run_id
        self.store_path = store_path
        self.tracing = tracing
        self.started_at = datetime.now(UTC)
        self.results: dict[tuple[str, int], tuple[CaseResult, Case]] = {}
        self.owner: dict[tuple[str, int], str] = {}
        self.sources: dict[str, CaseSource] = {}
        self.duplicates: list[str] = []
        self._store: Store | None = None
        self._tracer: Any = None
        self._tracer_ready = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._settings: dict[int, tuple[Any, Any]] = {}

    # -- the runner's sink -------------------------------------------------------------------
    def add(self, result: CaseResult, case: Case) -> None:
        self.results[(result.case_id, result.repeat)] = (result, case)

    def claim(self, case_id: str, repeat: int, nodeid: str) -> None:
        """Note which test recorded a case; a second test recording it replaces the first."""
        key = (case_id, repeat)
        prev = self.owner.get(key)
        if prev is not None and prev != nodeid:
            self.duplicates.append(f"{case_id} (r{repeat}): {prev} and {nodeid}")
        self.owner[key] = nodeid

    @functools.cached_property
    def redactor(self) -> Redactor:
        """One redactor for the session's case runs (it reads the environment's secrets once)."""
        from evalkit.redact import Redactor

        return Redactor()

    def settings_for(self, suite: Any) -> Any:
        """The run settings for a suite (or none), as ``evalkit run`` resolves them; once per suite a session."""
        hit = self._settings.get(id(suite))
        if hit is None or hit[0] is not suite:
            from evalkit.pipeline.settings import resolve_settings

            settings, _ = resolve_settings({}, suite.defaults.model_dump() if suite is not None else None)
            hit = self._settings[id(suite)] = (suite, settings)
        return hit[1]

    # -- store and tracer --------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            from evalkit.store.db import Store

            self._store = Store(self.store_path)
        return self._store

    @property
    def tracer(self) -> Any:
        """The span tracer writing to this process's store, or None (tracing off or not installed)."""
        if not self._tracer_ready:
            self._tracer_ready = True
            if self.tracing:
                from evalkit.errors import StoreError
                from evalkit.tracing.setup import tracer_for_store

                try:
                    # results are written at the session's end: spans need not be visible sooner than every
                    # few seconds, and each small insert costs ~20 ms (a full batch still goes at once)
                    self._tracer = tracer_for_store(self.store, interval_s=SPAN_INTERVAL_S)
                except StoreError:
                    self.tracing = False  # the session end reports the store problem once
        return self._tracer

    # -- running coroutines from sync tests --------------------------------------------------
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this process's loop, or on a helper thread inside a running loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # A bare loop, not asyncio.Runner: its per-call SIGINT handler swap formats the task's
            # repr (the case included) twice per call, which cost more than the scoring.
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            task = self._loop.create_task(coro, context=contextvars.copy_context())
            return self._loop.run_until_complete(task)
        box: dict[str, Any] = {}
        context = contextvars.copy_context()  # the current case and span, for the helper thread

        def work() -> None:
            try:
                box["value"] = context.run(asyncio.run, coro)
            except BaseException as exc:
                box["error"] = exc

        t = threading.Thread(target=work, name="evalkit-evaluate")
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    # -- the end -----------------------------------------------------------------------------
    def write(self, run_row: dict[str, Any]) -> Store:
        """Create the run row and write every buffered result (one batch); flush spans."""
        store = self.store
        store.create_run(run_row)
        if self.results:
            pairs = list(self.results.values())
            inputs = {c.id: c.model_dump(mode="json", include={"input", "expected", "metadata"}) for _, c in pairs}
            store.write_results([r for r, _ in pairs], inputs)
        flush = getattr(self._tracer, "flush", None)
        if flush is not None:
            flush()
        return store

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
            self._loop = None
        if self._store is not None:
            self._store.close()
            self._store = None
