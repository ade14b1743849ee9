"""evalkit: run agent test suites, score them with deterministic scorers and LLM judges,
trace every case with OpenTelemetry into DuckDB, and log summaries to MLflow."""

from __future__ import annotations

__version__ = "0.1.0"

from evalkit.api import EvalResult, evaluate
from evalkit.context import record_tool_call
from evalkit.errors import UserError
from evalkit.schema import Case, CaseResult, Message, RunSummary, Score, ToolCall
from evalkit.scorers.registry import RunInfo, scorer
from evalkit.scorers.registry import register as scorer_factory
from evalkit.suite import Suite, load_suite

__all__ = [
    "Case",
    "CaseResult",
    "EvalResult",
    "Message",
    "RunInfo",
    "RunSummary",
    "Score",
    "Suite",
    "ToolCall",
    "UserError",
    "__version__",
    "evaluate",
    "load_suite",
    "record_tool_call",
    "scorer",
    "scorer_factory",
]
