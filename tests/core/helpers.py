"""Importable helpers for tests (targets and scorers addressed as module:function)."""

from __future__ import annotations

import asyncio
import time

from evalkit.schema import Case


def starts_with_hello(case: Case, output: str) -> bool:
    return output.startswith("hello")


def echo(question: str) -> str:
    return f"echo: {question}"


async def slow_async(question: str) -> str:
    await asyncio.sleep(float(question))
    return "done"


def slow_sync(question: str) -> str:
    time.sleep(float(question))
    return "done"


def explode(question: str) -> str:
    if "boom" in question:
        raise ValueError(f"cannot handle {question}")
    return question
