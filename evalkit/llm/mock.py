"""Scripted mock models: ``mock/<name>`` model strings that never touch the network.

``register_mock(name, outputs)`` scripts ``mock/<name>``: a list of outputs (returned in order,
the last one repeating) or a function of the messages (it may raise :class:`ModelError` to
simulate a provider failure). Unregistered built-ins:

- ``mock/echo``: the last user message;
- ``mock/judge-pass`` / ``mock/judge-fail``: a valid judge verdict (score 5 / yes, or 1 / no).
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from evalkit.llm.types import ModelError

MockFn = Callable[[list[dict[str, Any]]], str | Awaitable[str]]


@dataclass
class _Script:
    outputs: list[str] | None = None
    fn: MockFn | None = None
    calls: list[list[dict[str, Any]]] = field(default_factory=list)
    index: int = 0


_scripts: dict[str, _Script] = {}
_lock = threading.Lock()


def register_mock(name: str, outputs: list[str] | MockFn) -> None:
    """Script ``mock/<name>`` (the ``mock/`` prefix is optional in ``name``)."""
    key = name.removeprefix("mock/")
    if callable(outputs):
        _scripts[key] = _Script(fn=outputs)
    else:
        if not outputs:
            raise ValueError("a mock model needs at least one output")
        _scripts[key] = _Script(outputs=[str(o) for o in outputs])


def unregister_mock(name: str | None = None) -> None:
    """Forget one scripted mock, or all of them."""
    if name is None:
        _scripts.clear()
    else:
        _scripts.pop(name.removeprefix("mock/"), None)


def mock_calls(name: str) -> list[list[dict[str, Any]]]:
    """The message lists a scripted mock has received, in order."""
    script = _scripts.get(name.removeprefix("mock/"))
    return [] if script is None else script.calls


def is_mock(model: str) -> bool:
    return model.startswith("mock/")


def _content(message: dict[str, Any]) -> str:
    c = message.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return " ".join(str(p.get("text", "")) for p in c if isinstance(p, dict))
    return "" if c is None else str(c)


def _builtin(key: str, messages: list[dict[str, Any]]) -> str:
    if key == "echo":
        users = [m for m in messages if m.get("role") == "user"]
        return _content(users[-1]) if users else ""
    if key == "judge-pass":
        return json.dumps(
            {"rationale": "mock verdict: meets the rubric", "score": 5, "verdict": "yes", "preference": "A"}
        )
    if key == "judge-fail":
        return json.dumps(
            {"rationale": "mock verdict: fails the rubric", "score": 1, "verdict": "no", "preference": "B"}
        )
    raise ModelError(
        "not_found", f"mock model 'mock/{key}' is not registered (use evalkit.llm.mock.register_mock)"
    )


async def respond(model: str, messages: list[dict[str, Any]]) -> str:
    """The scripted answer of ``model`` to ``messages``."""
    key = model.removeprefix("mock/")
    script = _scripts.get(key)
    if script is None:
        return _builtin(key, messages)
    with _lock:
        script.calls.append(messages)
        if script.outputs is not None:
            out = script.outputs[min(script.index, len(script.outputs) - 1)]
            script.index += 1
            return out
    assert script.fn is not None
    res = script.fn(messages)
    if inspect.isawaitable(res):
        res = await res
    return str(res)


def count_tokens(text: str) -> int:
    """A rough token count for mocks: words."""
    return len(text.split())
