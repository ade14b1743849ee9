"""One normal form for the per-case table the CI outputs read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from pydantic import BaseModel


@dataclass
class ScoreRow:
    name: str
    value: float | None
    passed: bool | None
    rationale: str | None = None
    error: str | None = None


@dataclass
class CaseRow:
    case_id: str
    repeat: int = 0
    status: str = "ok"
    error: str | None = None
    trace_id: str | None = None
    latency_ms: float | None = None
    scores: list[ScoreRow] = field(default_factory=list)


CaseTable = pl.DataFrame | Iterable[Mapping[str, Any] | BaseModel]


def _score(d: Mapping[str, Any] | BaseModel) -> ScoreRow:
    m = d.model_dump() if isinstance(d, BaseModel) else d
    v = m.get("value")
    return ScoreRow(
        name=str(m.get("name")),
        value=None if v is None else float(v),
        passed=m.get("passed"),
        rationale=m.get("rationale"),
        error=m.get("error"),
    )


def _case(d: Mapping[str, Any] | BaseModel) -> CaseRow:
    m = d.model_dump() if isinstance(d, BaseModel) else dict(d)
    lat = m.get("latency_ms")
    return CaseRow(
        case_id=str(m.get("case_id")),
        repeat=int(m.get("repeat") or 0),
        status=str(m.get("status") or ("error" if m.get("error") else "ok")),
        error=m.get("error"),
        trace_id=m.get("trace_id"),
        latency_ms=None if lat is None else float(lat),
        scores=[_score(s) for s in (m.get("scores") or [])],
    )


def normalise_cases(cases: CaseTable | None) -> list[CaseRow]:
    """Accept :class:`~evalkit.schema.CaseResult` objects, dicts with nested ``scores``, a polars
    frame with a nested ``scores`` list column, or a flat score frame (one row per score, with a
    ``name`` column, as stored in the ``scores`` table)."""
    if cases is None:
        return []
    if isinstance(cases, pl.DataFrame):
        if "scores" in cases.columns:
            return [_case(r) for r in cases.iter_rows(named=True)]
        if "name" not in cases.columns:
            raise ValueError("case table needs a nested 'scores' column or flat score rows with 'name'")
        out: dict[tuple[str, int], CaseRow] = {}
        for r in cases.iter_rows(named=True):
            key = (str(r["case_id"]), int(r.get("repeat") or 0))
            row = out.get(key)
            if row is None:
                row = out[key] = CaseRow(
                    case_id=key[0], repeat=key[1], trace_id=r.get("trace_id"), latency_ms=r.get("latency_ms")
                )
                if r.get("status"):
                    row.status = str(r["status"])
            if r.get("name") is None:  # a case without scores (left join of case_results)
                row.error = r.get("error")
                row.status = str(r.get("status") or "error")
            else:
                row.scores.append(_score(r))
        return list(out.values())
    return [_case(c) for c in cases]
