"""JUnit XML and Markdown outputs."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from evalkit.aggregate import summarise
from evalkit.ci_outputs import (
    render_junit,
    render_markdown,
    write_github_summary,
    write_junit,
    write_markdown,
)
from evalkit.gate import GateResult, evaluate_gate, parse_thresholds
from evalkit.schema import CaseResult, RunSummary, Score
from evalkit.store import reads
from evalkit.store.db import Store

from . import _sim

XSD = Path(__file__).resolve().parents[1] / "data" / "junit.xsd"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _results() -> list[CaseResult]:
    def res(case_id: str, scores: list[Score], **kw: object) -> CaseResult:
        return CaseResult(
            run_id="run-1",
            case_id=case_id,
            scores=scores,
            started_at=T0,
            ended_at=T0,
            latency_ms=250.0,
            **kw,  # type: ignore[arg-type]
        )

    return [
        res(
            "ok-1",
            [Score(name="exact", value=True, passed=True), Score(name="judge", value=5.0, passed=True)],
            trace_id="t-ok-1",
        ),
        res(
            "bad-1",
            [
                Score(name="exact", value=False, passed=False, rationale="expected 'Paris' | got 'Lyon'"),
                Score(name="judge", value=2.0, passed=False, rationale="wrong city\nsecond line <b>&"),
            ],
            trace_id="trace-bad-1",
        ),
        res(
            "judge-down",
            [
                Score(name="exact", value=True, passed=True),
                Score.failure("judge", "provider", "judge: HTTP 500 from provider"),
            ],
        ),
        res("target-down", [], status="error", error_kind="target_exception",
            error="target raised TimeoutError\x00\x07"),
        res("unscored", [Score(name="exact", value=True, passed=True),
                         Score.not_applicable("judge", "the case has no reference answer")]),
    ]


def _stored(results: list[CaseResult]) -> Store:
    """The results in an in-memory store, as a run writes them."""
    store = Store(":memory:")
    store.create_run({"run_id": "run-1", "suite": "geo", "status": "completed", "started_at": T0})
    store.write_results(results)
    return store


def _summary_and_gate(results: list[CaseResult]) -> tuple[RunSummary, GateResult, pl.DataFrame]:
    store = _stored(results)
    scores = reads.score_frame(store, "run-1")
    summary = summarise("run-1", "geo", reads.case_frame(store, "run-1"), scores, planned=len(results),
                        started_at=T0)
    base = scores.with_columns(pl.lit(True).alias("passed"), pl.lit(1.0).alias("value"), pl.lit("ok").alias("outcome"))
    gate = evaluate_gate(
        summary,
        scores,
        parse_thresholds(["exact/pass_rate>=0.9", "judge/mean>=3"]),
        base,
        fail_on_regression=True,
        max_error_rate=0.5,
        n_resamples=200,
    )
    return summary, gate, scores


def _check_structure(root: ET.Element) -> dict[str, int]:
    """The JUnit rules CI parsers rely on, checked without a schema library."""
    assert root.tag == "testsuites"
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in root:
        assert suite.tag == "testsuite" and suite.get("name")
        cases = suite.findall("testcase")
        kids = [c.tag for c in suite]
        assert kids == sorted(
            kids, key=lambda t: ["properties", "testcase", "system-out", "system-err"].index(t)
        )
        counted = {
            "tests": len(cases),
            "failures": sum(c.find("failure") is not None for c in cases),
            "errors": sum(c.find("error") is not None for c in cases),
            "skipped": sum(c.find("skipped") is not None for c in cases),
        }
        for key, n in counted.items():
            assert int(suite.get(key, "-1")) == n, (suite.get("name"), key)
            totals[key] += n
        for c in cases:
            assert c.get("name") and c.get("classname")
            assert float(c.get("time", "0")) >= 0
            assert sum(c.find(t) is not None for t in ("failure", "error", "skipped")) <= 1
    for key, n in totals.items():
        assert int(root.get(key, "-1")) == n
    return totals


def test_junit_one_testcase_per_case_and_scorer() -> None:
    results = _results()
    summary, gate, _ = _summary_and_gate(results)
    xml = render_junit(summary, gate, results)
    root = ET.fromstring(xml.encode())
    totals = _check_structure(root)
    suites = {s.get("name"): s for s in root}
    assert list(suites) == ["geo/exact", "geo/judge", "geo/gate"]
    exact, judge = suites["geo/exact"], suites["geo/judge"]
    assert int(exact.get("tests")) == 5 and int(exact.get("failures")) == 1 and int(exact.get("errors")) == 1  # type: ignore[arg-type]
    # judge: bad-1 fails, judge-down and target-down are errors, unscored does not apply (skipped)
    assert (judge.get("tests"), judge.get("failures"), judge.get("errors"), judge.get("skipped")) == (
        "5",
        "1",
        "2",
        "1",
    )
    assert {c.get("classname") for c in judge.iter("testcase")} == {"geo/judge"}
    failure = judge.find("testcase[@name='bad-1']/failure")
    assert failure is not None and failure.get("message") == "wrong city"
    assert "second line <b>&" in (failure.text or "") and "trace_id: trace-bad-1" in (failure.text or "")
    err = judge.find("testcase[@name='judge-down']/error")
    assert err is not None and err.get("type") == "provider" and "HTTP 500" in (err.get("message") or "")
    down = exact.find("testcase[@name='target-down']/error")
    assert down is not None and down.get("type") == "target_exception" and "TimeoutError" in (down.get("message") or "")
    skipped = judge.find("testcase[@name='unscored']/skipped")
    assert skipped is not None and skipped.get("message") == "not applicable: the case has no reference answer"
    gate_suite = suites["geo/gate"]
    assert gate_suite.find("testcase[@name='judge/mean>=3']") is not None
    assert gate_suite.find("testcase[@name='no regression: exact/pass_rate']") is not None
    assert totals["tests"] == 5 + 5 + len(list(gate_suite.iter("testcase")))
    assert exact.get("timestamp") == "2026-05-01T12:00:00"


def test_junit_reads_the_stored_outcomes_the_same_from_every_case_shape() -> None:
    results = _results()
    summary, _, scores = _summary_and_gate(results)
    stored = reads.cases_with_scores(_stored(results), "run-1")

    def outcomes(cases: object) -> dict[tuple[str | None, str | None], tuple[str, str | None]]:
        root = ET.fromstring(render_junit(summary, None, cases).encode())  # type: ignore[arg-type]
        out = {}
        for suite in root:
            for tc in suite.iter("testcase"):
                kid = next((k for k in tc if k.tag in ("failure", "error", "skipped")), None)
                out[(suite.get("name"), tc.get("name"))] = ("passed", None) if kid is None else (
                    kid.tag, kid.get("type") or kid.get("message"))
        return out

    from_results = outcomes(results)
    assert outcomes(stored) == from_results
    assert from_results[("geo/judge", "unscored")] == ("skipped", "not applicable: the case has no reference answer")
    assert from_results[("geo/judge", "judge-down")] == ("error", "provider")
    # a flat score frame has no case-level rows: every scored testcase reads the same
    flat = outcomes(scores)
    assert {k: v for k, v in flat.items() if k[1] != "target-down"} == \
        {k: v for k, v in from_results.items() if k[1] != "target-down"}


def test_junit_skips_cancelled_cases_and_types_untyped_legacy_rows() -> None:
    cancelled = CaseResult(run_id="run-1", case_id="late", status="cancelled", error_kind="cancelled",
                           error="cancelled: not started, run interrupted", started_at=T0, ended_at=T0,
                           scores=[Score.failure("exact", "cancelled", "not scored: run interrupted")])
    legacy = {"case_id": "old", "repeat": 0, "status": "ok", "scores": [
        {"name": "exact", "value": None, "passed": None, "error": "judge_output_invalid: not JSON"},
        {"name": "ref", "value": None, "passed": None, "error": "not_scored: no expected answer"}]}
    summary = RunSummary(run_id="run-1", suite="geo", cases=2, errors=1, error_rate=1.0, latency_p50_ms=None,
                         latency_p95_ms=None)
    root = ET.fromstring(render_junit(summary, None, [cancelled, legacy]).encode())
    _check_structure(root)
    by = {(s.get("name"), tc.get("name")): tc for s in root for tc in s.iter("testcase")}
    late = by[("geo/exact", "late")].find("skipped")
    assert late is not None and (late.get("message") or "").startswith("cancelled:")
    err = by[("geo/exact", "old")].find("error")
    assert err is not None and err.get("type") == "judge_output_invalid"
    na = by[("geo/ref", "old")].find("skipped")
    assert na is not None and na.get("message") == "not applicable: no expected answer"


def test_junit_and_markdown_for_an_incomplete_run() -> None:
    results = _results()
    summary, _, scores = _summary_and_gate(results)
    short = summary.model_copy(update={"planned": 7, "missing": 2})
    gate = evaluate_gate(short, scores, [], max_error_rate=0.5, n_resamples=50)
    assert gate.status == "incomplete" and not gate.passed
    root = ET.fromstring(render_junit(short, gate, results).encode())
    _check_structure(root)
    complete = root.find("testsuite[@name='geo/gate']/testcase[@name='run complete']/error")
    assert complete is not None and complete.get("type") == "Incomplete"
    assert "missing 2" in (complete.text or "")
    md = render_markdown(short, gate, results)
    assert md.startswith("## ⛔ evalkit run INCOMPLETE")
    assert "Ledger: 7 planned · 3 completed · 2 errored · 0 cancelled · **2 missing**" in md
    unknown = gate.model_copy(update={"status": "paused"})  # a status this writer does not know: never a pass
    assert not render_markdown(short, unknown).startswith("## ✅")
    gate_tc = ET.fromstring(render_junit(short, unknown, None).encode()).find(
        "testsuite[@name='geo/gate']/testcase[@name='run complete']/error")
    assert gate_tc is not None and gate_tc.get("type") == "paused"


def test_junit_validates_against_the_junit_schema(tmp_path: Path) -> None:
    xmlschema = pytest.importorskip("xmlschema")
    results = _results()
    summary, gate, scores = _summary_and_gate(results)
    schema = xmlschema.XMLSchema(str(XSD))
    for cases in (results, scores, None):
        path = write_junit(tmp_path / "out" / "junit.xml", summary, gate, cases)
        schema.validate(str(path))
    bad = ET.fromstring(render_junit(summary, gate, results).encode())
    bad[0].set("tests", "many")
    assert not schema.is_valid(ET.tostring(bad, encoding="unicode"))


def test_junit_names_repeats_and_accepts_a_flat_score_table() -> None:
    scores = _sim.judge(np.array([True, False]), flip=0.0, seed=0, repeats=2)
    summary = _sim.summarise(scores, n_resamples=100)
    root = ET.fromstring(render_junit(summary, None, scores).encode())
    names = [c.get("name") for c in root.iter("testcase")]
    assert names == [
        "case-0000 [repeat 0]",
        "case-0001 [repeat 0]",
        "case-0000 [repeat 1]",
        "case-0001 [repeat 1]",
    ]
    assert _check_structure(root)["failures"] == 2


def test_markdown_has_verdict_tables_deltas_and_failing_cases(tmp_path: Path) -> None:
    results = _results()
    summary, gate, _ = _summary_and_gate(results)
    md = render_markdown(summary, gate, results)
    lines = md.splitlines()
    assert lines[0].startswith("## ❌ evalkit gate FAILED")
    header = lines.index(next(line for line in lines if line.startswith("| scorer | mean | 95 % CI")))
    assert "| scored | n/a | errors |" in lines[header]
    assert set(lines[header + 1].replace("|", "").split()) <= {"---", "---:"}
    assert all(line.count("|") == lines[header].count("|") for line in lines[header : header + 4])
    judge_row = next(line for line in lines[header:] if line.startswith("| `judge` |"))
    assert judge_row.endswith("| 2 | 1 | 1 |")  # scored 2, n/a 1 (not an error), errors 1 (the provider)
    assert "Ledger: 5 planned · 3 completed · 2 errored · 0 cancelled · 0 missing" in md
    assert "1 score(s) not applicable" in md
    assert "### Thresholds" in md and "### Compared with" in md and "### Top failing cases" in md
    assert "pass → fail: `bad-1`" in md
    assert "expected 'Paris' \\| got 'Lyon'" in md  # pipes in cells are escaped
    assert "`trace-bad-1`" in md
    assert "judge (error: provider)" in md and "`unscored`" not in md  # n/a is not a failing case
    assert "1 case run(s) errored before scoring (the target failed)." in md
    assert write_markdown(tmp_path / "r.md", summary, gate, results).read_text() == md


def test_markdown_for_an_outage_and_without_a_gate() -> None:
    scores = _sim.judge(np.ones(20, dtype=bool), flip=0.0, seed=0, error_rate=1.0)
    summary = _sim.summarise(scores)
    gate = evaluate_gate(summary, scores, [], n_resamples=50)
    assert render_markdown(summary, gate, scores).startswith("## ⚠️ evalkit infrastructure errors")
    assert "| scorer |" in render_markdown(summary, None)


def test_github_step_summary_appends_only_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "step_summary.md"
    target.write_text("earlier step\n")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert write_github_summary("## hi") is None
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    assert write_github_summary("## hi") == target
    assert write_github_summary("## again\n", env={"GITHUB_STEP_SUMMARY": str(target)}) == target
    assert target.read_text() == "earlier step\n## hi\n\n## again\n\n"


def test_terminal_summary_shows_not_applicable_the_ledger_and_an_incomplete_gate() -> None:
    from rich.console import Console

    from evalkit.cli.summary_view import gate_lines, summary_table

    results = _results()
    summary, gate, scores = _summary_and_gate(results)
    short = summary.model_copy(update={"planned": 7, "missing": 2})
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(summary_table(short))
    text = console.export_text()

    def cells(first: str) -> list[str]:
        line = next(line for line in text.splitlines() if line.strip("│┃ ").startswith(first))
        return [c.strip() for c in line.strip("│┃").replace("┃", "│").split("│")]

    assert cells("scorer")[-3:] == ["scored", "n/a", "errors"]
    assert cells("judge")[-3:] == ["2", "1", "1"]
    assert "planned 7 · completed 3 · errored 2 · cancelled 0 · missing 2" in text
    incomplete = evaluate_gate(short, scores, [], max_error_rate=0.5, n_resamples=50)
    assert gate_lines(incomplete)[-1].startswith("[bold red]gate incomplete[/bold red]")
    assert gate_lines(gate)[-1].startswith("[bold red]gate failed")
    assert gate_lines(gate.model_copy(update={"status": "paused", "passed": False}))[-1].startswith("[bold red]")
