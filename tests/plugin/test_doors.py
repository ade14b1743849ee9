"""One way through: the same suite run by the CLI, by pytest and by ``evaluate()`` gives the same run."""

from __future__ import annotations

import json

import pytest

import evalkit
from tests.conftest import evalkit_cli
from tests.plugin.conftest import Project

AGENT = '''
def answer(question: str) -> str:
    if "boom" in question:
        raise RuntimeError("agent exploded")
    return question.upper() if question.startswith("good") else "no idea"
'''
CASES = [
    {"id": "good1", "input": "good one", "expected": "GOOD ONE"},
    {"id": "good2", "input": "good two", "expected": "GOOD TWO"},
    {"id": "bad", "input": "bad one", "expected": "BAD ONE"},
    {"id": "noref", "input": "good three"},
    {"id": "boom", "input": "boom"},
]
SUITE = """
name: doors
dataset: cases.jsonl
target: doors_agent:answer  # unique: the in-process evaluate() must not meet another test's agent
scorers: [exact_match, {contains: {values: ["GOOD"]}}]
thresholds: ["exact_match/pass_rate >= 0.7"]
defaults:
  repeats: 2
  max_error_rate: 0.25
"""
TEST = '''
from evalkit.testing import cases


@cases("suite.yaml")
def test_doors(case, evaluate):
    evaluate(case)  # the suite's target and scorers
'''
SCORES = ("SELECT case_id, repeat, name, value, passed, outcome, error_kind FROM scores WHERE run_id = ?"
          " ORDER BY case_id, repeat, name")
CASE_ROWS = "SELECT case_id, repeat, status, outcome, error_kind FROM case_results WHERE run_id = ? ORDER BY 1, 2"


def test_cli_pytest_and_evaluate_agree_on_cases_scores_and_verdict(project: Project,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    project.write("doors_agent.py", AGENT)
    project.write("cases.jsonl", "".join(json.dumps(c) + "\n" for c in CASES))
    project.write("suite.yaml", SUITE)
    project.write("test_doors.py", TEST)
    env = project.env()

    cli = evalkit_cli(project.path, "run", "suite.yaml", "--no-mlflow", "--json", env=env)
    cli_out = json.loads(cli.stdout)
    res = project.pytest()
    ((pytest_run,),) = project.query("SELECT run_id FROM runs WHERE config->>'door' = 'pytest'")

    monkeypatch.chdir(project.path)
    monkeypatch.setenv("EVALKIT_STORE", str(project.store))
    api = evalkit.evaluate("suite.yaml", mlflow=False)

    verdicts = {cli_out["gate"]["status"], api.gate.status}
    assert verdicts == {"failed"}, verdicts  # 4 of 6 < 0.7: the suite's threshold fails through every door
    assert cli.returncode == api.exit_code == 1 and res.ret == 1, res.out
    assert "evalkit gate FAILED (failed): exact_match/pass_rate>=0.7: FAIL (0.6667)" in res.out
    runs = {"cli": cli_out["run_id"], "pytest": pytest_run, "api": api.run_id}
    scores = {door: project.query(SCORES, [rid]) for door, rid in runs.items()}
    cases = {door: project.query(CASE_ROWS, [rid]) for door, rid in runs.items()}
    assert scores["cli"] == scores["pytest"] == scores["api"]
    assert cases["cli"] == cases["pytest"] == cases["api"]
    assert len(cases["cli"]) == 10  # five cases × the suite's two repeats, through every door
    gates = {door: json.loads(g)["status"] for door, rid in runs.items()
             for (g,) in project.query("SELECT gate FROM runs WHERE run_id = ?", [rid])}
    assert gates == {"cli": "failed", "pytest": "failed", "api": "failed"}
    na = {r for r in scores["cli"] if r[5] == "not_applicable"}
    assert {(r[0], r[2]) for r in na} == {("noref", "exact_match")}
