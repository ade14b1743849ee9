"""Per-case state shared by the runner, the model facade and the trace decorators.

The runner enters a :class:`CaseContext` around each case; code running inside the case
(the agent, its tools, the judges) reaches it through :func:`current` without being
passed anything, so agent code needs no changes to be measured.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from evalkit.schema import ToolCall, Usage


@dataclass
class CaseContext:
    """Mutable accumulator for one case run."""

    run_id: str
    case_id: str
    repeat: int = 0
    suite: str = ""
    usage: Usage = field(default_factory=Usage)
    tool_calls: list[ToolCall] = field(default_factory=list)
    trace_id: str | None = None
    cache_enabled: bool = True
    extras: dict[str, Any] = field(default_factory=dict)

    def record_tool_call(self, name: str, arguments: dict[str, Any] | None = None) -> None:
        if arguments:
            from evalkit.redact import redact_value

            arguments = dict(redact_value(arguments))
        self.tool_calls.append(ToolCall(name=name, arguments=arguments or {}))

    def record_usage(self, usage: Usage) -> None:
        self.usage.add(usage)


AGENT_MS = "agent_ms"  # extras key: a sync agent's own run time, measured on its thread (ms)
_current: contextvars.ContextVar[CaseContext | None] = contextvars.ContextVar("evalkit_case", default=None)


def current() -> CaseContext | None:
    """The case being run in this task or thread, if any."""
    return _current.get()


@contextmanager
def case_scope(ctx: CaseContext) -> Iterator[CaseContext]:
    """Make ``ctx`` the current case for the enclosed code."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def record_tool_call(name: str, arguments: dict[str, Any] | None = None) -> None:
    """Record a tool call on the current case (no-op outside a case)."""
    ctx = _current.get()
    if ctx is not None:
        ctx.record_tool_call(name, arguments)
