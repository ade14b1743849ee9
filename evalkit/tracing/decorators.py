"""``@evalkit.trace``: record an agent step or tool call, as a span when tracing is on."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Literal, TypeVar, overload

from evalkit.context import current

F = TypeVar("F", bound=Callable[..., Any])
Kind = Literal["agent", "tool", "step", "chain", "retriever"]


def _arguments(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
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

        def before(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
            ctx = current()
            if ctx is None:
                return None
            arguments = _arguments(f, args, kwargs)
            if kind == "tool":
                ctx.record_tool_call(label, arguments)
            return arguments

        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                arguments = before(args, kwargs)
                from evalkit.tracing import spans

                with spans.function_span(label, kind, arguments):
                    return await f(*args, **kwargs)

            return awrapper  # type: ignore[return-value]

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            arguments = before(args, kwargs)
            from evalkit.tracing import spans

            with spans.function_span(label, kind, arguments) as sp:
                result = f(*args, **kwargs)
                spans.set_result(sp, result)
                return result

        return wrapper  # type: ignore[return-value]

    return deco(fn) if fn is not None else deco
