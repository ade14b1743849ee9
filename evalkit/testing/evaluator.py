"""The ``evaluate`` fixture: score a case inside a test through the same runner as ``evalkit run``.

``evaluate(case, output)`` scores an output the test produced; ``evaluate(case)`` calls the suite's
target (or ``target=``) itself. Both go through :meth:`evalkit.runner.Runner.run_one`, so scores,
tool calls, usage and the case span are those ``evalkit run`` would record. While the test body
runs, the case is the current :class:`~evalkit.context.CaseContext`, so tool calls and model usage
made by the agent in the test are attached to the case.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from evalkit.context import CaseContext, _current
from evalkit.runner import Runner, RunOptions
from evalkit.schema import Case, Score
from evalkit.scorers.registry import BoundScorer, build_scorer
from evalkit.targets.base import Target
from evalkit.testing.result import CaseEval

if TYPE_CHECKING:
    from evalkit.testing.cases import CaseSource
    from evalkit.testing.recorder import Recorder

_MISSING: Any = object()


class _TestRunner(Runner):
    """``Runner`` remembering the test body's latency for a precomputed output (not ~0 ms)."""

    body_ms: float | None = None


class _BodyTracer:
    """Tracer for ``run_one`` inside the case span the test body already opened: one trace per case,
    holding the agent's spans from the test body and the runner's target and scorer spans."""

    def __init__(self, inner: Any, body: CaseContext, *, given: bool) -> None:
        self.inner = inner
        self.body = body
        self.given = given  # the output came from the test body: no target span to record

    @contextlib.contextmanager
    def case_span(self, ctx: CaseContext, case: Case) -> Iterator[None]:
        ctx.trace_id = self.body.trace_id
        ctx.extras.update(self.body.extras)
        yield None

    def step_span(self, name: str, attributes: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
        if self.given and name == "evalkit.target":
            return contextlib.nullcontext()  # the agent's own spans from the test body stand for it
        return self.inner.step_span(name, attributes)

    def case_spans(self, ctx: CaseContext) -> list[dict[str, Any]]:
        return self.inner.case_spans(ctx)

    def record_scores(self, ctx: CaseContext, scores: list[Score]) -> None:
        self.inner.record_scores(ctx, scores)


def _given(output: Any, body: CaseContext | None) -> Target:
    """A target that returns the test's output and carries over what the test body recorded."""

    async def call(_case: Case) -> Any:
        ctx = _current.get()
        if body is not None and ctx is not None and ctx is not body:
            ctx.tool_calls.extend(body.tool_calls)
            ctx.usage.add(body.usage)
        return output

    return Target(name="pytest", call=call, kind="pytest")


class Evaluator:
    """Callable fixture value; one per test item."""

    def __init__(self, recorder: Recorder, nodeid: str, case: Case | None, repeat: int,
                 source: CaseSource | None) -> None:
        self.recorder = recorder
        self.nodeid = nodeid
        self.case = case
        self.repeat = repeat
        self.source = source
        self.called = False
        self.started = time.perf_counter()
        self.body = CaseContext(run_id=recorder.run_id, case_id=case.id if case else "", repeat=repeat,
                                suite=source.name if source else "")
        self._token: contextvars.Token[CaseContext | None] | None = None
        self._restore: Callable[[], None] | None = None
        self._span: contextlib.AbstractContextManager[Any] | None = None

    # -- the body scope ---------------------------------------------------------------------
    def enter(self, item: Any) -> None:
        """Make the case current for the test body, inside its case span when tracing is on.

        An async test function runs in its event loop's context, not this one, so it is wrapped
        to set the context variables this method changed (the case, the current span) itself.
        """
        fn = getattr(item, "obj", None)
        is_async = fn is not None and inspect.iscoroutinefunction(fn)
        before = contextvars.copy_context() if is_async else None
        self._token = _current.set(self.body)
        tracer = self.recorder.tracer
        if tracer is not None and self.case is not None:
            self._span = tracer.case_span(self.body, self.case)
            self._span.__enter__()
        self.started = time.perf_counter()
        if before is None or fn is None:
            return
        after = contextvars.copy_context()
        changed = [(var, val) for var, val in after.items() if before.get(var, _MISSING) is not val]

        @functools.wraps(fn)
        async def scoped(*args: Any, **kwargs: Any) -> Any:
            tokens = [(var, var.set(val)) for var, val in changed]
            try:
                return await fn(*args, **kwargs)
            finally:
                for var, token in reversed(tokens):
                    var.reset(token)

        item.obj = scoped

        def restore() -> None:
            item.obj = fn

        self._restore = restore

    def exit(self) -> None:
        if self._restore is not None:
            self._restore()
        if self._span is not None:
            self._span.__exit__(None, None, None)
            self._span = None
        if self._token is not None:
            with contextlib.suppress(ValueError):
                _current.reset(self._token)
            self._token = None

    # -- scoring ----------------------------------------------------------------------------
    def _plan(self, case: Case | None, output: Any, scorers: Sequence[Any] | None,
              target: Any) -> tuple[Case, _TestRunner]:
        case = case if case is not None else self.case
        if case is None:
            raise TypeError("evaluate(case, output): no case given and the test is not parametrised by @evalkit.cases")
        suite = self.source.suite if self.source is not None else None
        bound: list[BoundScorer] = (
            [build_scorer(s) for s in scorers] if scorers is not None else list(suite.scorers if suite else [])
        )
        if not bound:
            raise TypeError("evaluate(): no scorers; pass scorers=[...] or parametrise with a suite file")
        if output is not _MISSING:
            tgt = _given(output, self.body)
        elif target is not None:
            from evalkit.targets import build_target

            tgt = build_target(target)
        elif suite is not None and suite.target is not None:
            tgt = suite.target
        else:
            raise TypeError("evaluate(case): no target to call; pass the output, or target=, or use a suite file")
        settings = self.recorder.settings_for(suite)  # as `evalkit run` would
        opts = RunOptions(run_id=self.recorder.run_id, suite=self.source.name if self.source else "pytest",
                          timeout_s=settings.timeout_s, cache=settings.cache)
        tracer = self.recorder.tracer
        if self._span is not None and case is self.case:
            tracer = _BodyTracer(tracer, self.body, given=output is not _MISSING)
        runner = _TestRunner(tgt, bound, opts, self.recorder, tracer=tracer, redactor=self.recorder.redactor)
        if output is not _MISSING:
            runner.body_ms = (time.perf_counter() - self.started) * 1000
        if self.source is not None:
            self.recorder.sources.setdefault(self.source.key, self.source)
        return case, runner

    def _wrap(self, case: Case, runner: _TestRunner, result: Any) -> CaseEval:
        self.called = True
        self.recorder.claim(case.id, self.repeat, self.nodeid)
        return CaseEval(case=case, result=result, suite=runner.opts.suite,
                        thresholds={s.name: s.threshold for s in runner.scorers})

    def __call__(self, case: Case | None = None, output: Any = _MISSING, *,
                 scorers: Sequence[str | dict[str, Any] | Callable[..., Any] | BoundScorer] | None = None,
                 target: Any = None) -> CaseEval:
        """Score ``output`` for ``case`` (or run the target when no output is given)."""
        case, runner = self._plan(case, output, scorers, target)
        result = self.recorder.run(runner.run_one(case, self.repeat, latency_ms=runner.body_ms))
        return self._wrap(case, runner, result)

    async def aio(self, case: Case | None = None, output: Any = _MISSING, *,
                  scorers: Sequence[str | dict[str, Any] | Callable[..., Any] | BoundScorer] | None = None,
                  target: Any = None) -> CaseEval:
        """``await evaluate.aio(case)`` from an async test: runs on the test's own event loop."""
        case, runner = self._plan(case, output, scorers, target)
        result = await runner.run_one(case, self.repeat, latency_ms=runner.body_ms)
        return self._wrap(case, runner, result)

    def record_error(self, error: str) -> None:
        """The test failed before calling ``evaluate`` (or never called it): record the case as errored."""
        if self.case is None or self.called:
            return
        from datetime import UTC, datetime

        from evalkit.schema import CaseResult

        suite = self.source.suite if self.source is not None else None
        now = datetime.now(UTC)
        scores = [Score.failure(s.name, "target_exception", "not scored: the test did not reach evaluate()")
                  for s in (suite.scorers if suite else [])]
        self.recorder.add(CaseResult(
            run_id=self.recorder.run_id, case_id=self.case.id, repeat=self.repeat, status="error",
            error=error, error_kind="target_exception", scores=scores, tool_calls=self.body.tool_calls, usage=self.body.usage,
            latency_ms=(time.perf_counter() - self.started) * 1000, started_at=now, ended_at=now, tags=self.case.tags,
        ), self.case)
        self.recorder.claim(self.case.id, self.repeat, self.nodeid)
        if self.source is not None:
            self.recorder.sources.setdefault(self.source.key, self.source)
