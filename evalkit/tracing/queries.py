"""Reads behind ``evalkit traces`` / ``evalkit trace``: per-case trace summaries and one case's span tree."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.errors import UserError
from evalkit.store import reads
from evalkit.tracing.columns import LLM_OPERATIONS

if TYPE_CHECKING:
    from evalkit.store.db import Store

_LLM = ", ".join(f"'{o}'" for o in LLM_OPERATIONS)

SPAN_STATS_SQL = f"""
SELECT trace_id,
       count(*) AS spans,
       count(*) FILTER (WHERE status_code = 'ERROR') AS error_spans,
       count(*) FILTER (WHERE operation = 'execute_tool') AS tool_calls,
       count(*) FILTER (WHERE operation IN ({_LLM})) AS llm_calls,
       coalesce(sum(input_tokens) FILTER (WHERE operation IN ({_LLM})), 0) AS input_tokens,
       coalesce(sum(output_tokens) FILTER (WHERE operation IN ({_LLM})), 0) AS output_tokens,
       max(duration_ms) FILTER (WHERE name = 'evalkit.case') AS case_ms,
       arg_max(name, duration_ms) FILTER (WHERE name <> 'evalkit.case') AS slowest_span,
       max(duration_ms) FILTER (WHERE name <> 'evalkit.case') AS slowest_span_ms,
       string_agg(DISTINCT coalesce(error_type, name), ', ') FILTER (WHERE status_code = 'ERROR'
                  AND name <> 'evalkit.case') AS errors
FROM spans WHERE trace_id IN ({reads.RUN_TRACE_IDS}) GROUP BY trace_id
"""
_NO_SPANS: dict[str, Any] = {"spans": 0, "error_spans": 0, "tool_calls": 0, "llm_calls": 0, "input_tokens": 0, "output_tokens": 0,
             "case_ms": None, "slowest_span": None, "slowest_span_ms": None, "errors": None}


def failed_scores(store: Store, run_id: str) -> dict[tuple[str, int], tuple[str, str | None]]:
    """(case id, repeat) -> (names of its scores that failed or errored, the first error kind among them).

    A not-applicable score neither fails nor errors.
    """
    names: dict[tuple[str, int], list[str]] = {}
    kinds: dict[tuple[str, int], str | None] = {}
    for s in reads.score_rows(store, run_id):
        if s["passed"] is False or s["outcome"] == "error":
            key = (s["case_id"], s["repeat"])
            names.setdefault(key, []).append(s["name"])
            kinds[key] = kinds.get(key) or s["error_kind"]
    return {k: (", ".join(sorted(v)), kinds.get(k)) for k, v in names.items()}


def case_traces(store: Store, run_id: str, *, limit: int | None = 20, failed_only: bool = False,
                order: str = "failed") -> list[dict[str, Any]]:
    """One row per case of a run: outcome, duration, span/tool/LLM counts, tokens, errors; failed then slowest first.

    A case ``failed`` when its outcome is not ``completed`` (errored, cancelled), a score failed or
    errored, or one of its spans is an error.
    """
    spans = {r["trace_id"]: r for r in store.query(SPAN_STATS_SQL, [run_id])}
    bad = failed_scores(store, run_id)
    rows: list[dict[str, Any]] = []
    for c in reads.case_rows(store, run_id, details=False):
        sp = spans.get(c["trace_id"]) or _NO_SPANS
        failed_names, score_kind = bad.get((c["case_id"], c["repeat"]), (None, None))
        duration = sp["case_ms"] if sp["case_ms"] is not None else c["latency_ms"]
        rows.append({
            "case_id": c["case_id"], "repeat": c["repeat"], "status": c["status"], "outcome": c["outcome"],
            "error": c["error"], "error_kind": c["error_kind"] or (score_kind if c["outcome"] == "errored" else None),
            "duration_ms": duration,
            **{k: sp[k] for k in ("spans", "error_spans", "tool_calls", "llm_calls", "input_tokens", "output_tokens",
                                  "slowest_span", "slowest_span_ms", "errors")},
            "failed_scores": failed_names, "trace_id": c["trace_id"],
            "failed": c["outcome"] != "completed" or failed_names is not None or sp["error_spans"] > 0,
        })
    if failed_only:
        rows = [r for r in rows if r["failed"]]

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        slow = (r["duration_ms"] is None, -(r["duration_ms"] or 0.0))
        return (*(() if order == "slowest" else (not r["failed"],)), *slow, r["case_id"], r["repeat"])

    rows.sort(key=key)
    return rows[:limit] if limit else rows


@dataclass
class SpanNode:
    """One span of a case's tree."""

    row: dict[str, Any]
    children: list[SpanNode] = field(default_factory=list)

    @property
    def attributes(self) -> dict[str, Any]:
        raw = self.row.get("attributes")
        return json.loads(raw) if isinstance(raw, str) else (raw or {})

    @property
    def events(self) -> list[dict[str, Any]]:
        raw = self.row.get("events")
        return json.loads(raw) if isinstance(raw, str) else (raw or [])


def case_trace(store: Store, run_id: str, case_id: str, repeat: int | None = None) -> tuple[dict[str, Any], list[SpanNode]]:
    """(the case's result row with its input, expected and output, and its span trees: the ``evalkit.case``
    root first, then any orphans)."""
    cases = reads.case_rows(store, run_id, case_ids=[case_id], repeat=repeat)
    if not cases:
        raise UserError(f"run {run_id} has no case '{case_id}'" + (f" (repeat {repeat})" if repeat is not None else ""))
    case = cases[0]
    if not case["trace_id"]:
        raise UserError(f"case '{case_id}' of run {run_id} was not traced (run with tracing on)")
    rows = store.query(
        "SELECT span_id, parent_span_id, name, kind, start_time, end_time, duration_ms, status_code, status_message,"
        " service_name, operation, provider, request_model, response_model, input_tokens, output_tokens, tool_name,"
        " error_type, attributes, events FROM spans WHERE trace_id = ? ORDER BY start_time, span_id",
        [case["trace_id"]],
    )
    return case, build_tree(rows)


def build_tree(rows: list[dict[str, Any]]) -> list[SpanNode]:
    """Span rows as trees; spans whose parent is not stored become roots (after the case root)."""
    nodes = {r["span_id"]: SpanNode(r) for r in rows}
    roots: list[SpanNode] = []
    for r in rows:
        node = nodes[r["span_id"]]
        parent = nodes.get(r.get("parent_span_id") or "")
        if parent is not None and parent is not node:
            parent.children.append(node)
        else:
            roots.append(node)
    roots.sort(key=lambda n: (n.row["name"] != "evalkit.case",))
    return roots
