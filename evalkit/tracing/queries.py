"""Reads behind ``evalkit traces`` / ``evalkit trace``: per-case trace summaries and one case's span tree."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.errors import UserError
from evalkit.tracing.columns import LLM_OPERATIONS

if TYPE_CHECKING:
    from evalkit.store.db import Store

_LLM = ", ".join(f"'{o}'" for o in LLM_OPERATIONS)

CASE_TRACES_SQL = f"""
WITH cr AS (
    SELECT case_id, repeat, status, error, latency_ms, trace_id FROM case_results WHERE run_id = ?
), sp AS (
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
    FROM spans WHERE trace_id IN (SELECT trace_id FROM cr) GROUP BY trace_id
), sc AS (
    SELECT case_id, repeat,
           string_agg(name, ', ' ORDER BY name) FILTER (WHERE passed = false OR error IS NOT NULL) AS failed_scores
    FROM scores WHERE run_id = ? GROUP BY case_id, repeat
)
SELECT cr.case_id, cr.repeat, cr.status, cr.error, coalesce(sp.case_ms, cr.latency_ms) AS duration_ms,
       coalesce(sp.spans, 0) AS spans, coalesce(sp.error_spans, 0) AS error_spans,
       coalesce(sp.tool_calls, 0) AS tool_calls, coalesce(sp.llm_calls, 0) AS llm_calls,
       coalesce(sp.input_tokens, 0) AS input_tokens, coalesce(sp.output_tokens, 0) AS output_tokens,
       sp.slowest_span, sp.slowest_span_ms, sp.errors, sc.failed_scores, cr.trace_id,
       (cr.status <> 'ok' OR sc.failed_scores IS NOT NULL OR coalesce(sp.error_spans, 0) > 0) AS failed
FROM cr LEFT JOIN sp USING (trace_id) LEFT JOIN sc USING (case_id, repeat)
"""


def case_traces(store: Store, run_id: str, *, limit: int | None = 20, failed_only: bool = False,
                order: str = "failed") -> list[dict[str, Any]]:
    """One row per case of a run: duration, span/tool/LLM counts, tokens, errors; failed then slowest first."""
    where = " WHERE failed" if failed_only else ""
    by = "duration_ms DESC NULLS LAST" if order == "slowest" else "failed DESC, duration_ms DESC NULLS LAST"
    lim = f" LIMIT {int(limit)}" if limit else ""
    return store.query(f"SELECT * FROM ({CASE_TRACES_SQL}){where} ORDER BY {by}, case_id, repeat{lim}", [run_id, run_id])


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
    """(the case's result row, its span trees: the ``evalkit.case`` root first, then any orphans)."""
    params: list[Any] = [run_id, case_id]
    cond = ""
    if repeat is not None:
        cond, params = " AND repeat = ?", [*params, repeat]
    cases = store.query(
        "SELECT case_id, repeat, status, error, latency_ms, trace_id, input_tokens, output_tokens FROM case_results"
        f" WHERE run_id = ? AND case_id = ?{cond} ORDER BY repeat", params,
    )
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
