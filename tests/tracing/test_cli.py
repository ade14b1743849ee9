"""``evalkit traces`` / ``trace`` / ``sql`` on a traced run."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

import evalkit
from evalkit.cli import tracing_cmds
from evalkit.cli.show import show
from evalkit.errors import UserError
from evalkit.schema import Case, ToolCall
from tests.tracing.agent_fixture import agent


@pytest.fixture
def app() -> typer.Typer:
    a = typer.Typer()
    tracing_cmds.register(a)
    return a


@pytest.fixture
def run_id() -> str:
    cases = [Case(id="vpn", input="vpn down", expected="reconnect", expected_tool_calls=[ToolCall(name="lookup")]),
             Case(id="boom", input="boom now", expected="x", expected_tool_calls=[ToolCall(name="lookup")])]
    res = evalkit.evaluate(cases, target=agent, cache=False, mlflow=False,
                           scorers=["no_error_spans", {"correctness": {"model": "mock/judge-fail"}}])
    return res.run_id


def _outcome_run() -> str:
    """``ref`` fails exact_match and its ``picky`` score errors; ``noref`` has no reference: exact_match n/a."""
    def picky(case: Case, output: object) -> bool:
        if case.id == "ref":
            raise ValueError("picky scorer bug")
        return True

    cases = [Case(id="ref", input="vpn down", expected="nope"), Case(id="noref", input="printer jam")]
    res = evalkit.evaluate(cases, target=agent, cache=False, mlflow=False, max_error_rate=1.0,
                           scorers=["exact_match", picky])
    return res.run_id


def test_traces_lists_failed_cases_first_with_counts(app: typer.Typer, run_id: str) -> None:
    out = CliRunner().invoke(app, ["traces", run_id, "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["cases"]
    assert [r["case_id"] for r in rows][:1] == ["boom"] or rows[0]["failed"]
    boom = next(r for r in rows if r["case_id"] == "boom")
    assert boom["failed"] and boom["error_spans"] >= 1 and boom["tool_calls"] == 2 and boom["llm_calls"] == 2
    assert boom["input_tokens"] > 0 and "no_error_spans" in boom["failed_scores"]
    table = CliRunner().invoke(app, ["traces", run_id[:12], "--failed"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "boom" in table.output and "RuntimeError" in table.output


def test_trace_prints_the_tree_with_tools_models_errors_and_verdicts(app: typer.Typer, run_id: str) -> None:
    out = CliRunner().invoke(app, ["trace", run_id, "boom"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    text = out.output
    for piece in ("evalkit.case", "target", "invoke_agent agent", "agent.plan", "execute_tool lookup",
                  "execute_tool explode", "tool failed: boom", "chat echo", "scorer correctness", "chat judge-fail",
                  "✗ correctness = 1 (fail)", "scores"):
        assert piece in text, piece
    assert text.index("evalkit.case") < text.index("execute_tool lookup")
    assert "input boom now" in text and "expected x" in text and text.index("input boom now") < text.index("evalkit.case")
    data = json.loads(CliRunner().invoke(app, ["trace", run_id, "boom", "--json"]).output)
    assert data["case"]["input"] == "boom now" and data["case"]["expected"] == "x"
    depth = {s["name"]: s["depth"] for s in data["spans"]}
    assert depth["evalkit.case"] == 0 and depth["execute_tool lookup"] > depth["invoke_agent agent"] > 0
    missing = CliRunner().invoke(app, ["trace", run_id, "nope"])
    assert isinstance(missing.exception, UserError)


def test_sql_table_json_csv_and_read_only(app: typer.Typer, run_id: str) -> None:
    q = ("SELECT sc.case_id, sc.name, sc.passed, count(s.span_id) AS spans FROM scores sc"
         " JOIN case_results cr USING (run_id, case_id, repeat) JOIN spans s ON s.trace_id = cr.trace_id"
         f" WHERE sc.run_id = '{run_id}' GROUP BY ALL ORDER BY ALL")
    as_json = CliRunner().invoke(app, ["sql", q, "--json"])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.output)
    assert {(r["case_id"], r["name"]) for r in rows} >= {("boom", "no_error_spans"), ("vpn", "correctness")}
    assert all(r["spans"] > 3 for r in rows)
    as_csv = CliRunner().invoke(app, ["sql", q, "--csv"]).output.splitlines()
    assert as_csv[0] == "case_id,name,passed,spans" and len(as_csv) == len(rows) + 1
    table = CliRunner().invoke(app, ["sql", "SELECT count(*) AS n FROM spans"])
    assert table.exit_code == 0 and "1 row" in table.output
    write = CliRunner().invoke(app, ["sql", "DELETE FROM spans"])
    assert isinstance(write.exception, UserError) and "read-only" in str(write.exception)


def test_traces_failed_follows_outcomes_and_not_applicable_is_no_failure(app: typer.Typer) -> None:
    run = _outcome_run()
    out = CliRunner().invoke(app, ["traces", run, "--failed", "--json"])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.output)["cases"]  # noref's exact_match did not apply: not a failure
    assert row["case_id"] == "ref" and row["failed"] and row["outcome"] == "errored"
    assert row["error_kind"] == "scorer_exception" and row["failed_scores"] == "exact_match, picky"
    every = {r["case_id"]: r for r in json.loads(CliRunner().invoke(app, ["traces", run, "--json"]).output)["cases"]}
    assert every["noref"]["outcome"] == "completed" and not every["noref"]["failed"]
    assert every["noref"]["failed_scores"] is None
    table = CliRunner().invoke(app, ["traces", run], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "error (scorer_exception)" in table.output


def test_show_json_carries_outcomes_and_error_kinds() -> None:
    run = _outcome_run()
    a = typer.Typer()
    a.command("show")(show)
    a.command("noop")(lambda: None)  # two commands: `show` stays a subcommand
    out = CliRunner().invoke(a, ["show", run, "--json"])
    assert out.exit_code == 0, out.output
    cases = {c["case_id"]: c for c in json.loads(out.output)["cases"]}
    assert list(cases) == ["ref", "noref"]  # failures first
    ref, noref = cases["ref"], cases["noref"]
    assert (ref["outcome"], ref["failed"], noref["outcome"], noref["failed"]) == ("errored", True, "completed", False)
    scores = {(c, s["name"]): s for c, case in cases.items() for s in case["scores"]}
    assert (scores["ref", "picky"]["outcome"], scores["ref", "picky"]["error_kind"]) == ("error", "scorer_exception")
    assert (scores["ref", "exact_match"]["outcome"], scores["ref", "exact_match"]["passed"]) == ("ok", False)
    na = scores["noref", "exact_match"]
    assert (na["outcome"], na["error_kind"], na["value"], na["passed"]) == ("not_applicable", None, None, None)
    failed = json.loads(CliRunner().invoke(a, ["show", run, "--failed", "--json"]).output)["cases"]
    assert [c["case_id"] for c in failed] == ["ref"]
    table = CliRunner().invoke(a, ["show", run], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "n/a" in table.output and "error (scorer_exception)" in table.output and "picky scorer bug" in table.output
