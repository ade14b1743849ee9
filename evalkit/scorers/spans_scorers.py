"""Trajectory scorers that read the case's spans (``run.spans``: the spans finished before scoring).

They need tracing on (the default); with tracing off they report "not applicable".
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any, Literal

from evalkit.schema import Case, Score, ToolCall
from evalkit.scorers._util import NotScored
from evalkit.scorers.registry import RunInfo, ScoreFn, register
from evalkit.scorers.trajectory import compare_trajectory

_LLM_OPERATIONS = ("chat", "text_completion", "generate_content")


def _spans(run: RunInfo) -> list[dict[str, Any]]:
    if not run.spans and not run.trace_id:
        raise NotScored("no spans: the run was not traced")
    return sorted(run.spans, key=lambda s: s.get("start_ns") or 0)


def _ignored(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


@register("no_error_spans")
def no_error_spans(ignore: list[str] | None = None) -> ScoreFn:
    """No span of the case ended in error (``ignore``: span-name glob patterns to skip)."""
    patterns = list(ignore or [])

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        bad = [s for s in _spans(run) if s.get("status_code") == "ERROR" and not _ignored(str(s.get("name")), patterns)]
        if not bad:
            return Score(name="_", value=True, passed=True, rationale=f"{len(run.spans)} spans, none failed")
        shown = "; ".join(f"{s['name']}: {s.get('status_message') or s.get('error_type') or 'error'}" for s in bad[:3])
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        return Score(name="_", value=False, passed=False, rationale=f"{len(bad)} failed spans: {shown}{more}")

    return score


def _span_tool_calls(spans: list[dict[str, Any]]) -> list[ToolCall]:
    out = []
    for s in spans:
        attrs = s.get("attributes") or {}
        if attrs.get("gen_ai.operation.name") != "execute_tool" or not attrs.get("gen_ai.tool.name"):
            continue
        args: Any = attrs.get("gen_ai.tool.call.arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                args = {}
        out.append(ToolCall(name=str(attrs["gen_ai.tool.name"]), arguments=args if isinstance(args, dict) else {}))
    return out


@register("span_tool_calls")
def span_tool_calls(mode: Literal["exact", "in_order", "any_order"] = "in_order", check_args: bool = True) -> ScoreFn:
    """Like ``tool_calls``, but from the case's ``execute_tool`` spans (e.g. tools traced by an
    OpenTelemetry instrumentation rather than ``@evalkit.trace``). Arguments are compared only
    when the spans carry them (content capture on)."""

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        return compare_trajectory(case, _span_tool_calls(_spans(run)), mode, check_args, verb="spans show")

    return score


@register("llm_call_count")
def llm_call_count(max_calls: int) -> ScoreFn:
    """The agent made at most ``max_calls`` model calls (its ``gen_ai`` spans; judges run later and never count)."""

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        n = sum(1 for s in _spans(run) if s.get("operation") in _LLM_OPERATIONS)
        return Score(name="_", value=n <= max_calls, passed=n <= max_calls, rationale=f"{n} model calls (max {max_calls})")

    return score
