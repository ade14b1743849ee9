"""evalkit's one TracerProvider per process, and the router that sends each case's spans to its store.

The provider is created on first use. If the application has not set a global OpenTelemetry
provider, evalkit's becomes the global one, so spans that agent code creates with the plain
OpenTelemetry API (``trace.get_tracer(...)``) are recorded and nest under the case span. If the
application already has an SDK provider, it is left in place and evalkit adds its router to it:
the application's exporters keep working and the spans that belong to an evalkit case are also
stored. (A non-SDK global provider cannot be joined; its spans are then not stored.)

Routing is by trace id: only spans of an active evalkit case reach a store; everything else is
ignored at the cost of one dict lookup. evalkit's own spans do not go through the provider at all
(:mod:`evalkit.tracing.record`); the router and the store see them as the same rows, and any span
processor added to evalkit's provider besides the router still gets them (:meth:`Hub.export`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from evalkit.tracing import state

_log = logging.getLogger(__name__)
_lock = threading.Lock()
TRACER_NAME = "evalkit"


class RouterProcessor(SpanProcessor):
    """Hands each ended span of an evalkit case to that case's sink (and its case-spans list)."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        route = state.ROUTES.get(span._context.trace_id)  # type: ignore[union-attr]
        if route is None:
            return
        row = route.tracer.sink.add(span, route)
        fin = route.finished
        if fin is not None and row is not None:
            fin.append(row)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Hub:
    """The process-wide provider, its tracer and the router."""

    def __init__(self) -> None:
        self.router = RouterProcessor()
        # ALWAYS_ON: evalkit records every span of a case (and skips ParentBased's per-span lookups).
        self.provider = TracerProvider(resource=Resource.create({"service.name": "evalkit"}), sampler=ALWAYS_ON,
                                       shutdown_on_exit=False)
        self.provider.add_span_processor(self.router)
        self.tracer = self.provider.get_tracer(TRACER_NAME)
        self.scope = InstrumentationScope(TRACER_NAME)
        self._procs: Any = None
        self._extra: tuple[SpanProcessor, ...] = ()
        self.global_provider = self._join_global()

    def extra_processors(self) -> tuple[SpanProcessor, ...]:
        """Span processors on evalkit's provider other than the router (checked in O(1) per span)."""
        procs = getattr(getattr(self.provider, "_active_span_processor", None), "_span_processors", ())
        if procs is not self._procs:
            self._procs = procs
            self._extra = tuple(p for p in procs if p is not self.router)
        return self._extra

    def export(self, span: Any, processors: tuple[SpanProcessor, ...]) -> None:
        """Hand one ended evalkit span (:class:`~evalkit.tracing.record.EvalSpan`) to ``processors``."""
        try:
            readable = span.readable(self.provider.resource, self.scope)
        except Exception as exc:  # pragma: no cover - defensive: an exporter must never break the agent
            _log.debug("evalkit: span not exported: %s", exc)
            return
        for p in processors:
            try:
                p.on_end(readable)
            except Exception:  # as the SDK's multi-processor: one failing processor does not stop the others
                _log.exception("evalkit: span processor %s failed", type(p).__name__)

    def _join_global(self) -> str:
        current = trace_api.get_tracer_provider()
        if current is self.provider:
            return "evalkit"
        if isinstance(current, trace_api.ProxyTracerProvider):
            trace_api.set_tracer_provider(self.provider)
            if trace_api.get_tracer_provider() is self.provider:
                return "evalkit"
        current = trace_api.get_tracer_provider()
        if isinstance(current, TracerProvider):
            current.add_span_processor(self.router)
            return "joined"
        _log.info("evalkit: the global tracer provider is %s; its spans are not stored", type(current).__name__)
        return "foreign"


def hub() -> Hub:
    """The hub, created (and the gen_ai listener installed) on first call."""
    h = state.HUB
    if h is not None:
        return h
    with _lock:
        if state.HUB is None:
            h = Hub()
            from evalkit.tracing import genai

            genai.install()
            state.HUB = h
    return state.HUB
