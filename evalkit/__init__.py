"""evalkit: run agent test suites, score them with deterministic scorers and LLM judges,
trace every case with OpenTelemetry into DuckDB, and log summaries to MLflow.

The public API is imported lazily (PEP 562): ``import evalkit`` is nearly free, which matters
because pytest loads :mod:`evalkit.pytest_plugin` in every project where evalkit is installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, str]] = {
    "Case": ("evalkit.schema", "Case"),
    "CaseResult": ("evalkit.schema", "CaseResult"),
    "EvalResult": ("evalkit.api", "EvalResult"),
    "Message": ("evalkit.schema", "Message"),
    "NotScored": ("evalkit.scorers._util", "NotScored"),
    "RunInfo": ("evalkit.scorers.registry", "RunInfo"),
    "RunSummary": ("evalkit.schema", "RunSummary"),
    "Score": ("evalkit.schema", "Score"),
    "Suite": ("evalkit.suite", "Suite"),
    "ToolCall": ("evalkit.schema", "ToolCall"),
    "UserError": ("evalkit.errors", "UserError"),
    "cases": ("evalkit.testing.cases", "cases"),
    "evaluate": ("evalkit.api", "evaluate"),
    "load_suite": ("evalkit.suite", "load_suite"),
    "record_tool_call": ("evalkit.context", "record_tool_call"),
    "scorer": ("evalkit.scorers.registry", "scorer"),
    "scorer_factory": ("evalkit.scorers.registry", "scorer_factory"),
    "trace": ("evalkit.tracing.decorators", "trace"),
}

__all__ = [
    "Case",
    "CaseResult",
    "EvalResult",
    "Message",
    "NotScored",
    "RunInfo",
    "RunSummary",
    "Score",
    "Suite",
    "ToolCall",
    "UserError",
    "__version__",
    "cases",
    "evaluate",
    "load_suite",
    "record_tool_call",
    "scorer",
    "scorer_factory",
    "trace",
]

if TYPE_CHECKING:
    from evalkit.api import EvalResult, evaluate
    from evalkit.context import record_tool_call
    from evalkit.errors import UserError
    from evalkit.schema import Case, CaseResult, Message, RunSummary, Score, ToolCall
    from evalkit.scorers._util import NotScored
    from evalkit.scorers.registry import RunInfo, scorer, scorer_factory
    from evalkit.suite import Suite, load_suite
    from evalkit.testing.cases import cases
    from evalkit.tracing.decorators import trace


def __getattr__(name: str) -> Any:
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'evalkit' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
