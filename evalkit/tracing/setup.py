"""The runner's tracer: a root ``evalkit.case`` span per case, spans into the workspace store.

    tracer = tracer_for_store(store)                # the runner calls case_span/step_span/...
    execute(plan, store, tracer=tracer)             # flush() runs before the summary is written

Spans end up in the store's ``spans`` table (see :mod:`evalkit.tracing.exporter`); each case's
trace id is set on its :class:`~evalkit.context.CaseContext` and so on its result row.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api
from opentelemetry.trace import Status, StatusCode

from evalkit.redact import Redactor
from evalkit.tracing import state
from evalkit.tracing.columns import COLUMNS, resource_fields, row_dict
from evalkit.tracing.exporter import INTERVAL_S, DuckDBSpanSink
from evalkit.tracing.hub import hub
from evalkit.tracing.record import EvalSpan, child, detach, make_current, new_trace_id
from evalkit.tracing.spans import mark_error, truncate_json

if TYPE_CHECKING:
    from evalkit.context import CaseContext
    from evalkit.schema import Case, Score
    from evalkit.store.db import Store

_SPAN_KEY = "evalkit.span"
_ROUTE_KEY = "evalkit.route"
_NAME, _STATUS, _MESSAGE, _ERROR_TYPE = (COLUMNS.index(c) for c in ("name", "status_code", "status_message", "error_type"))
_NO_STEP: contextlib.nullcontext[Any] = contextlib.nullcontext(trace_api.INVALID_SPAN)


def content_default() -> bool:
    """Content capture default: on, unless ``EVALKIT_TRACE_CONTENT`` is 0/false/no/off."""
    return os.environ.get("EVALKIT_TRACE_CONTENT", "1").strip().lower() not in ("0", "false", "no", "off")


class _Current:
    """Makes an :class:`EvalSpan` the current span for a block; records an escaping exception; ends it."""

    __slots__ = ("span", "token")

    def __init__(self, span: EvalSpan) -> None:
        self.span = span
        self.token: Any = None

    def __enter__(self) -> EvalSpan:
        self.token = make_current(self.span)
        return self.span

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        detach(self.token)
        if exc is not None:
            mark_error(self.span, exc)
        self.span.end()


class StoreTracer:
    """Implements the runner's ``Tracer`` protocol: evalkit's spans as :class:`EvalSpan` records into the store.

    The case's span is the root of a new trace; target and scorer spans are children of the current
    span. Each is the current OpenTelemetry span while its block runs, so the agent's own
    OpenTelemetry spans nest under it (they go through evalkit's provider, :mod:`evalkit.tracing.hub`).
    """

    def __init__(self, store: Store, *, capture_content: bool = True, service_name: str = "evalkit",
                 batch_size: int = 10_000, max_pending: int = 50_000, interval_s: float = INTERVAL_S) -> None:
        self.hub = hub()
        self.tracer = self.hub.tracer  # the SDK tracer, for spans made through the OpenTelemetry API
        self.store = store
        self.capture_content = capture_content
        self.service_name = service_name
        self.resource_json = resource_fields(self.hub.provider.resource)[1]  # each span row's ``resource``
        self.redactor = Redactor()
        self.sink = DuckDBSpanSink(store, redactor=self.redactor, batch_size=batch_size, max_pending=max_pending,
                                   interval_s=interval_s)

    # -- Tracer protocol -------------------------------------------------------------------
    @contextlib.contextmanager
    def case_span(self, ctx: CaseContext, case: Case) -> Iterator[Any]:
        attrs: dict[str, Any] = {
            "evalkit.run_id": ctx.run_id, "evalkit.case_id": ctx.case_id, "evalkit.suite": ctx.suite,
            "evalkit.repeat": ctx.repeat,
        }
        if case.tags:
            attrs["evalkit.case.tags"] = tuple(str(t) for t in case.tags)  # as the SDK keeps a sequence
        if self.capture_content:
            attrs["evalkit.input"] = truncate_json(case.input_text)
        tid = new_trace_id()
        route = state.Route(trace_hex=f"{tid:032x}", run_id=ctx.run_id, case_id=ctx.case_id, tracer=self, trace_id=tid)
        span = EvalSpan(route, "evalkit.case", attrs, None, own=True)  # a root: whatever span is current is not its parent
        state.ROUTES[tid] = route
        ctx.trace_id = route.trace_hex
        ctx.extras[_SPAN_KEY] = span
        ctx.extras[_ROUTE_KEY] = route
        token = make_current(span)
        try:
            yield span
        except BaseException as exc:
            mark_error(span, exc)
            raise
        finally:
            detach(token)
            self._case_status(span, route)
            route.finished = None
            span.end()  # written at once: after this the case needs no route (memory stays flat)
            state.ROUTES.pop(tid, None)
            ctx.extras.pop(_SPAN_KEY, None)
            ctx.extras.pop(_ROUTE_KEY, None)

    @staticmethod
    def _case_status(span: EvalSpan, route: state.Route) -> None:
        """A failed target fails the case span too (its status message and ``error.type``)."""
        for row in route.finished or ():
            if row[_NAME] == "evalkit.target" and row[_STATUS] == "ERROR":
                if span.is_recording():
                    span.set_status(Status(StatusCode.ERROR, row[_MESSAGE]))
                    if row[_ERROR_TYPE]:
                        span.set_attribute("error.type", row[_ERROR_TYPE])
                return

    def step_span(self, name: str, attributes: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
        """A span under the current one (outside a traced case: none, the block runs as it is)."""
        span = child(name, attributes)
        return _NO_STEP if span is None else _Current(span)

    def case_spans(self, ctx: CaseContext) -> list[dict[str, Any]]:
        route: state.Route | None = ctx.extras.get(_ROUTE_KEY)
        if route is None or not route.finished:
            return []
        return [row_dict(r) for r in list(route.finished)]

    def record_scores(self, ctx: CaseContext, scores: list[Score]) -> None:
        span = ctx.extras.get(_SPAN_KEY)
        if span is None or not span.is_recording():
            return
        for sc in scores:
            attrs: dict[str, Any] = {"gen_ai.evaluation.name": sc.name}
            if sc.value is not None:
                attrs["gen_ai.evaluation.score.value"] = float(sc.value)
            label = None
            if sc.error:
                label = "error"
            elif sc.passed is not None:
                label = "pass" if sc.passed else "fail"
            if label is not None:
                attrs["gen_ai.evaluation.score.label"] = label
            why = sc.error or sc.rationale
            if why:
                attrs["gen_ai.evaluation.explanation"] = why[:2000]
            if sc.error:
                attrs["error.type"] = sc.error.split(":", 1)[0][:100]
            span.add_event("gen_ai.evaluation.result", attributes=attrs)

    # -- lifecycle -------------------------------------------------------------------------
    def sync(self) -> None:
        """Write every span finished so far, and keep going (the result writer calls it before each batch)."""
        self.sink.flush()

    def flush(self) -> None:
        """Write every finished span of this tracer's cases (routes are dropped as cases end)."""
        with contextlib.suppress(Exception):
            self.hub.provider.force_flush()
        self.sink.close()

    @property
    def dropped(self) -> int:
        return self.sink.dropped

    def loss_note(self) -> str | None:
        """What the run must say if spans could not be written (after :meth:`flush`), else None."""
        n = self.sink.dropped
        if not n:
            return None
        why = self.sink.last_error
        from evalkit.redact import redact

        reason = redact(str(why).strip().splitlines()[0])[:300] if why is not None and str(why).strip() else "unknown"
        return f"{n} span(s) could not be written to the store ({reason})"


def tracer_for_store(store: Store, *, capture_content: bool | None = None, service_name: str = "evalkit",
                     interval_s: float = INTERVAL_S) -> StoreTracer:
    """A tracer recording every case of a run into ``store``'s ``spans`` table.

    ``capture_content`` (prompts, completions, tool arguments and results as span attributes)
    defaults to on, or to ``EVALKIT_TRACE_CONTENT`` when set. ``interval_s``: how often spans that
    do not fill a batch are committed.
    """
    return StoreTracer(store, capture_content=content_default() if capture_content is None else capture_content,
                       service_name=service_name, interval_s=interval_s)
