"""Spans for ``@evalkit.trace``-decorated functions, and small span helpers.

Nearly free when tracing is off or no evalkit case is active: :func:`function_span` returns a
shared null context after two cheap checks (no OpenTelemetry import happens until tracing is
set up). Tools become ``execute_tool {name}`` spans and agents ``invoke_agent {name}`` spans
(OpenTelemetry GenAI conventions); arguments and results are recorded, redacted and truncated,
when the run captures content.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from evalkit.tracing import state

if TYPE_CHECKING:
    from evalkit.redact import Redactor

MAX_CHARS = 4096
_NULL: contextlib.nullcontext[None] = contextlib.nullcontext()
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


def truncate_json(value: Any, limit: int = MAX_CHARS, redactor: Redactor | None = None) -> str:
    """``value`` as text (JSON unless already a string), secrets masked, cut to ``limit`` characters."""
    if redactor is not None:
        value = redactor.value(value, patterns=False)
    try:
        text = value if isinstance(value, str) else _encode(value)
    except (TypeError, ValueError):
        text = repr(value)
    if redactor is not None:
        text = redactor.text(text)
    if len(text) > limit:
        text = f"{text[:limit]}…[truncated {len(text) - limit} chars]"
    return text


def mark_error(span: Any, exc: BaseException) -> None:
    """Record ``exc`` on ``span``: ``error.type``, ERROR status, an ``exception`` event."""
    if span is None or not span.is_recording():
        return
    from opentelemetry.trace import Status, StatusCode

    kind = type(exc).__qualname__
    msg = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else ""
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, f"{kind}: {msg}" if msg else kind))
    span.record_exception(exc, escaped=True)


class FunctionSpan:
    """An active span around one call of a decorated function."""

    __slots__ = ("capture", "kind", "redactor", "span", "token")

    def __init__(self, route: state.Route, name: str, kind: str, arguments: dict[str, Any] | None) -> None:
        tracer = route.tracer
        self.kind = kind
        self.capture = bool(tracer.capture_content)
        self.redactor = tracer.redactor
        attrs: dict[str, Any]
        if kind == "tool":
            span_name = f"execute_tool {name}"
            attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.type": "function"}
            key = "gen_ai.tool.call.arguments"
        elif kind == "agent":
            span_name = f"invoke_agent {name}"
            attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
            key = "evalkit.arguments"
        else:
            span_name = name
            attrs = {"evalkit.span.kind": kind}
            key = "evalkit.arguments"
        if self.capture and arguments is not None:
            attrs[key] = truncate_json(arguments, redactor=self.redactor)
        self.span = state.HUB.tracer.start_span(span_name, attributes=attrs)
        self.token: Any = None

    def __enter__(self) -> FunctionSpan:
        from opentelemetry import context, trace

        self.token = context.attach(trace.set_span_in_context(self.span))
        return self

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        from opentelemetry import context

        context.detach(self.token)
        if exc is not None:
            mark_error(self.span, exc)
        self.span.end()


def function_span(name: str, kind: str, arguments: dict[str, Any] | None) -> Any:
    """A context manager around a decorated call: a :class:`FunctionSpan`, or a no-op outside traced cases."""
    if state.HUB is None or not state.ROUTES:
        return _NULL
    route = active_route()
    if route is None:
        return _NULL
    return FunctionSpan(route, name, kind, arguments)


def active_route() -> state.Route | None:
    """The evalkit case whose trace is current, if any (None before tracing is set up)."""
    if state.HUB is None or not state.ROUTES:
        return None
    from opentelemetry import trace

    return state.ROUTES.get(trace.get_current_span().get_span_context().trace_id)


def set_result(span: Any, result: Any) -> None:
    """Record a decorated function's result on its span (when content is captured)."""
    if not isinstance(span, FunctionSpan) or not span.capture:
        return
    key = "gen_ai.tool.call.result" if span.kind == "tool" else "evalkit.result"
    span.span.set_attribute(key, truncate_json(result, redactor=span.redactor))


def span_dict(span: Any, trace_hex: str | None = None) -> dict[str, Any]:
    """A finished SDK span as a plain dict (the ``spans`` table's columns, attributes as a dict)."""
    ctx = span.context
    attrs = dict(span.attributes or {})
    status = span.status
    start, end = span.start_time or 0, span.end_time or 0
    events = [{"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})} for e in span.events]
    return {
        "trace_id": trace_hex or f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        "name": span.name,
        "kind": span.kind.name,
        "start_ns": start,
        "end_ns": end,
        "duration_ms": (end - start) / 1e6,
        "status_code": status.status_code.name,
        "status_message": status.description,
        "operation": attrs.get("gen_ai.operation.name"),
        "tool_name": attrs.get("gen_ai.tool.name"),
        "request_model": attrs.get("gen_ai.request.model"),
        "input_tokens": attrs.get("gen_ai.usage.input_tokens"),
        "output_tokens": attrs.get("gen_ai.usage.output_tokens"),
        "error_type": attrs.get("error.type"),
        "attributes": attrs,
        "events": events,
    }
