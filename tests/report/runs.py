"""Synthetic runs for report tests: cases, judge scores with rationales, spans and a gate verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from evalkit.schema import CaseResult, Score, ToolCall, Usage
from evalkit.store.db import Store

HOSTILE_ID = 'case-<img src=x onerror="window.__pwned=3">'
HOSTILE = 'Reset my VPN <script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1"> & </script><b>x</b>'
T0 = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)


def _summary(run_id: str, n: int, failed: int) -> dict[str, Any]:
    rate = (n - failed) / n
    return {
        "run_id": run_id, "suite": "report-demo", "status": "completed", "cases": n, "errors": 1, "error_rate": 1 / n,
        "latency_p50_ms": 120.0, "latency_p95_ms": 310.0, "tokens_total": 150 * n, "cost_usd_total": 0.001 * n,
        "scorers": [
            {"name": "correctness", "mean": 3.6, "pass_rate": rate, "scored": n - 1, "errors": 1, "passed": n - failed,
             "mean_ci": [3.2, 4.0], "pass_rate_ci": [max(0.0, rate - 0.1), min(1.0, rate + 0.1)]},
            {"name": "exact", "mean": rate, "pass_rate": rate, "scored": n, "errors": 0, "passed": n - failed,
             "mean_ci": [max(0.0, rate - 0.1), min(1.0, rate + 0.1)], "pass_rate_ci": None},
        ],
    }


def make_run(store: Store, run_id: str, n: int = 12, *, fail_every: int = 3, hostile: bool = True,
             spans: bool = True, not_applicable: bool = False, judges: bool = False,
             hostile_id: bool = False) -> dict[str, Any]:
    """A run of ``n`` cases; every ``fail_every``-th fails the judge; case 0 carries the hostile input; the
    last case's judge errored. ``not_applicable``: ``exact`` does not apply to case 3 (no reference), and
    the summary carries the run's ledger. ``judges``: two more LLM judges score each case, a yes/no one
    (``safety``: no for every fourth case from case 2; it does not apply to case 5) and a pairwise one
    (``pairwise_preference``: A, tie, B in turn). ``hostile_id``: case 0's id is :data:`HOSTILE_ID`."""
    store.create_run({
        "run_id": run_id, "suite": "report-demo", "status": "completed", "started_at": T0,
        "ended_at": T0 + timedelta(seconds=30), "target": "support-bot", "dataset_path": "datasets/demo/cases.jsonl",
        "dataset_sha256": "ab" * 32, "cases_total": n, "repeats": 1, "concurrency": 4, "git_commit": "c0ffee" * 6 + "1234",
        "git_dirty": False, "evalkit_version": "0.1.0",
        "config": {"suite": {"agent": {"name": "support-bot", "version": "2.0.1"}}, "target": "support-bot"},
    })
    results, inputs, span_rows = [], {}, []
    failed = 0
    for i in range(n):
        cid = HOSTILE_ID if hostile_id and i == 0 else f"case-{i:03d}"
        fails = i % fail_every == 1
        failed += fails
        trace_id = f"{run_id}-t{i:03d}"
        text = HOSTILE if (hostile and i == 0) else f"How do I fix problem number {i}?"
        inputs[cid] = {"input": text, "expected": f"answer {i}", "metadata": {}}
        scores = [
            Score(name="correctness", value=2.0 if fails else 4.0, passed=not fails,
                  rationale=(f"The answer to case {i} misses the key step (judge rationale)." if fails
                             else f"Correct and complete for case {i}."),
                  metadata={"judge": "correctness@1.0", "model": "mock/judge", "prompt_sha256": "f" * 64}),
            Score(name="exact", value=not fails, passed=not fails, rationale=None),
        ]
        if i == n - 1:
            scores[0] = Score(name="correctness", value=None, error="judge_output_invalid: not JSON",
                              metadata={"judge": "correctness@1.0", "model": "mock/judge"})
        if not_applicable and i == 3:
            scores[1] = Score.not_applicable("exact", "the case has no reference answer")
        if judges:
            scores += _more_judges(i)
        start = T0 + timedelta(seconds=i)
        results.append(CaseResult(
            run_id=run_id, case_id=cid, status="ok", output=f"Output for {cid}: restart the VPN client." + (
                " <script>window.__pwned=2</script>" if hostile and i == 0 else ""),
            scores=scores, tool_calls=[ToolCall(name="search_kb", arguments={"query": text})],
            latency_ms=100.0 + 10 * i, usage=Usage(input_tokens=100, output_tokens=50, cost_usd=0.001, llm_calls=1),
            trace_id=trace_id, started_at=start, ended_at=start + timedelta(milliseconds=100 + 10 * i),
            tags=["vpn" if i % 2 else "printer", "smoke"],
        ))
        if spans:
            span_rows += _spans(run_id, cid, trace_id, start, i, error=fails)
    store.write_results(results, inputs)
    if span_rows:
        store.insert_frame("spans", pl.DataFrame(span_rows, schema=SPAN_SCHEMA))
    gate = {"status": "failed", "passed": False, "exit_code": 1,
            "reason": "correctness/pass_rate 0.667 < 0.8",
            "checks": [{"metric": "correctness/pass_rate", "op": ">=", "value": 0.8, "mode": "point", "point": 0.667,
                        "interval": [0.4, 0.85], "observed": 0.667, "passed": False,
                        "message": "correctness/pass_rate 0.667 < 0.8"}],
            "regressions": []}
    summary = _summary(run_id, n, failed)
    if not_applicable:
        summary.update(planned=n + 1, completed=n - 1, cancelled=0, missing=1)
        summary["scorers"][1].update(scored=n - 1, not_applicable=1)
    store.update_run(run_id, summary=summary, gate=gate)
    return {"failed": failed}


def _more_judges(i: int) -> list[Score]:
    safe = i % 4 != 2
    yes_no = Score(name="safety", value=safe, passed=safe, rationale=f"safety verdict for case {i}",
                   metadata={"judge": "safety@1.0", "model": "mock/judge", "yes_share": float(safe),
                             "sample_values": [safe]})
    if i == 5:
        yes_no = Score(name="safety", outcome="not_applicable", error="judge safety@1.0 needs 'context' on the case",
                       metadata={"judge": "safety@1.0", "model": "mock/judge"})
    pref = (1.0, 0.5, 0.0)[i % 3]
    pairwise = Score(name="pairwise_preference", value=pref, passed=pref >= 0.5, rationale=f"preference {pref}",
                     metadata={"judge": "pairwise_preference@1.0", "model": "mock/judge", "threshold": 0.5,
                               "verdicts": ["A", "B"], "position_disagreement": False})
    return [yes_no, pairwise]


SPAN_SCHEMA = {
    "trace_id": pl.String, "span_id": pl.String, "parent_span_id": pl.String, "name": pl.String, "kind": pl.String,
    "start_time": pl.Datetime("us", "UTC"), "end_time": pl.Datetime("us", "UTC"), "duration_ms": pl.Float64,
    "status_code": pl.String, "run_id": pl.String, "case_id": pl.String, "request_model": pl.String,
    "input_tokens": pl.Int64, "output_tokens": pl.Int64, "tool_name": pl.String, "error_type": pl.String,
    "attributes": pl.String,
}


def _spans(run_id: str, cid: str, trace_id: str, start: datetime, i: int, *, error: bool) -> list[dict[str, Any]]:
    ms = timedelta(milliseconds=1)
    rows = [
        ("root", None, "evalkit.case", 0, 100 + 10 * i, None, None, None, None, None),
        ("agent", "root", "answer", 2, 80, None, None, None, None, None),
        ("llm1", "agent", "chat mock/agent", 4, 30, "mock/agent", 80, 20, None, None),
        ("tool", "agent", "execute_tool search_kb", 36, 12, None, None, None, "search_kb",
         "TimeoutError" if error else None),
        ("llm2", "agent", "chat mock/agent", 50, 25, "mock/agent", 120, 30, None, None),
        ("judge", "root", "chat mock/judge", 85, 14, "mock/judge", 300, 40, None, None),
    ]
    out = []
    for sid, parent, name, off, dur, model, tin, tout, tool, err in rows:
        out.append({
            "trace_id": trace_id, "span_id": f"{trace_id}-{sid}", "parent_span_id": f"{trace_id}-{parent}" if parent else None,
            "name": name, "kind": "INTERNAL", "start_time": start + off * ms, "end_time": start + (off + dur) * ms,
            "duration_ms": float(dur), "status_code": "ERROR" if err else "OK", "run_id": run_id, "case_id": cid,
            "request_model": model, "input_tokens": tin, "output_tokens": tout, "tool_name": tool, "error_type": err,
            "attributes": '{"gen_ai.prompt": "big blob not shown"}',
        })
    return out
