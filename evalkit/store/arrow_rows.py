"""Case results as columns, for bulk inserts; polars frames handed to DuckDB without pyarrow."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

# DuckDB 1.5 scans an Arrow stream through pyarrow's Acero when pyarrow is installed, and Acero warns on
# stderr, once per batch, that polars' buffers are not 64-byte aligned (harmless on x86-64 and arm64,
# which load unaligned data). The user's own setting wins.
os.environ.setdefault("ACERO_ALIGNMENT_HANDLING", "ignore")

if TYPE_CHECKING:
    import polars as pl

    from evalkit.schema import CaseResult


def _json(v: Any) -> str | None:
    if v is None:
        return None
    return json.dumps(v, ensure_ascii=False, default=str)


def result_columns(
    results: list[CaseResult], inputs: dict[str, dict[str, Any]]
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Column lists (case_results, scores) for a batch of results."""
    c: dict[str, list[Any]] = {k: [] for k in (
        "run_id", "case_id", "repeat", "status", "input", "expected", "output", "error", "latency_ms",
        "input_tokens", "output_tokens", "cost_usd", "llm_calls", "trace_id", "started_at", "ended_at",
        "tags", "tool_calls", "metadata", "outcome", "error_kind",
    )}
    s: dict[str, list[Any]] = {k: [] for k in (
        "run_id", "case_id", "repeat", "name", "value", "is_bool", "passed", "rationale", "error", "metadata",
        "outcome", "error_kind",
    )}
    for r in results:
        case = inputs.get(r.case_id, {})
        c["run_id"].append(r.run_id)
        c["case_id"].append(r.case_id)
        c["repeat"].append(r.repeat)
        c["status"].append(r.status)
        c["input"].append(_json(case.get("input")))
        c["expected"].append(_json(case.get("expected")))
        c["output"].append(_json(r.output))
        c["error"].append(r.error)
        c["latency_ms"].append(r.latency_ms)
        c["input_tokens"].append(r.usage.input_tokens)
        c["output_tokens"].append(r.usage.output_tokens)
        c["cost_usd"].append(r.usage.cost_usd)
        c["llm_calls"].append(r.usage.llm_calls)
        c["trace_id"].append(r.trace_id)
        c["started_at"].append(r.started_at)
        c["ended_at"].append(r.ended_at)
        c["tags"].append(r.tags)
        c["tool_calls"].append(_json([t.model_dump() for t in r.tool_calls]) if r.tool_calls else None)
        c["metadata"].append(_json(case.get("metadata")))
        c["outcome"].append(r.outcome)
        c["error_kind"].append(r.error_kind)
        for sc in r.scores:
            s["run_id"].append(r.run_id)
            s["case_id"].append(r.case_id)
            s["repeat"].append(r.repeat)
            s["name"].append(sc.name)
            s["value"].append(None if sc.value is None else float(sc.value))
            s["is_bool"].append(isinstance(sc.value, bool))
            s["passed"].append(sc.passed)
            s["rationale"].append(sc.rationale)
            s["error"].append(sc.error)
            s["metadata"].append(_json(sc.metadata) if sc.metadata else None)
            s["outcome"].append(sc.outcome)
            s["error_kind"].append(sc.error_kind)
    return c, s


def _schemas() -> dict[str, dict[str, Any]]:
    import polars as pl

    ts = pl.Datetime("us", "UTC")
    return {
        "case_results": {
            "run_id": pl.String, "case_id": pl.String, "repeat": pl.Int32, "status": pl.String, "input": pl.String,
            "expected": pl.String, "output": pl.String, "error": pl.String, "latency_ms": pl.Float64,
            "input_tokens": pl.Int64, "output_tokens": pl.Int64, "cost_usd": pl.Float64, "llm_calls": pl.Int32,
            "trace_id": pl.String, "started_at": ts, "ended_at": ts, "tags": pl.List(pl.String),
            "tool_calls": pl.String, "metadata": pl.String, "outcome": pl.String, "error_kind": pl.String,
        },
        "scores": {
            "run_id": pl.String, "case_id": pl.String, "repeat": pl.Int32, "name": pl.String, "value": pl.Float64,
            "is_bool": pl.Boolean, "passed": pl.Boolean, "rationale": pl.String, "error": pl.String,
            "metadata": pl.String, "outcome": pl.String, "error_kind": pl.String,
        },
    }


def to_frame(table: str, cols: dict[str, list[Any]]) -> pl.DataFrame:
    """A polars frame of ``table``'s columns for a bulk insert (or a Parquet part)."""
    import polars as pl

    return pl.DataFrame(cols, schema=_schemas()[table])


class ArrowStream:
    """A polars frame as DuckDB sees it through the Arrow PyCapsule stream interface, without pyarrow.

    DuckDB's ``register`` turns a polars frame into an Arrow table with pyarrow; an object exposing
    only ``__arrow_c_stream__`` is scanned from the stream polars exports. Each scan asks
    for a fresh stream, so DuckDB may read it more than once.
    """

    __slots__ = ("df",)

    def __init__(self, df: pl.DataFrame) -> None:
        self.df = df

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self.df.__arrow_c_stream__(requested_schema)


def stream_of(df: pl.DataFrame) -> object:
    """``df`` as one Arrow C stream (a PyCapsule, read once), what the store registers for a bulk insert.

    DuckDB 1.5 imports pandas, NumPy and pyarrow (0.6 s and ~85 MB, measured here) to look at any
    Python object it is asked to register, an :class:`ArrowStream` included; a bare capsule it reads as is.
    """
    return ArrowStream(df).__arrow_c_stream__()
