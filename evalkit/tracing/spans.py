"""Spans for ``@evalkit.trace``-decorated functions, and small span helpers.

Nearly free when tracing is off or no evalkit case is active: :func:`function_span` returns a
shared null context after two cheap checks (no OpenTelemetry import happens until tracing is
set up). Tools become ``execute_tool {name}`` spans and agents ``invoke_agent {name}`` spans
(OpenTelemetry GenAI conventions); arguments and results are recorded, redacted and truncated,
when the run captures content.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from evalkit.tracing import state
from evalkit.tracing.json_text import spaced as _encode

if TYPE_CHECKING:
    from evalkit.redact import Redactor

MAX_CHARS = 4096
_NULL: contextlib.nullcontext[None] = contextlib.nullcontext()
_record: Any = None  # evalkit.tracing.record, imported by the first traced call


def truncate_json(value: Any, limit: int = MAX_CHARS, redactor: Redactor | None = None, *,
                  keys: bool = True) -> str:
    """``value`` as text (JSON unless already a string), secrets masked, cut to ``limit`` characters.

    ``keys=False``: ``value``'s keys are known not to name credentials (chat messages), so only its
    text is redacted (no walk over the value).
    """
    try:
        if redactor is not None and keys and not redactor.flat_and_clean(value):
            value = redactor.value(value, patterns=False)
        text = value if isinstance(value, str) else _encode(value)
    except (TypeError, ValueError, RecursionError):  # odd keys, a value holding itself: its repr, redacted below
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
    """An active span around one call of a decorated function (an :class:`~evalkit.tracing.record.EvalSpan`)."""

    __slots__ = ("capture", "kind", "redactor", "span", "token")

    def __init__(self, route: state.Route, parent_id: int, name: str, kind: str,
                 arguments: dict[str, Any] | None) -> None:
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
        self.span = _record.EvalSpan(route, span_name, attrs, parent_id, own=True)
        self.token: Any = None

    def __enter__(self) -> FunctionSpan:
        self.token = _record.make_current(self.span)
        return self

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        _record.detach(self.token)
        if exc is not None:
            mark_error(self.span, exc)
        self.span.end()


def function_span(name: str, kind: str, arguments: dict[str, Any] | None) -> Any:
    """A context manager around a decorated call: a :class:`FunctionSpan`, or a no-op outside traced cases."""
    if state.HUB is None or not state.ROUTES:
        return _NULL
    global _record
    if _record is None:  # imports OpenTelemetry: only once tracing is on
        from evalkit.tracing import record as _record
    here = _record.current()
    if here is None:
        return _NULL
    return FunctionSpan(here[0], here[1], name, kind, arguments)


def set_result(span: Any, result: Any) -> None:
    """Record a decorated function's result on its span (when content is captured)."""
    if not isinstance(span, FunctionSpan) or not span.capture:
        return
    key = "gen_ai.tool.call.result" if span.kind == "tool" else "evalkit.result"
    span.span.set_attribute(key, truncate_json(result, redactor=span.redactor))
