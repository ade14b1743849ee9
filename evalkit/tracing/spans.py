"""Span helpers for decorated functions. A no-op until tracing is switched on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def function_span(name: str, kind: str, arguments: dict[str, Any] | None) -> Iterator[Any]:
    """A span around a decorated function (placeholder until the tracer is wired)."""
    yield None


def set_result(span: Any, result: Any) -> None:
    """Record a function's result on its span."""
    return None
