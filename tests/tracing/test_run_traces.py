"""End to end: every case traced into the store, spans nested under the case, joinable with scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import evalkit
from evalkit.schema import Case, ToolCall
from evalkit.store.db import open_store
from evalkit.tracing.queries import build_tree, case_trace
from tests.tracing.agent_fixture import agent

REPO = Path(__file__).resolve().parents[2]


def _cases() -> list[Case]:
    return [
        Case(id="vpn", input="vpn keeps dropping", expected="reconnect",
             expected_tool_calls=[ToolCall(name="lookup", arguments={"topic": "vpn"})]),
        Case(id="printer", input="printer jammed", expected="open tray",
             expected_tool_calls=[ToolCall(name="lookup")]),
        Case(id="boom", input="boom goes the tool", expected="x", expected_tool_calls=[ToolCall(name="lookup")]),
    ]


def _run(**kw: object) -> evalkit.EvalResult:
    return evalkit.evaluate(
        _cases(), target=agent, cache=False, concurrency=2,
        scorers=["no_error_spans", "span_tool_calls", {"llm_call_count": {"max_calls": 1}},
                 {"correctness": {"model": "mock/judge-pass"}}],
        **kw,  # type: ignore[arg-type]
    )


def test_every_case_is_a_trace_with_nested_spans_and_verdicts() -> None:
    res = _run()
    with open_store(res.store_path, read_only=True) as st:
        cases = st.query("SELECT case_id, trace_id FROM case_results WHERE run_id = ?", [res.run_id])
        assert len(cases) == 3 and all(c["trace_id"] and len(c["trace_id"]) == 32 for c in cases)
        case, roots = case_trace(st, res.run_id, "vpn")
        spans = st.query("SELECT * FROM spans WHERE trace_id = ?", [case["trace_id"]])
    assert {s["run_id"] for s in spans} == {res.run_id} and {s["case_id"] for s in spans} == {"vpn"}
    root = roots[0]
    assert len(roots) == 1 and root.row["name"] == "evalkit.case" and root.row["parent_span_id"] is None
    attrs = root.attributes
    assert attrs["evalkit.run_id"] == res.run_id and attrs["evalkit.case_id"] == "vpn" and attrs["evalkit.repeat"] == 0

    by_name = {s["name"]: s for s in spans}
    parent = {s["span_id"]: s["parent_span_id"] for s in spans}

    def ancestors(span_id: str) -> list[str]:
        names = {s["span_id"]: s["name"] for s in spans}
        out, p = [], parent[span_id]
        while p:
            out.append(names[p])
            p = parent[p]
        return out

    # The agent's own OpenTelemetry span and its @trace tool nest under the case's target span.
    tool = by_name["execute_tool lookup"]
    assert ancestors(tool["span_id"]) == ["agent.plan", "invoke_agent agent", "evalkit.target", "evalkit.case"]
    assert tool["operation"] == "execute_tool" and tool["tool_name"] == "lookup"
    assert json.loads(json.loads(tool["attributes"])["gen_ai.tool.call.arguments"]) == {"topic": "vpn"}
    assert json.loads(tool["attributes"])["gen_ai.tool.call.result"] == "facts about vpn"
    # The agent's model call and the judge's model call are gen_ai spans.
    chats = [s for s in spans if s["operation"] == "chat"]
    assert len(chats) == 2
    agent_chat = next(s for s in chats if "evalkit.target" in ancestors(s["span_id"]))
    judge_chat = next(s for s in chats if "evalkit.scorer" in ancestors(s["span_id"]))
    a = json.loads(agent_chat["attributes"])
    assert agent_chat["kind"] == "CLIENT" and agent_chat["provider"] == "mock" and agent_chat["request_model"] == "echo"
    assert a["gen_ai.operation.name"] == "chat" and "vpn keeps dropping" in a["gen_ai.input.messages"]
    assert agent_chat["input_tokens"] is not None and agent_chat["output_tokens"] is not None
    assert judge_chat["name"] == "chat judge-pass"
    # Judge verdicts are gen_ai.evaluation.result events on the case span.
    verdicts = {e["attributes"]["gen_ai.evaluation.name"]: e["attributes"] for e in root.events
                if e["name"] == "gen_ai.evaluation.result"}
    assert set(verdicts) == {"no_error_spans", "span_tool_calls", "llm_call_count", "correctness"}
    assert verdicts["correctness"]["gen_ai.evaluation.score.label"] == "pass"
    assert build_tree([]) == []


def test_span_scorers_and_sql_join_of_scores_to_spans() -> None:
    res = _run()
    wide = {r["case_id"]: r for r in res.wide().to_dicts()}
    assert wide["vpn"]["no_error_spans"] == 1.0 and wide["boom"]["no_error_spans"] == 0.0
    assert wide["vpn"]["span_tool_calls"] == 1.0 and wide["vpn"]["llm_call_count"] == 1.0
    with open_store(res.store_path, read_only=True) as st:
        rows = st.query(
            """
            SELECT sc.case_id, sc.name AS scorer, sc.passed, s.name AS span, s.error_type, s.status_message
            FROM scores sc
            JOIN case_results cr USING (run_id, case_id, repeat)
            JOIN spans s ON s.trace_id = cr.trace_id
            WHERE sc.run_id = ? AND sc.passed = false AND s.status_code = 'ERROR'
            ORDER BY sc.case_id, sc.name, s.name
            """,
            [res.run_id],
        )
    assert rows and {r["case_id"] for r in rows} == {"boom"}
    failing = next(r for r in rows if r["span"] == "execute_tool explode")
    assert failing["scorer"] == "no_error_spans" and failing["error_type"] == "RuntimeError"
    assert "tool failed: boom" in failing["status_message"]


def test_content_capture_off_keeps_structure_but_no_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_TRACE_CONTENT", "0")
    res = _run()
    with open_store(res.store_path, read_only=True) as st:
        rows = st.query("SELECT name, attributes FROM spans WHERE run_id = ?", [res.run_id])
    text = " ".join(r["attributes"] or "" for r in rows)
    assert "execute_tool lookup" in {r["name"] for r in rows}
    assert "gen_ai.input.messages" not in text and "gen_ai.tool.call.arguments" not in text
    assert "vpn keeps dropping" not in text


def test_demo_suite_every_case_traced_with_tool_calls() -> None:
    res = evalkit.evaluate(REPO / "datasets" / "demo" / "suite.yaml", cache=False)
    with open_store(res.store_path, read_only=True) as st:
        missing = st.query("SELECT count(*) AS n FROM case_results WHERE run_id = ? AND trace_id IS NULL", [res.run_id])
        per_case = st.query(
            "SELECT cr.case_id, count(s.span_id) FILTER (WHERE s.operation = 'execute_tool') AS tools,"
            " count(s.span_id) FILTER (WHERE s.name = 'evalkit.case') AS roots"
            " FROM case_results cr LEFT JOIN spans s ON s.trace_id = cr.trace_id WHERE cr.run_id = ? GROUP BY 1",
            [res.run_id],
        )
    assert missing[0]["n"] == 0 and len(per_case) == 29
    assert all(r["roots"] == 1 for r in per_case)
    assert sum(r["tools"] for r in per_case) >= 29


def test_tracing_off_records_no_spans_and_trace_decorator_still_records_tool_calls() -> None:
    res = evalkit.evaluate(_cases()[:1], target=agent, cache=False, scorers=["tool_calls", "no_error_spans"],
                           tracing=False)
    with open_store(res.store_path, read_only=True) as st:
        n = st.query("SELECT count(*) AS n FROM spans WHERE run_id = ?", [res.run_id])[0]["n"]
        tc = st.query("SELECT tool_calls FROM case_results WHERE run_id = ?", [res.run_id])[0]["tool_calls"]
    assert n == 0 and "lookup" in tc
    scores = {r["name"]: r for r in res.scores.to_dicts()}
    assert scores["tool_calls"]["passed"] is True
    assert scores["no_error_spans"]["outcome"] == "not_applicable"  # untraced: not an error, not a fail
