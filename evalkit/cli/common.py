"""Options and output helpers shared by the commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from evalkit.safe_text import json_dumps

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", envvar="EVALKIT_STORE", help="DuckDB store file, or a team store URL ducklake+postgresql://USER@HOST/DB?data_path=DIR [default: .evalkit/evalkit.duckdb]."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


def console(stderr: bool = False) -> Any:
    """A rich console for the commands' output: no highlighting, no ``:emoji:`` codes (untrusted text
    goes through :func:`evalkit.safe_text.terminal`). Into a pipe or a CI log, lines are not wrapped
    at 80 columns (ids and commands stay whole and greppable); tables still fit the width."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=not stream.isatty(), emoji=False)


def print_json(data: Any) -> None:
    """``data`` as strict JSON on stdout (non-finite floats as null)."""
    sys.stdout.write(json_dumps(data, indent=2, ensure_ascii=False) + "\n")


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "pass" if v else "fail"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def fmt_ci(ci: Any) -> str:
    if not ci:
        return ""
    return f"{ci[0]:.2f}–{ci[1]:.2f}"
