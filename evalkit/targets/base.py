"""The Target type every kind of target builds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from evalkit.errors import UserError
from evalkit.schema import Case

SpecT = TypeVar("SpecT", bound=BaseModel)


def parse_spec(model: type[SpecT], spec: dict[str, Any], kind: str) -> SpecT:
    """Validate a suite's ``target`` entry; the first problem becomes a one-line UserError."""
    try:
        return model.model_validate(spec)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = f"is not a known key for {kind}" if err["type"] == "extra_forbidden" else err["msg"].lower()
        raise UserError(f"target: '{loc}' {msg}", field="target") from None


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
