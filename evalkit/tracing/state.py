"""Process-wide tracing state, kept free of OpenTelemetry imports so checking it costs nothing.

``HUB`` is None until the first :func:`evalkit.tracing.setup.tracer_for_store`; ``ROUTES`` maps
the (int) trace id of every active evalkit case to its :class:`Route`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HUB: Any = None


@dataclass(eq=False)
class Route:
    """Where the spans of one case's trace go, and what they belong to."""

    trace_hex: str
    run_id: str | None
    case_id: str | None
    tracer: Any  # evalkit.tracing.setup.StoreTracer
    finished: list[tuple[Any, ...]] | None = field(default_factory=list)  # rows of ended spans, while the case runs
    trace_id: int = 0  # trace_hex as an int (the OpenTelemetry form)


ROUTES: dict[int, Route] = {}
