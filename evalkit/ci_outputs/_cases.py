"""One normal form for the per-case table the CI outputs read.

Every row carries its typed outcome: a score is ``ok``, ``not_applicable`` or ``error`` (with an
error kind); a case is ``completed``, ``errored`` or ``cancelled``. Rows written before outcomes
were typed (no ``outcome`` field or column) are read the way migration 2 back-fills a store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from pydantic import BaseModel

from evalkit.schema import CaseResult, Score


@dataclass
class ScoreRow:
    name: str
    value: float | None
    passed: bool | None
    rationale: str | None = None
    error: str | None = None
    outcome: str = "ok"  # ok | not_applicable | error
    error_kind: str | None = None


@dataclass
class CaseRow:
    case_id: str
    repeat: int = 0
    status: str = "ok"
    error: str | None = None
    trace_id: str | None = None
    latency_ms: float | None = None
    scores: list[ScoreRow] = field(default_factory=list)
    outcome: str = "completed"  # completed | errored | cancelled
    error_kind: str | None = None

    @property
    def target_failed(self) -> bool:
        """The case errored before scoring (its target failed), not just one of its scorers."""
        return self.status == "error"


CaseTable = pl.DataFrame | Iterable[Mapping[str, Any] | BaseModel]


def _score(d: Mapping[str, Any] | BaseModel) -> ScoreRow:
    m = d.model_dump() if isinstance(d, BaseModel) else d
    v = m.get("value")
    outcome, kind, error = m.get("outcome"), m.get("error_kind"), m.get("error")
    if not outcome:  # an untyped row: decided as Score (and migration 2) decide it
        legacy = Score(name=str(m.get("name")), value=None if v is None else float(v), error=error)
        outcome, kind, error = legacy.outcome, legacy.error_kind, legacy.error
    if outcome == "error" and not kind:
        kind = "scorer_exception"
    ok = outcome == "ok"
    return ScoreRow(
        name=str(m.get("name")),
        value=None if v is None or not ok else float(v),
        passed=m.get("passed") if ok else None,
        rationale=m.get("rationale"),
        error=error,
        outcome=str(outcome),
        error_kind=None if outcome != "error" else str(kind),
    )


def _case_kind(status: str, error: str | None) -> str | None:
    if status == "cancelled":
        return "cancelled"
    if status == "error":
        return "timeout" if (error or "").startswith("timeout") else "target_exception"
    return None


def _case_outcome(status: str, scores: list[ScoreRow]) -> str:
    if status == "cancelled":
        return "cancelled"
    if status == "error" or any(s.outcome == "error" for s in scores):
        return "errored"
    return "completed"


def _case(d: Mapping[str, Any] | BaseModel) -> CaseRow:
    m = d.model_dump() if isinstance(d, BaseModel) else dict(d)
    if isinstance(d, CaseResult):
        m["outcome"] = d.outcome
    lat = m.get("latency_ms")
    status = str(m.get("status") or ("error" if m.get("error") else "ok"))
    scores = [_score(s) for s in (m.get("scores") or [])]
    return CaseRow(
        case_id=str(m.get("case_id")),
        repeat=int(m.get("repeat") or 0),
        status=status,
        error=m.get("error"),
        trace_id=m.get("trace_id"),
        latency_ms=None if lat is None else float(lat),
        scores=scores,
        outcome=str(m.get("outcome") or _case_outcome(status, scores)),
        error_kind=m.get("error_kind") or _case_kind(status, m.get("error")),
    )


def normalise_cases(cases: CaseTable | None) -> list[CaseRow]:
    """Accept :class:`~evalkit.schema.CaseResult` objects, dicts with nested ``scores`` (as
    :func:`evalkit.store.reads.cases_with_scores` returns), a polars frame with a nested ``scores``
    list column, or a flat score frame (one row per score, with a ``name`` column, as
    :func:`evalkit.store.reads.score_frame` returns)."""
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
            if r.get("name") is None:  # a case without scores (left join of case rows)
                row.error = r.get("error")
                row.status = str(r.get("status") or "error")
                row.error_kind = r.get("error_kind") or _case_kind(row.status, row.error)
            else:
                row.scores.append(_score(r))
        for row in out.values():
            row.outcome = _case_outcome(row.status, row.scores)
        return list(out.values())
    return [_case(c) for c in cases]
