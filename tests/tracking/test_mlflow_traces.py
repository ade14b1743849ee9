"""Per-case MLflow traces (one per case × repeat, scores as assessments) and the human-label reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalkit import evaluate
from evalkit.errors import UserError
from evalkit.schema import Case, Score
from evalkit.store.db import open_store
from evalkit.store.reads import cases_with_scores
from evalkit.targets.python_callable import from_callable
from evalkit.tracking.human_feedback import read_human_labels
from evalkit.tracking.mlflow_traces import TraceMode, log_case_traces, parse_mode, select_cases
from evalkit.tracking.uri import client
from tests.conftest import REPO
from tests.tracking._cli import cli, cli_json

DEMO = REPO / "datasets" / "demo" / "suite.yaml"
SECRET = "sk-" + "Zq7Xw3Vb9Nm2Lk5Jh8Gf"
BEARER = "Bearer " + "tok3nV4lu3ForTheTest99"
N = 6


def _store(ws: Path) -> Path:
    return ws / ".evalkit" / "evalkit.duckdb"


def _uri(ws: Path) -> str:
    return f"sqlite:///{ws / '.evalkit' / 'mlflow.db'}"


def _run(ws: Path, *, mode: str | None = None, suite: str = "tr") -> Any:
    """Six cases: every third answer wrong, case c1's judge call fails, case c0's input holds secrets."""
    cases = [{"id": f"c{i}", "input": f"question {i}", "expected": f"answer {i}"} for i in range(N)]
    cases[0]["input"] = f"question 0 with key {SECRET} and header Authorization: {BEARER}"
    meta = {"judge": "helpful@2", "model": "mock/judge"}

    def answer(text: str) -> str:
        i = int(text.split()[1])
        return "no idea" if i % 3 == 0 else f"answer {i}"

    def helpful(case: Case, output: Any) -> Score:
        if case.id == "c1":
            return Score.failure("helpful", "provider", "provider_error: HTTP 503 from mock/judge", metadata=meta)
        ok = output == case.expected
        return Score(name="helpful", value=4.0 if ok else 2.0, passed=ok, rationale=f"judged {case.id}", metadata=meta)

    res = evaluate(cases, target=from_callable(answer), scorers=["exact_match", helpful], suite_name=suite,
                   store=_store(ws), tracing=False, mlflow=True, mlflow_traces=mode, max_error_rate=1.0)
    res.wait_traces()
    return res


def _traces(uri: str, experiment: str, mlflow_run_id: str) -> list[Any]:
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    return list(c.search_traces(locations=[exp.experiment_id], run_id=mlflow_run_id, max_results=500))


def _by_case(traces: list[Any]) -> dict[str, Any]:
    return {t.info.tags["evalkit.case_id"]: t for t in traces}


def test_one_trace_per_case_with_assessments(tracked: Path) -> None:
    res = _run(tracked)
    assert res.trace_job is not None and res.trace_job.result is not None
    assert (res.trace_job.result.logged, res.trace_job.result.failed) == (N, 0)
    traces = _traces(_uri(tracked), "tr", res.mlflow_run_id)
    by_case = _by_case(traces)
    assert len(traces) == N and sorted(by_case) == [f"c{i}" for i in range(N)]
    t3 = by_case["c3"]
    assert t3.info.tags["evalkit.run_id"] == res.run_id and t3.info.tags["evalkit.repeat"] == "0"
    assert t3.info.trace_metadata["mlflow.sourceRun"] == res.mlflow_run_id
    assert t3.data.spans[0].inputs == {"input": "question 3"} and t3.data.spans[0].outputs == "no idea"
    a3 = {a.name: a for a in t3.info.assessments}
    assert set(a3) == {"exact_match", "helpful", "expected_response"}
    assert a3["exact_match"].value is False and a3["exact_match"].source.source_type == "CODE"
    assert a3["helpful"].value == 2.0 and a3["helpful"].rationale == "judged c3"
    assert (a3["helpful"].source.source_type, a3["helpful"].source.source_id) == ("LLM_JUDGE", "helpful@2")
    assert a3["expected_response"].expectation.value == "answer 3"
    a1 = {a.name: a for a in by_case["c1"].info.assessments}  # the judge's provider error is an error, not a 0
    assert a1["helpful"].value is None and a1["helpful"].error is not None
    assert a1["helpful"].error.error_code == "PROVIDER" and "503" in a1["helpful"].error.error_message
    assert a1["exact_match"].value is True
    # the run is listed among MLflow's evaluation runs; the public fluent search reads the same traces
    assert client(_uri(tracked)).get_run(res.mlflow_run_id).data.tags["mlflow.runType"] == "genai_evaluate"
    import mlflow

    mlflow.set_tracking_uri(_uri(tracked))
    try:
        frame = mlflow.search_traces(locations=[traces[0].info.experiment_id], run_id=res.mlflow_run_id)
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    assert len(frame) == N and {"request", "response", "assessments"} <= set(frame.columns)


def test_logging_twice_adds_nothing_and_secrets_stay_out(tracked: Path) -> None:
    res = _run(tracked)
    with open_store(_store(tracked)) as st:
        again = log_case_traces(st, res.run_id, mode="all")
    assert (again.logged, again.skipped, again.failed) == (0, N, 0)
    traces = _traces(_uri(tracked), "tr", res.mlflow_run_id)
    assert len(traces) == N
    text = json.dumps([t.to_dict() for t in traces], default=str)
    assert "question 0 with key" in text  # the case is there, its secrets are not
    assert SECRET not in text and BEARER.split()[1] not in text
    raw = (tracked / ".evalkit" / "mlflow.db").read_bytes()
    assert SECRET.encode() not in raw and BEARER.split()[1].encode() not in raw


def test_modes_select_the_right_cases(tracked: Path) -> None:
    res = _run(tracked, mode="none")
    assert res.trace_job is None and _traces(_uri(tracked), "tr", res.mlflow_run_id) == []
    with open_store(_store(tracked)) as st:
        failed = {c["case_id"] for c in cases_with_scores(st, res.run_id) if c["failed"]}
        sample = log_case_traces(st, res.run_id, mode="sample:2")
        assert sample.logged == 2
        sampled = set(_by_case(_traces(_uri(tracked), "tr", res.mlflow_run_id)))
        assert len(sampled) == 2
        log_case_traces(st, res.run_id, mode="failed")
    assert failed == {"c0", "c1", "c3"}  # wrong answers (c0, c3) and the judge error (c1)
    assert set(_by_case(_traces(_uri(tracked), "tr", res.mlflow_run_id))) == sampled | failed


def test_mode_parsing_and_selection() -> None:
    assert parse_mode("all") == TraceMode("all") and parse_mode(" Sample:5 ") == TraceMode("sample", 5)
    assert str(parse_mode("all:1000")) == "all:1000"
    for bad in ("sample", "some", "none:3", "all:0", "failed:-1"):
        with pytest.raises(UserError):
            parse_mode(bad)
    cases = [{"case_id": f"c{i}", "repeat": 0, "failed": i % 2 == 0} for i in range(10)]
    capped = select_cases(cases, TraceMode("all", 7), "r")
    assert len(capped) == 7 and all(c["failed"] for c in capped[:5])  # failures first
    assert select_cases(cases, TraceMode("sample", 3), "r") == select_cases(cases, TraceMode("sample", 3), "r")
    assert len(select_cases(cases, TraceMode("failed"), "r")) == 5 and select_cases(cases, TraceMode("none"), "r") == []


def test_a_bad_mode_is_a_user_error(tracked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = cli("run", str(DEMO), "--mlflow-traces", "sometimes")
    assert code == 2 and "--mlflow-traces" in out and "sometimes" in out and "\n" not in out.strip()
    monkeypatch.setenv("EVALKIT_MLFLOW_TRACES", "sample")
    with pytest.raises(UserError, match="EVALKIT_MLFLOW_TRACES"):
        evaluate(["q"], target=lambda text: text, scorers=["exact_match"], store=":memory:", mlflow=False)


def test_human_labels_map_back_to_cases(tracked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    from mlflow.entities import AssessmentSource

    res = _run(tracked)
    target = _by_case(_traces(_uri(tracked), "tr", res.mlflow_run_id))["c4"]
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _uri(tracked))
    mlflow.log_feedback(trace_id=target.info.trace_id, name="helpful", value=5, rationale="spot on",
                        source=AssessmentSource("HUMAN", "alice@example.com"))
    labels = read_human_labels(_uri(tracked), experiments=["tr"], run_id=res.run_id)
    assert len(labels) == 1  # evalkit's own LLM_JUDGE and CODE assessments are not human labels
    (lb,) = labels
    assert (lb.run_id, lb.case_id, lb.repeat, lb.name, lb.value) == (res.run_id, "c4", 0, "helpful", 5)
    assert (lb.rationale, lb.annotator, lb.kind) == ("spot on", "alice@example.com", "feedback")
    assert lb.time is not None and lb.mlflow_trace_id == target.info.trace_id
    assert read_human_labels(_uri(tracked), experiments=["tr"], name="other") == []


@pytest.mark.mlflow_server
def test_cli_run_logs_traces_to_a_server(workspace: Path, mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("EVALKIT_TEAM", "traces")
    out = cli_json("run", str(DEMO), "--no-trace", "--limit", "4", "--json")
    mid = out["mlflow_run_id"]
    traces = _traces(mlflow_server, "traces/it-support-demo", mid)
    assert len(traces) == 4 and len(_by_case(traces)) == 4
    for t in traces:
        names = {a.name: a for a in t.info.assessments}
        assert {"key_facts", "tool_calls", "concise", "latency"} <= set(names)
        assert all(names[n].source.source_type == "CODE" for n in ("key_facts", "tool_calls"))
        assert t.info.tags["evalkit.run_id"] == out["run_id"] and t.data.spans
    with open_store(_store(workspace)) as st:  # `sync --traces` finds them all there
        assert log_case_traces(st, out["run_id"], mode="all", tracking_uri=mlflow_server, team="traces").logged == 0
    report = Path(client(mlflow_server).download_artifacts(mid, "report.html", str(workspace / "dl")))
    html = report.read_text(encoding="utf-8")
    assert "<html" in html.lower() and out["run_id"] in html


@pytest.mark.mlflow_server
def test_sync_traces_on_a_server(workspace: Path, mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_MLFLOW_TRACES", "none")
    res = evaluate([{"id": f"s{i}", "input": f"q{i}", "expected": f"q{i}"} for i in range(3)],
                   target=lambda text: text, scorers=["exact_match"], suite_name="synced", store=_store(workspace),
                   tracing=False, mlflow=False)
    for _ in range(2):  # twice: no duplicates
        report = cli_json("sync", "--traces", "--traces-mode", "all", "--tracking-uri", mlflow_server, "--team",
                          "sync-traces", "--json")
        assert report["failed"] == {}
    assert report["traces"] == {res.run_id: 0}
    mid = report["logged"][res.run_id]
    assert len(_traces(mlflow_server, "sync-traces/synced", mid)) == 3
