"""W3C trace-context propagation for targets that call agents over HTTP."""

from __future__ import annotations

import sys
from typing import Any


def inject_traceparent(headers: dict[str, Any]) -> dict[str, Any]:
    """Add ``traceparent`` (and ``tracestate``) for the current span to ``headers``; returns them.

    A no-op when no span is active, so HTTP targets can call it unconditionally::

        headers = inject_traceparent({**headers})
    """
    if "opentelemetry.trace" not in sys.modules:  # no OpenTelemetry loaded: no span can be active
        return headers
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    TraceContextTextMapPropagator().inject(headers)
    return headers
