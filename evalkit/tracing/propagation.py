"""W3C trace-context propagation for targets that call agents over HTTP."""

from __future__ import annotations

from typing import Any


def inject_traceparent(headers: dict[str, Any]) -> dict[str, Any]:
    """Add ``traceparent`` (and ``tracestate``) for the current span to ``headers``; returns them.

    A no-op when no span is active, so HTTP targets can call it unconditionally::

        headers = inject_traceparent({**headers})
    """
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    TraceContextTextMapPropagator().inject(headers)
    return headers
