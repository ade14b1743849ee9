"""An HTTP endpoint as the target: POST a JSON body built from the case, read the answer from the reply.

    target:
      url: http://localhost:8000/chat
      body: {question: "{input}", session: "{metadata[session]}"}   # default: {"input": ..., "context": ...}
      answer_path: choices.0.message.content                        # dotted path; default: the whole JSON
      headers_env: {Authorization: AGENT_AUTH_HEADER}               # header -> environment variable
      timeout: 30
      retries: 3

Header values come only from environment variables, never from the suite file. 429, 5xx,
timeouts and connection errors are retried with backoff (honouring ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evalkit.errors import UserError
from evalkit.llm.config import settings
from evalkit.llm.retry import backoff_delay, parse_retry_after
from evalkit.redact import redact
from evalkit.schema import Case
from evalkit.targets.base import Target, parse_spec
from evalkit.targets.model import fill


class HttpTargetError(Exception):
    """The endpoint failed for good; the message carries no header values."""


class HttpTargetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=r"^https?://")
    method: str = Field(default="POST", pattern=r"^(POST|PUT)$")
    body: Any = None
    answer_path: str | None = None
    headers_env: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=60.0, gt=0)
    retries: int = Field(default=3, ge=0, le=20)
    name: str | None = None
    version: str | None = None


def build_body(template: Any, case: Case) -> Any:
    """The request body: the template with placeholders filled, or a default from the case."""
    if template is None:
        body: dict[str, Any] = {
            "input": case.input
            if isinstance(case.input, str)
            else [m.model_dump(exclude_none=True) for m in case.input]
        }
        if case.context is not None:
            body["context"] = case.context
        if case.metadata:
            body["metadata"] = case.metadata
        return body
    if isinstance(template, str):
        return fill(template, case)
    if isinstance(template, dict):
        return {k: build_body(v, case) for k, v in template.items()}
    if isinstance(template, list):
        return [build_body(v, case) for v in template]
    return template


def extract(data: Any, path: str | None) -> Any:
    """The value at dotted ``path`` (list indices as numbers); ``KeyError`` when absent."""
    if not path:
        return data
    cur = data
    for part in path.split("."):
        if isinstance(cur, list) and re.fullmatch(r"-?\d+", part):
            idx = int(part)
            if not -len(cur) <= idx < len(cur):
                raise KeyError(path)
            cur = cur[idx]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise KeyError(path)
    return cur


def build(spec: dict[str, Any], base_dir: Path | None = None) -> Target:
    """A :class:`Target` from a ``{url: ...}`` entry."""
    s = parse_spec(HttpTargetSpec, spec, "an HTTP target")
    for header, env in s.headers_env.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
            raise UserError(
                f"target: headers_env '{header}' must name an environment variable, not a value",
                field="target",
            )
    clients: dict[int, Any] = {}

    def client() -> Any:
        import httpx

        loop = asyncio.get_running_loop()
        c = clients.get(id(loop))
        if c is None or c.is_closed:
            c = clients[id(loop)] = httpx.AsyncClient(timeout=s.timeout)
        return c

    async def call(case: Case) -> Any:
        import httpx

        headers = {h: os.environ[e] for h, e in s.headers_env.items() if os.environ.get(e)}
        secrets = list(headers.values())
        from evalkit.tracing.propagation import inject_traceparent

        inject_traceparent(headers)  # after collecting secrets: the traceparent is not one
        body = build_body(s.body, case)
        cfg = settings()
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                resp = await client().request(s.method, s.url, json=body, headers=headers)
                if resp.status_code == 429 or resp.status_code >= 500:
                    retry_after = parse_retry_after(dict(resp.headers))
                    problem = f"HTTP {resp.status_code}"
                elif resp.status_code >= 400:
                    raise HttpTargetError(
                        redact(f"{s.url}: HTTP {resp.status_code}: {resp.text[:300]}", secrets)
                    )
                else:
                    try:
                        data = resp.json()
                    except ValueError:
                        if s.answer_path:
                            raise HttpTargetError(f"{s.url}: the reply is not JSON") from None
                        return resp.text
                    try:
                        return extract(data, s.answer_path)
                    except KeyError:
                        raise HttpTargetError(f"{s.url}: no value at answer_path '{s.answer_path}'") from None
            except httpx.TimeoutException:
                problem = f"timed out after {s.timeout:g} s"
            except httpx.TransportError as exc:
                problem = redact(f"connection error: {type(exc).__name__}: {exc}", secrets)
            if attempt > s.retries:
                raise HttpTargetError(f"{s.url}: {problem} (after {attempt} attempts)")
            await asyncio.sleep(
                backoff_delay(
                    attempt, cfg.backoff_base_s, cfg.backoff_max_s, retry_after, cfg.retry_after_max_s
                )
            )

    config = s.model_dump(exclude_none=True)
    return Target(name=s.name or s.url, call=call, version=s.version, kind="http", config=config)
