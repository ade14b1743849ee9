"""Importable helpers for tests (targets and scorers addressed as module:function)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

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


def run_main(args: list[str], capsys: Any, monkeypatch: Any) -> tuple[int, str, str]:
    """``evalkit ARGS`` in this process: (exit code, stdout, stderr)."""
    import sys

    from evalkit.cli.app import main

    monkeypatch.setattr(sys, "argv", ["evalkit", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    out = capsys.readouterr()
    return code, out.out, out.err

