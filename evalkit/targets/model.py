"""A model plus a prompt template as the target: ``{model: "openai/gpt-4o-mini", prompt: "... {input} ..."}``.

Placeholders: ``{input}``, ``{context}``, ``{expected}``, ``{id}`` and ``{metadata[key]}``.
Optional keys: ``system`` (a system message template), ``params`` (model parameters),
``api_base``, ``api_key_env`` (the environment variable holding the key; keys never go in suites),
``timeout``, ``name``, ``version``. A case whose input is a chat is sent as those messages
when no ``prompt`` is given.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evalkit.errors import UserError
from evalkit.schema import Case
from evalkit.targets.base import Target, parse_spec

_PLACEHOLDER = re.compile(r"\{(input|context|expected|id)\}|\{metadata\[([^\]\[{}]+)\]\}")


class ModelTargetSpec(BaseModel):
    """The suite's ``target`` entry for a model target."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    prompt: str | None = None
    system: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    api_base: str | None = None
    api_key_env: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    name: str | None = None
    version: str | None = None


def fill(template: str, case: Case) -> str:
    """``template`` with the case's fields substituted (other braces are left as they are)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(2) is not None:
            v: Any = case.metadata.get(m.group(2).strip("'\""), "")
        elif m.group(1) == "input":
            v = case.input_text
        elif m.group(1) == "context":
            v = case.context_text
        elif m.group(1) == "id":
            v = case.id
        else:
            v = case.expected
        return "" if v is None else str(v)

    return _PLACEHOLDER.sub(sub, template)


def messages_for(spec: ModelTargetSpec, case: Case) -> list[dict[str, Any]]:
    """The chat messages sent for ``case``."""
    msgs: list[dict[str, Any]] = []
    if spec.system:
        msgs.append({"role": "system", "content": fill(spec.system, case)})
    if spec.prompt is not None:
        msgs.append({"role": "user", "content": fill(spec.prompt, case)})
    elif isinstance(case.input, str):
        msgs.append({"role": "user", "content": case.input})
    else:
        msgs.extend(m.model_dump(exclude_none=True) for m in case.input)
    return msgs


def build(spec: dict[str, Any], base_dir: Path | None = None) -> Target:
    """A :class:`Target` from a ``{model: ..., prompt: ...}`` entry."""
    s = parse_spec(ModelTargetSpec, spec, "a model target")
    if s.api_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s.api_key_env):
        raise UserError("target: 'api_key_env' must name an environment variable", field="target")
    from evalkit.llm.availability import missing_litellm_hint

    needs = missing_litellm_hint(s.model, "target model")  # api_base endpoints are litellm's too
    if needs is not None:
        raise UserError(needs)
    if s.api_key_env and not os.environ.get(s.api_key_env):
        raise UserError(f"target model {s.model}: ${s.api_key_env} (its api_key_env) is not set")
    if not s.api_key_env and not s.api_base:
        from evalkit.llm.credentials import missing_credentials_hint

        hint = missing_credentials_hint(s.model)
        if hint is not None:
            raise UserError(f"target model {s.model} has no credentials: {hint}")

    async def call(case: Case) -> str:
        from evalkit.llm.facade import complete

        key = os.environ.get(s.api_key_env) if s.api_key_env else None
        comp = await complete(
            s.model,
            messages_for(s, case),
            params=s.params or None,
            timeout=s.timeout,
            api_base=s.api_base,
            api_key=key,
        )
        return comp.text

    config = s.model_dump(exclude_none=True)
    return Target(
        name=s.name or s.model, call=call, version=s.version, kind="model", config=config, models=[s.model]
    )
