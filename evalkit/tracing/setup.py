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

from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api
from opentelemetry.trace import Status, StatusCode

from evalkit.redact import Redactor
from evalkit.tracing import state
from evalkit.tracing.exporter import DuckDBSpanSink
from evalkit.tracing.hub import hub
from evalkit.tracing.spans import mark_error, span_dict, truncate_json

if TYPE_CHECKING:
    from evalkit.context import CaseContext
    from evalkit.schema import Case, Score
    from evalkit.store.db import Store

_EMPTY = otel_context.Context()
_SPAN_KEY = "evalkit.span"
_ROUTE_KEY = "evalkit.route"


def content_default() -> bool:
    """Content capture default: on, unless ``EVALKIT_TRACE_CONTENT`` is 0/false/no/off."""
    return os.environ.get("EVALKIT_TRACE_CONTENT", "1").strip().lower() not in ("0", "false", "no", "off")


class StoreTracer:
    """Implements the runner's ``Tracer`` protocol on evalkit's OpenTelemetry provider."""

    def __init__(self, store: Store, *, capture_content: bool = True, service_name: str = "evalkit",
                 batch_size: int = 10_000, max_pending: int = 200_000) -> None:
        self.hub = hub()
        self.tracer = self.hub.tracer
        self.store = store
        self.capture_content = capture_content
        self.service_name = service_name
        self.redactor = Redactor()
        self.sink = DuckDBSpanSink(store, redactor=self.redactor, batch_size=batch_size, max_pending=max_pending)

    # -- Tracer protocol -------------------------------------------------------------------
    @contextlib.contextmanager
    def case_span(self, ctx: CaseContext, case: Case) -> Iterator[Any]:
        attrs: dict[str, Any] = {
            "evalkit.run_id": ctx.run_id, "evalkit.case_id": ctx.case_id, "evalkit.suite": ctx.suite,
            "evalkit.repeat": ctx.repeat,
        }
        if case.tags:
            attrs["evalkit.case.tags"] = list(case.tags)
        if self.capture_content:
            attrs["evalkit.input"] = truncate_json(case.input_text)
        span = self.tracer.start_span("evalkit.case", context=_EMPTY, attributes=attrs)
        sc = span.get_span_context()
        route = state.Route(trace_hex=f"{sc.trace_id:032x}", run_id=ctx.run_id, case_id=ctx.case_id, tracer=self)
        state.ROUTES[sc.trace_id] = route
        ctx.trace_id = route.trace_hex
        ctx.extras[_SPAN_KEY] = span
        ctx.extras[_ROUTE_KEY] = route
        token = otel_context.attach(trace_api.set_span_in_context(span))
        try:
            yield span
        except BaseException as exc:
            mark_error(span, exc)
            raise
        finally:
            otel_context.detach(token)
            self._case_status(span, route)
            route.finished = None
            span.end()  # routed synchronously: after this the case needs no route (memory stays flat)
            state.ROUTES.pop(sc.trace_id, None)
            ctx.extras.pop(_SPAN_KEY, None)
            ctx.extras.pop(_ROUTE_KEY, None)

    @staticmethod
    def _case_status(span: Any, route: state.Route) -> None:
        for s in route.finished or ():
            if s._name == "evalkit.target" and s._status.status_code is StatusCode.ERROR:
                if span.is_recording():
                    span.set_status(Status(StatusCode.ERROR, s._status.description))
                    et = (s._attributes or {}).get("error.type")
                    if et:
                        span.set_attribute("error.type", et)
                return

    @contextlib.contextmanager
    def step_span(self, name: str, attributes: dict[str, Any]) -> Iterator[Any]:
        with self.tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield span
            except BaseException as exc:
                mark_error(span, exc)
                raise

    def case_spans(self, ctx: CaseContext) -> list[dict[str, Any]]:
        route: state.Route | None = ctx.extras.get(_ROUTE_KEY)
        if route is None or not route.finished:
            return []
        return [span_dict(s, route.trace_hex) for s in list(route.finished)]

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


def tracer_for_store(store: Store, *, capture_content: bool | None = None, service_name: str = "evalkit") -> StoreTracer:
    """A tracer recording every case of a run into ``store``'s ``spans`` table.

    ``capture_content`` (prompts, completions, tool arguments and results as span attributes)
    defaults to on, or to ``EVALKIT_TRACE_CONTENT`` when set.
    """
    return StoreTracer(store, capture_content=content_default() if capture_content is None else capture_content,
                       service_name=service_name)
