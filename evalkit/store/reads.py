"""Typed reads of a run's rows: the one place that knows how ``case_results`` and ``scores`` look.

Everything that summarises, gates, resumes, reports or tracks a run reads it through these
functions, so the meaning of a row (its outcome, its error kind) is decided once.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import polars as pl

    from evalkit.store.db import Store

CASE_COLUMNS = ("case_id", "repeat", "status", "outcome", "error", "error_kind", "latency_ms", "input_tokens",
                "output_tokens", "cost_usd", "trace_id", "tags")
SCORE_COLUMNS = ("case_id", "repeat", "name", "value", "is_bool", "passed", "rationale", "error", "outcome",
                 "error_kind")


@dataclass(frozen=True)
class Ledger:
    """Where a run's stored case × repeat results ended."""

    completed: int = 0
    errored: int = 0
    cancelled: int = 0

    @property
    def recorded(self) -> int:
        return self.completed + self.errored + self.cancelled


class RunFrames(NamedTuple):
    """A run's case rows and score rows, read once and shared by finalise, the gate and ``evaluate()``."""

    cases: pl.DataFrame
    scores: pl.DataFrame


def run_frames(store: Store, run_id: str) -> RunFrames:
    """:func:`case_frame` and :func:`score_frame` of one run."""
    return RunFrames(case_frame(store, run_id), score_frame(store, run_id))


def case_frame(store: Store, run_id: str) -> pl.DataFrame:
    """One row per stored case × repeat (:data:`CASE_COLUMNS`), in case order."""
    return store.frame(f"SELECT {', '.join(CASE_COLUMNS)} FROM case_results WHERE run_id = ? ORDER BY case_id, repeat",
                       [run_id], large=True)


def score_frame(store: Store, run_id: str) -> pl.DataFrame:
    """One row per score (:data:`SCORE_COLUMNS`), in case and scorer order."""
    import polars as pl

    frame = store.frame(f"SELECT {', '.join(SCORE_COLUMNS)} FROM scores WHERE run_id = ? ORDER BY case_id, repeat, name",
                        [run_id], large=True)
    if frame.height == 0:
        return pl.DataFrame(schema=score_schema())
    return frame.cast(score_schema())  # type: ignore[arg-type]


def score_schema() -> dict[str, Any]:
    """Polars dtypes of :func:`score_frame`."""
    import polars as pl

    return {"case_id": pl.Utf8, "repeat": pl.Int64, "name": pl.Utf8, "value": pl.Float64, "is_bool": pl.Boolean,
            "passed": pl.Boolean, "rationale": pl.Utf8, "error": pl.Utf8, "outcome": pl.Utf8, "error_kind": pl.Utf8}


def ledger(store: Store, run_id: str) -> Ledger:
    """Counts of completed, errored and cancelled case × repeat results stored for a run."""
    row = store.execute(
        "SELECT count(*) FILTER (WHERE outcome = 'completed'), count(*) FILTER (WHERE outcome = 'errored'),"
        " count(*) FILTER (WHERE outcome = 'cancelled') FROM case_results WHERE run_id = ?", [run_id])[0]
    return Ledger(int(row[0]), int(row[1]), int(row[2]))


def done_keys(store: Store, run_id: str, *, outcomes: tuple[str, ...] = ("completed", "errored")) -> set[tuple[str, int]]:
    """(case id, repeat) pairs of a run whose stored outcome is one of ``outcomes``."""
    marks = ", ".join("?" for _ in outcomes)
    rows = store.execute(f"SELECT case_id, repeat FROM case_results WHERE run_id = ? AND outcome IN ({marks})",
                         [run_id, *outcomes])
    return {(r[0], int(r[1])) for r in rows}


def cases_with_scores(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Per-case rows (input, expected, output, tool calls decoded) with their scores, failures first.

    A case ``failed`` when its outcome is not ``completed`` (errored, cancelled) or a score failed;
    a not-applicable score never fails a case.
    """
    by_key: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for s in score_rows(store, run_id):
        by_key.setdefault((s["case_id"], s["repeat"]), []).append({k: s[k] for k in _SCORE_KEYS})
    cases = case_rows(store, run_id)
    for c in cases:
        c["scores"] = by_key.get((c["case_id"], c["repeat"]), [])
        c["failed"] = c["outcome"] != "completed" or any(s["passed"] is False for s in c["scores"])
    cases.sort(key=lambda c: (not c["failed"], c["case_id"], c["repeat"]))
    return cases


_SCORE_KEYS = ("name", "value", "passed", "rationale", "error", "outcome", "error_kind", "metadata")


_FLAGGED = """bad AS (SELECT DISTINCT case_id, repeat FROM scores WHERE run_id = $run AND passed = false),
flagged AS (
    SELECT c.rowid AS rid, c.case_id, c.repeat,
           (c.outcome IS DISTINCT FROM 'completed' OR b.case_id IS NOT NULL) AS failed
    FROM case_results c LEFT JOIN bad b ON b.case_id = c.case_id AND b.repeat = c.repeat
    WHERE c.run_id = $run)"""
"""Each case × repeat row of run ``$run`` (by ``rowid``) with ``failed`` as :func:`cases_with_scores` decides it:
an outcome other than ``completed`` (errored, cancelled, none) or a score with ``passed = false``
(a not-applicable score has no verdict, so it never fails a case)."""


def case_counts(store: Store, run_id: str) -> tuple[int, int]:
    """(case × repeat rows, failed ones) of a run, counted in SQL (``failed`` as :func:`cases_with_scores`)."""
    row = store.execute(f"WITH {_FLAGGED} SELECT count(*), count(*) FILTER (WHERE failed) FROM flagged",
                        {"run": run_id})[0]
    return int(row[0]), int(row[1])


def case_page(store: Store, run_id: str, *, failed_only: bool = False, limit: int | None = 50,
              offset: int = 0) -> tuple[list[dict[str, Any]], int, int]:
    """One page of :func:`cases_with_scores`: (rows, total case × repeat rows, failed ones).

    ``failed`` is computed, failures are ordered first (then case id, repeat) and ``limit`` /
    ``offset`` are applied in DuckDB (``limit=None``: every row from ``offset`` on); only then are the
    page's case rows fetched, their input, expected, output and tool calls decoded, and their scores
    read. ``failed_only`` keeps failed rows only; the totals are always the run's.
    """
    if offset < 0 or (limit is not None and limit < 0):
        raise ValueError("limit and offset must not be negative")
    total, failed_total = case_counts(store, run_id)
    page_sql = (f"SELECT rid, case_id, repeat, failed FROM flagged{' WHERE failed' if failed_only else ''}"
                " ORDER BY failed DESC, case_id, repeat, rid"
                + (" LIMIT $limit" if limit is not None else "") + " OFFSET $offset")
    params: dict[str, Any] = {"run": run_id, "offset": offset}
    if limit is not None:
        params["limit"] = limit
    cols = ", ".join(f"c.{k}" for k in CASE_COLUMNS + DETAIL_COLUMNS)
    rows = store.query(
        f"WITH {_FLAGGED}, page AS ({page_sql}) SELECT {cols}, p.failed AS failed FROM page p"
        " JOIN case_results c ON c.rowid = p.rid ORDER BY p.failed DESC, p.case_id, p.repeat, p.rid", params)
    by_key: dict[tuple[str, int], list[dict[str, Any]]] = {}
    if rows:
        keys = {(r["case_id"], r["repeat"]) for r in rows}
        for s in score_rows(store, run_id, case_ids=sorted({k[0] for k in keys})):
            key = (s["case_id"], s["repeat"])
            if key in keys:
                by_key.setdefault(key, []).append({k: s[k] for k in _SCORE_KEYS})
    for r in rows:
        for k in DETAIL_COLUMNS:
            if isinstance(r[k], str):
                r[k] = json.loads(r[k])
        r["scores"] = by_key.get((r["case_id"], r["repeat"]), [])
        r["failed"] = bool(r.pop("failed"))
    return rows, total, failed_total


# -- per-case detail -------------------------------------------------------------------------------

DETAIL_COLUMNS = ("input", "expected", "output", "tool_calls")  # stored as JSON


def _where(run_id: str, case_ids: list[str] | None, repeat: int | None) -> tuple[str, list[Any]]:
    cond = "run_id = ?"
    params: list[Any] = [run_id]
    if case_ids is not None:
        cond += " AND case_id IN (SELECT unnest(?::VARCHAR[]))"
        params.append(list(case_ids))
    if repeat is not None:
        cond += " AND repeat = ?"
        params.append(repeat)
    return cond, params


def case_rows(store: Store, run_id: str, *, case_ids: list[str] | None = None, repeat: int | None = None,
              details: bool = True) -> list[dict[str, Any]]:
    """Per case × repeat rows (:data:`CASE_COLUMNS`, plus decoded input, expected, output and tool calls
    with ``details``), in case and repeat order; only ``case_ids`` / ``repeat`` when given."""
    cond, params = _where(run_id, case_ids, repeat)
    cols = CASE_COLUMNS + (DETAIL_COLUMNS if details else ())
    rows = store.query(f"SELECT {', '.join(cols)} FROM case_results WHERE {cond} ORDER BY case_id, repeat", params)
    if details:
        for r in rows:
            for k in DETAIL_COLUMNS:
                if isinstance(r[k], str):
                    r[k] = json.loads(r[k])
    return rows


def score_rows(store: Store, run_id: str, *, case_ids: list[str] | None = None,
               repeat: int | None = None) -> list[dict[str, Any]]:
    """Score rows (:data:`SCORE_COLUMNS` and decoded ``metadata``; boolean scores as bools), in case,
    repeat and scorer order; only ``case_ids`` / ``repeat`` when given."""
    cond, params = _where(run_id, case_ids, repeat)
    rows = store.query(f"SELECT {', '.join(SCORE_COLUMNS)}, metadata FROM scores WHERE {cond}"
                       " ORDER BY case_id, repeat, name", params)
    for s in rows:
        if s["is_bool"] and s["value"] is not None:
            s["value"] = bool(s["value"]) if math.isfinite(s["value"]) else None  # a legacy NaN is no verdict
        meta = s["metadata"]
        s["metadata"] = (json.loads(meta) if isinstance(meta, str) else meta) or {}
    return rows


def result_frame(store: Store, run_id: str) -> pl.DataFrame:
    """One row per case × repeat as exported: ledger outcome and error kind, texts as JSON strings,
    latency, usage and times, in case order."""
    import polars as pl

    frame = store.frame(
        "SELECT case_id, repeat, status, outcome, error_kind, CAST(input AS VARCHAR) AS input,"
        " CAST(expected AS VARCHAR) AS expected, CAST(output AS VARCHAR) AS output, error, latency_ms, input_tokens,"
        " output_tokens, cost_usd, llm_calls, trace_id, started_at, ended_at FROM case_results WHERE run_id = ?"
        " ORDER BY case_id, repeat", [run_id])
    return frame.with_columns(pl.col("repeat").cast(pl.Int64)) if frame.height else frame


def case_inputs(store: Store, run_id: str) -> list[tuple[Any, ...]]:
    """Distinct (case id, input JSON, expected JSON) of a run, by case id: what its inline dataset was."""
    return store.execute(
        "SELECT DISTINCT case_id, CAST(input AS VARCHAR), CAST(expected AS VARCHAR) FROM case_results"
        " WHERE run_id = ? ORDER BY case_id", [run_id])


@dataclass(frozen=True)
class JudgeUse:
    """A judge that scored a run, from its scores' metadata."""

    scorer: str
    judge: str
    model: str | None = None
    prompt_sha256: str | None = None


def judges(store: Store, run_id: str) -> list[JudgeUse]:
    """Distinct (scorer, judge, model, prompt hash) of a run's judge scores, sorted."""
    rows = store.execute(
        "SELECT DISTINCT name, json_extract_string(metadata, '$.judge') AS judge,"
        " json_extract_string(metadata, '$.model'), json_extract_string(metadata, '$.prompt_sha256')"
        " FROM scores WHERE run_id = ? AND metadata IS NOT NULL AND coalesce(judge, '') <> ''", [run_id])
    uses = [JudgeUse(r[0], r[1], r[2], r[3]) for r in rows]
    return sorted(uses, key=lambda j: (j.scorer, j.judge, j.model or "", j.prompt_sha256 or ""))


RUN_TRACE_IDS = "SELECT trace_id FROM case_results WHERE run_id = ? AND trace_id IS NOT NULL"
"""A subquery of the trace ids of run ``?``: how span queries find the spans of a run's cases."""


def trace_ids_sql(run_ids_sql: str) -> str:
    """A subquery of the trace ids of the runs ``run_ids_sql`` (a SQL list of literals)."""
    return f"SELECT trace_id FROM case_results WHERE run_id IN ({run_ids_sql}) AND trace_id IS NOT NULL"


# -- rows written before outcomes were typed -------------------------------------------------------

LEGACY_SCORE_OUTCOME = """CASE
    WHEN value IS NOT NULL THEN 'ok'
    WHEN error LIKE 'not_scored: target failed%' OR error LIKE 'not_scored: cancelled%'
         OR error LIKE 'not_scored: the test failed%' THEN 'error'
    WHEN error LIKE 'not_scored:%' THEN 'not_applicable'
    ELSE 'error' END"""
"""The outcome of a score row without one (an older store or export), as migration 2 derives it."""

LEGACY_SCORE_ERROR_KIND = """CASE
    WHEN value IS NOT NULL THEN NULL
    WHEN error LIKE 'not_scored: cancelled%' THEN 'cancelled'
    WHEN error LIKE 'not_scored: target failed%' OR error LIKE 'not_scored: the test failed%' THEN 'target_exception'
    WHEN error LIKE 'not_scored:%' THEN NULL
    WHEN error LIKE 'provider_error%' THEN 'provider'
    WHEN error LIKE 'judge_output_invalid%' THEN 'judge_output_invalid'
    WHEN error LIKE 'timeout%' THEN 'timeout'
    ELSE 'scorer_exception' END"""
"""The error kind of a score row without one, as migration 2 derives it."""

LEGACY_CASE_ERROR_KIND = """CASE
    WHEN status = 'cancelled' THEN 'cancelled'
    WHEN status = 'error' AND error LIKE 'timeout%' THEN 'timeout'
    WHEN status = 'error' THEN 'target_exception'
    ELSE NULL END"""
"""The error kind of a case row without one, as migration 2 derives it."""


def legacy_case_outcome(row: str) -> str:
    """The ledger outcome of case row ``row`` (an alias) without one, from the stored ``scores`` of its
    case (already typed), as migration 2 derives it."""
    return f"""CASE
    WHEN {row}.status = 'cancelled' THEN 'cancelled'
    WHEN {row}.status = 'error' THEN 'errored'
    WHEN EXISTS (SELECT 1 FROM scores s WHERE s.run_id = {row}.run_id AND s.case_id = {row}.case_id
                 AND s.repeat = {row}.repeat AND s.outcome = 'error') THEN 'errored'
    ELSE 'completed' END"""
