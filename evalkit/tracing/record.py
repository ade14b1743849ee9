"""evalkit's own spans, recorded without the OpenTelemetry SDK's per-span machinery.

The spans evalkit makes itself (``evalkit.case``, ``evalkit.target``, ``evalkit.scorer``, the
``@evalkit.trace`` spans and the ``chat`` spans of model calls) are :class:`EvalSpan` objects: a
few slots with the ids, times, attributes and events, turned into a ``spans`` row as they end by
:func:`~evalkit.tracing.columns.make_row`, the same function that turns the SDK's spans into rows.
No SDK ``Span``, sampler, span processor, ``BoundedAttributes`` or ``ReadableSpan`` is involved,
which is most of what a span used to cost.

An :class:`EvalSpan` is still an OpenTelemetry :class:`~opentelemetry.trace.Span`: evalkit makes it
the current span (``opentelemetry.context``) while the case, the target, a scorer or a traced
function runs, so spans the agent makes with the OpenTelemetry API (``get_tracer(...)``) get it as
their parent and the case's trace id, ``inject_traceparent`` sends it to HTTP agents, and code that
calls ``trace.get_current_span().set_attribute(...)`` sets it on evalkit's span as before. Those
spans of the agent still go through the SDK (and the router in :mod:`evalkit.tracing.hub`).

Attributes are cleaned by the SDK's own rules (``opentelemetry.attributes``) whenever a value is
not a plain str/int/float/bool/None, statuses and exception events are recorded as the SDK records
them, and ids come from ``random.getrandbits`` as the SDK's ``RandomIdGenerator``'s do (W3C-valid:
never all zeros). Span processors added to evalkit's provider besides the router (an OTLP exporter,
say) still get every evalkit span, as a ``ReadableSpan`` built for them at ``on_end``.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api
from opentelemetry.attributes import _clean_attribute_value
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from evalkit.tracing import state
from evalkit.tracing.columns import make_row

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

_log = logging.getLogger(__name__)
_FLAGS = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)  # what the SDK sets with ALWAYS_ON
_PLAIN = frozenset({str, int, float, bool, type(None)})
_UNSET = Status(StatusCode.UNSET)
_getrandbits = random.getrandbits  # the module's generator: reseeded in forked children, as the SDK relies on
_now = time.time_ns
_get_current_span = trace_api.get_current_span
_attach = otel_context.attach
_in_context = trace_api.set_span_in_context
detach = otel_context.detach
"""Restore the context a :func:`make_current` token was made in."""


def make_current(span: trace_api.Span) -> Any:
    """Make ``span`` the current OpenTelemetry span; returns the token to :func:`detach` when it ends."""
    return _attach(_in_context(span))


def new_span_id() -> int:
    """A random non-zero 64-bit span id."""
    while True:
        i = _getrandbits(64)
        if i:
            return i


def new_trace_id() -> int:
    """A random non-zero 128-bit trace id that no active evalkit case uses."""
    while True:
        i = _getrandbits(128)
        if i and i not in state.ROUTES:
            return i


def clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``attributes`` as the SDK would keep them: plain values as they are, others cleaned by its rules."""
    if not attributes:
        return {}
    out: dict[str, Any] = {}
    for k, v in attributes.items():
        if type(k) is not str or not k:  # the SDK's rules for odd keys
            return _clean_attribute_value(dict(attributes), None)
        out[k] = v if type(v) in _PLAIN else _clean_attribute_value(v, None)
    return out


class EvalSpan(trace_api.Span):
    """One span evalkit makes itself; a row in the store once it ends (see the module doc)."""

    __slots__ = ("_ctx", "attributes", "end_time", "events", "kind", "name", "parent_id", "route", "span_id",
                 "start_time", "status")

    def __init__(self, route: state.Route, name: str, attributes: Mapping[str, Any] | None, parent_id: int | None,
                 *, kind: str = "INTERNAL", start_time: int | None = None, own: bool = False) -> None:
        self.route = route
        self.span_id = new_span_id()
        self.parent_id = parent_id
        self.name = name
        self.kind = kind  # the SpanKind's name, as stored
        # own=True: a fresh dict evalkit built of values the SDK keeps as they are (taken, not copied)
        self.attributes: dict[str, Any] = attributes if own and type(attributes) is dict else clean(attributes)
        self.events: list[dict[str, Any]] | None = None
        self.status = _UNSET
        self.start_time = start_time if start_time is not None else _now()
        self.end_time: int | None = None
        self._ctx: SpanContext | None = None

    # -- the OpenTelemetry Span API ----------------------------------------------------------
    def get_span_context(self) -> SpanContext:
        c = self._ctx
        if c is None:
            c = self._ctx = SpanContext(self.route.trace_id, self.span_id, False, _FLAGS)
        return c

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        if self.end_time is not None or not key or type(key) is not str:
            return
        if type(value) not in _PLAIN:
            value = _clean_attribute_value(value, None)
        a = self.attributes
        a.pop(key, None)  # a key set again moves to the end, as in the SDK's BoundedAttributes
        a[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for k, v in attributes.items():
            self.set_attribute(k, v)

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None) -> None:
        if self.end_time is not None:
            return
        ev = {"name": name, "time_ns": timestamp if timestamp is not None else _now(), "attributes": clean(attributes)}
        if self.events is None:
            self.events = [ev]
        else:
            self.events.append(ev)

    def add_link(self, context: SpanContext, attributes: Mapping[str, Any] | None = None) -> None:
        return None  # the spans table keeps no links (nor did it for SDK spans)

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self.status = status
        elif status is not StatusCode.UNSET:
            self.status = Status(status, description)

    def record_exception(self, exception: BaseException, attributes: Mapping[str, Any] | None = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        attrs: dict[str, Any] = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            attrs.update(attributes)
        self.add_event("exception", attrs, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time if end_time is not None else _now()
        route = self.route
        sink = route.tracer.sink
        try:
            row = self.row()
        except Exception as exc:  # an odd attribute must never break the agent
            sink.dropped += 1
            _log.debug("evalkit: span not converted: %s", exc)
            return
        fin = route.finished
        if fin is not None:
            fin.append(row)
        sink.add_row(row)
        hub = state.HUB
        if hub is not None:
            extra = hub.extra_processors()
            if extra:
                hub.export(self, extra)

    # -- out ---------------------------------------------------------------------------------
    def row(self) -> tuple[Any, ...]:
        """This (ended) span as a ``spans`` row, by the same :func:`make_row` as the SDK's spans."""
        route = self.route
        st = self.status
        p = self.parent_id
        tracer = route.tracer
        return make_row(
            route.trace_hex, f"{self.span_id:016x}", f"{p:016x}" if p is not None else None, self.name, self.kind,
            self.start_time, self.end_time, "UNSET" if st is _UNSET else st.status_code.name, st.description,
            tracer.service_name, route.run_id, route.case_id, self.attributes, self.events, tracer.resource_json,
        )

    def readable(self, resource: Any, scope: Any) -> ReadableSpan:
        """This (ended) span as the SDK's ``ReadableSpan``, for span processors other than evalkit's router."""
        from opentelemetry.sdk.trace import Event, ReadableSpan

        p = self.parent_id
        events = tuple(Event(e["name"], e["attributes"], e["time_ns"]) for e in self.events or ())
        return ReadableSpan(
            name=self.name, context=self.get_span_context(),
            parent=SpanContext(self.route.trace_id, p, False, _FLAGS) if p is not None else None,
            resource=resource, attributes=dict(self.attributes), events=events, kind=SpanKind[self.kind],
            status=self.status, start_time=self.start_time, end_time=self.end_time, instrumentation_scope=scope,
        )


def current() -> tuple[state.Route, int] | None:
    """(route, span id) of the current span when it belongs to an active evalkit case, else None."""
    span = _get_current_span()
    if type(span) is EvalSpan:
        route = span.route
        return (route, span.span_id) if state.ROUTES.get(route.trace_id) is route else None
    sc = span.get_span_context()
    found = state.ROUTES.get(sc.trace_id)
    return (found, sc.span_id) if found is not None else None


def child(name: str, attributes: Mapping[str, Any] | None, *, kind: str = "INTERNAL",
          start_time: int | None = None) -> EvalSpan | None:
    """A span under the current one, if that belongs to an active evalkit case (else None)."""
    here = current()
    if here is None:
        return None
    return EvalSpan(here[0], name, attributes, here[1], kind=kind, start_time=start_time)
