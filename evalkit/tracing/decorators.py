"""``@evalkit.trace``: record an agent step or tool call, as a span when tracing is on.

Outside an evalkit case (and with tracing off) the wrapper only checks two module globals
before calling the function. Inside a case, ``kind="tool"`` calls are recorded on the case
(``ctx.record_tool_call``) for the trajectory scorers, and, when the run is traced, each call
becomes a span (``execute_tool`` / ``invoke_agent`` / the function's name) with its arguments
and result.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Literal, TypeVar, overload

from evalkit.context import current
from evalkit.tracing import spans, state

F = TypeVar("F", bound=Callable[..., Any])
Kind = Literal["agent", "tool", "step", "chain", "retriever"]


def _arguments(sig: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    if sig is None:
        return {"args": list(args), **kwargs}
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        return {"args": list(args), **kwargs}
    bound.apply_defaults()
    return dict(bound.arguments)


@overload
def trace(fn: F) -> F: ...
@overload
def trace(fn: None = None, *, name: str | None = None, kind: Kind = "step") -> Callable[[F], F]: ...


def trace(fn: Any = None, *, name: str | None = None, kind: Kind = "step") -> Any:
    """Decorate a function (sync or async). Tools (``kind="tool"``) are recorded as tool calls."""

    def deco(f: F) -> F:
        label = name or f.__name__
        try:
            sig: inspect.Signature | None = inspect.signature(f)
        except (TypeError, ValueError):
            sig = None

        def before(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            """The span context manager for this call (records the tool call on the case)."""
            ctx = current()
            traced = state.HUB is not None and bool(state.ROUTES)
            if ctx is None and not traced:
                return spans._NULL
            arguments = _arguments(sig, args, kwargs)
            if kind == "tool" and ctx is not None:
                ctx.record_tool_call(label, arguments)
            return spans.function_span(label, kind, arguments) if traced else spans._NULL

        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                if state.HUB is None and current() is None:
                    return await f(*args, **kwargs)
                with before(args, kwargs) as sp:
                    result = await f(*args, **kwargs)
                    if sp is not None:
                        spans.set_result(sp, result)
                    return result

            return awrapper  # type: ignore[return-value]

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if state.HUB is None and current() is None:
                return f(*args, **kwargs)
            with before(args, kwargs) as sp:
                result = f(*args, **kwargs)
                if sp is not None:
                    spans.set_result(sp, result)
                return result

        return wrapper  # type: ignore[return-value]

    return deco(fn) if fn is not None else deco
