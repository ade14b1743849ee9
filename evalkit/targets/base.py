"""The Target type every kind of target builds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from evalkit.schema import Case


@dataclass
class Target:
    """A named async callable from a case to an output."""

    name: str
    call: Callable[[Case], Awaitable[Any]]
    version: str | None = None
    kind: str = "callable"
    config: dict[str, Any] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)

    async def __call__(self, case: Case) -> Any:
        return await self.call(case)
