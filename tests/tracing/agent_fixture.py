"""A small traced agent for the tests: @trace tools, a plain OpenTelemetry span, a mock model call."""

from __future__ import annotations

import contextlib

from opentelemetry import trace as otel

from evalkit.llm import complete
from evalkit.tracing.decorators import trace


@trace(kind="tool")
def lookup(topic: str) -> str:
    return f"facts about {topic}"


@trace(kind="tool")
def explode(reason: str) -> str:
    raise RuntimeError(f"tool failed: {reason}")


@trace(kind="agent")
async def agent(question: str) -> str:
    with otel.get_tracer("test-agent").start_as_current_span("agent.plan") as sp:
        sp.set_attribute("plan.steps", 2)
        facts = lookup(question.split()[0])
    if "boom" in question:
        with contextlib.suppress(RuntimeError):
            explode("boom")
    comp = await complete("mock/echo", [{"role": "user", "content": question}])
    return f"{facts}. {comp.text}"
