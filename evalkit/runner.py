"""The async engine: run every case (and repeat) through the target and the scorers.

Cases are pulled lazily by a fixed pool of worker tasks (bounded concurrency, flat memory);
each finished case is handed to a sink at once. User code is hostile by default: whatever a
target or scorer raises (``SystemExit`` and ``KeyboardInterrupt`` included) or returns becomes
data on its case. Every planned case × repeat is sunk exactly once: completed, errored, or
cancelled when the run stops before it (the run's ledger). A fault of the engine itself is
recorded in :attr:`RunOutcome.failures`, never swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, get_args

from evalkit.context import AGENT_MS, CaseContext, case_scope
from evalkit.errors import UserError, describe_exception
from evalkit.redact import Redactor
from evalkit.schema import Case, CaseResult, ErrorKind, Score
from evalkit.scorers.registry import BoundScorer, RunInfo
from evalkit.targets.base import Target


class Sink(Protocol):
    """Receives each finished case result."""

    def add(self, result: CaseResult, case: Case) -> None: ...


class Tracer(Protocol):
    """Span hooks the runner calls; :class:`NullTracer` when tracing is off."""

    def case_span(self, ctx: CaseContext, case: Case) -> contextlib.AbstractContextManager[Any]: ...

    def step_span(self, name: str, attributes: dict[str, Any]) -> contextlib.AbstractContextManager[Any]: ...

    def case_spans(self, ctx: CaseContext) -> list[dict[str, Any]]: ...

    def record_scores(self, ctx: CaseContext, scores: list[Score]) -> None: ...


class NullTracer:
    """Tracing off: no spans, no cost."""

    def case_span(self, ctx: CaseContext, case: Case) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def step_span(self, name: str, attributes: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def case_spans(self, ctx: CaseContext) -> list[dict[str, Any]]:
        return []

    def record_scores(self, ctx: CaseContext, scores: list[Score]) -> None:
        return None


@dataclass
class RunOptions:
    """How one run executes."""

    run_id: str
    suite: str = ""
    concurrency: int = 16
    timeout_s: float = 60.0
    repeats: int = 1
    cache: bool = True
    skip: set[tuple[str, int]] = field(default_factory=set)


@dataclass
class RunOutcome:
    """How the engine's part of a run ended: ``completed``, ``interrupted`` or ``failed``."""

    status: str = "completed"
    failures: list[str] = field(default_factory=list)  # faults of the engine or the sink, in order
    store_error: str | None = None  # the results could not be written: the run stopped there


_KINDS = frozenset(get_args(ErrorKind))


def _kind_of(exc: BaseException) -> ErrorKind:
    """A target's failure kind: what the exception says it is (a provider fault), else target_exception."""
    kind = getattr(exc, "error_kind", None)
    return kind if kind in _KINDS else "target_exception"  # type: ignore[return-value]


class _Escaped(Exception):
    """A ``SystemExit``/``KeyboardInterrupt`` raised by user code, carried as an ordinary exception.

    Left as it is, it would escape the task ``wait_for`` runs the target in, and stop the event loop.
    """

    def __init__(self, exc: BaseException) -> None:
        super().__init__(describe_exception(exc))
        self.exc = exc


async def _contained(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except (Exception, asyncio.CancelledError):
        raise
    except BaseException as exc:
        raise _Escaped(exc) from None


class Runner:
    """Runs cases with bounded concurrency; ``stop()`` lets in-flight cases finish and starts no more."""

    def __init__(
        self,
        target: Target,
        scorers: list[BoundScorer],
        options: RunOptions,
        sink: Sink,
        tracer: Tracer | None = None,
        on_result: Callable[[CaseResult], None] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.target = target
        self.scorers = scorers
        self.opts = options
        self.sink = sink
        self.tracer: Tracer = tracer or NullTracer()
        self.on_result = on_result
        # sync scorers never wait: awaiting them in turn saves a task per scorer per case
        self._score_in_turn = len(scorers) == 1 or not any(s.is_async for s in scorers)
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._sink_broken = False
        self.outcome = RunOutcome()
        # once per run (or per pytest session: ``redactor``), as the span redactor is; it reads the environment
        self._redactor = redactor or Redactor()

    def stop(self) -> None:
        """Start no new cases (first Ctrl-C)."""
        self._stopping = True

    def cancel(self) -> None:
        """Cancel in-flight cases too (second Ctrl-C); they are recorded as cancelled."""
        self._stopping = True
        for t in self._tasks:
            t.cancel()

    def _work(self, cases: Iterable[Case]) -> Iterator[tuple[Case, int]]:
        for case in cases:
            for r in range(self.opts.repeats):
                if (case.id, r) not in self.opts.skip:
                    yield case, r

    async def run(self, cases: Iterable[Case]) -> RunOutcome:
        work = self._work(cases)

        async def worker() -> None:
            for case, repeat in work:
                if self._stopping:
                    return  # the pipeline records the case × repeats never started as cancelled
                try:
                    await self.run_one(case, repeat)
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:  # an engine fault: recorded on its case, never lost
                    self._fault(case, repeat, exc)

        n = max(1, self.opts.concurrency)
        self._tasks = [asyncio.create_task(worker()) for _ in range(n)]
        for res in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(res, BaseException) and not isinstance(res, asyncio.CancelledError):
                self.outcome.failures.append(f"worker died: {describe_exception(res)}")
        if self.outcome.failures and self._sink_broken:
            self.outcome.status = "failed"
        elif self._stopping:
            self.outcome.status = "interrupted"
        return self.outcome

    def _fault(self, case: Case, repeat: int, exc: BaseException) -> None:
        """``run_one`` itself failed (a tracer or sink fault): record the case as errored if the sink still works."""
        what = describe_exception(exc)
        self.outcome.failures.append(f"case {case.id} (repeat {repeat}): {what}")
        if self._sink_broken:
            return
        now = datetime.now(UTC)
        self._sink(CaseResult(
            run_id=self.opts.run_id, case_id=case.id, repeat=repeat, status="error", error_kind="internal",
            error=f"internal: {what}",
            scores=[Score.failure(s.name, "internal", "not scored: evalkit failed on this case") for s in self.scorers],
            started_at=now, ended_at=now, tags=case.tags,
        ), case)

    def _sink(self, result: CaseResult, case: Case) -> bool:
        """Hand a result to the sink; a sink that fails stops the run (its cases would be lost)."""
        try:
            self.sink.add(result, case)
        except BaseException as exc:
            self._sink_broken = True
            self._stopping = True
            self.outcome.store_error = str(exc) if isinstance(exc, UserError) else describe_exception(exc)
            self.outcome.failures.append(f"results could not be stored: {self.outcome.store_error}")
            return False
        return True

    async def run_one(self, case: Case, repeat: int = 0, *, latency_ms: float | None = None) -> CaseResult:
        """Run and score one case; always returns (and sinks) a result.

        ``latency_ms`` overrides the measured latency when the output was produced elsewhere
        (the pytest plugin scores what a test body computed, and times the body).
        """
        ctx = CaseContext(run_id=self.opts.run_id, case_id=case.id, repeat=repeat, suite=self.opts.suite,
                          cache_enabled=self.opts.cache)
        started = datetime.now(UTC)
        status, output, error = "ok", None, None
        kind: ErrorKind | None = None
        scores: list[Score] = []
        t0 = time.perf_counter()
        latency = 0.0
        try:
            with case_scope(ctx), self.tracer.case_span(ctx, case):
                try:
                    with self.tracer.step_span("evalkit.target", {"evalkit.target": self.target.name}):
                        output = await asyncio.wait_for(_contained(self.target(case)), self.opts.timeout_s)
                except TimeoutError:
                    status, kind, error = "error", "timeout", f"timeout: no answer within {self.opts.timeout_s:g} s"
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    cause = exc.exc if isinstance(exc, _Escaped) else exc
                    status, kind, error = "error", _kind_of(cause), describe_exception(cause)
                latency = (time.perf_counter() - t0) * 1000 if latency_ms is None else latency_ms
                if latency_ms is None and AGENT_MS in ctx.extras:  # not the wait for a free thread
                    latency = ctx.extras[AGENT_MS]
                if error is None:
                    info = RunInfo(latency_ms=latency, tool_calls=ctx.tool_calls, usage=ctx.usage,
                                   trace_id=ctx.trace_id, spans_source=lambda: self.tracer.case_spans(ctx))
                    scores = await self._score(case, output, info)
                else:
                    assert kind is not None
                    scores = [Score.failure(s.name, kind, "not scored: the target failed") for s in self.scorers]
                self.tracer.record_scores(ctx, scores)
        except asyncio.CancelledError:
            status, kind, error = "cancelled", "cancelled", "cancelled: run interrupted"
            scores = [Score.failure(s.name, "cancelled", "not scored: run interrupted") for s in self.scorers]
            output = None
        result = CaseResult(
            run_id=self.opts.run_id, case_id=case.id, repeat=repeat, status=status,  # type: ignore[arg-type]
            output=self._redactor.value(output, patterns=False), error=error, error_kind=kind, scores=scores,
            tool_calls=ctx.tool_calls, latency_ms=latency or (time.perf_counter() - t0) * 1000, usage=ctx.usage, trace_id=ctx.trace_id,
            started_at=started, ended_at=datetime.now(UTC), tags=case.tags,
        )
        if not self._sink(result, case):
            raise RuntimeError(self.outcome.failures[-1])
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception as exc:  # a progress display must not cost the case its single ledger entry
                self.outcome.failures.append(f"progress callback failed: {describe_exception(exc)}")
        return result

    async def _score(self, case: Case, output: Any, info: RunInfo) -> list[Score]:
        async def one(s: BoundScorer) -> list[Score]:
            with self.tracer.step_span("evalkit.scorer", {"evalkit.scorer": s.name}):
                return await s(case, output, info)

        if self._score_in_turn:
            return [sc for s in self.scorers for sc in await one(s)]
        results = await asyncio.gather(*(one(s) for s in self.scorers))
        return [sc for group in results for sc in group]
