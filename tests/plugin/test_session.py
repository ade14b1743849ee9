"""Session behaviour: the gate, -k/-x/--lf subsets, repeats, errors, baseline, MLflow failures, inertness."""

from __future__ import annotations

import json

from tests.plugin.conftest import Project

AGENT = '''
from evalkit.tracing.decorators import trace


@trace(kind="tool")
def lookup(word: str) -> str:
    return word.upper()


def answer(question: str) -> str:
    if "boom" in question:
        raise RuntimeError("agent exploded")
    return lookup(question) if question.startswith("good") else "no idea"
'''
CASES = "\n".join(json.dumps(c) for c in [
    {"id": "bad", "input": "bad one", "expected": "BAD ONE"},
    {"id": "good1", "input": "good one", "expected": "GOOD ONE"},
    {"id": "good2", "input": "good two", "expected": "GOOD TWO"},
    {"id": "good3", "input": "good three", "expected": "GOOD THREE"},
]) + "\n"
SUITE = """
name: mini
dataset: cases.jsonl
target: agent:answer
scorers: [exact_match]
thresholds: ["exact_match/pass_rate >= {bar}"]
"""
LENIENT = '''
from evalkit.testing import cases
from agent import answer


@cases("suite.yaml")
def test_mini(case, evaluate):
    evaluate(case, answer(case.input_text))  # scored and recorded, never asserted
'''
TARGET = '''
from evalkit.testing import cases


@cases("suite.yaml")
def test_mini(case, evaluate):
    evaluate(case)  # runs the suite's target; scored and recorded, never asserted
'''
STRICT = '''
from evalkit.testing import cases
from agent import answer


@cases("suite.yaml")
def test_mini(case, evaluate):
    assert evaluate(case, answer(case.input_text)).passed
'''


def _mini(project: Project, test: str, bar: float = 0.5) -> None:
    project.write("agent.py", AGENT)
    project.write("cases.jsonl", CASES)
    project.write("suite.yaml", SUITE.format(bar=bar))
    project.write("test_mini.py", test)
    project.write("conftest.py", "import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n")


def _runs(project: Project) -> list[tuple[str, str, int]]:
    return project.query("SELECT run_id, status, cases_total FROM runs ORDER BY started_at")


def test_a_missed_suite_threshold_fails_the_session_though_every_case_test_passed(project: Project) -> None:
    _mini(project, TARGET, bar=0.9)
    res = project.pytest()
    assert res.outcomes() == {"passed": 4}, res.out
    assert res.ret == 1
    assert "evalkit gate FAILED (failed): exact_match/pass_rate>=0.9: FAIL (0.75)" in res.out
    (_, status, total), = _runs(project)
    (gate,), = project.query("SELECT gate FROM runs")
    assert (status, total, json.loads(gate)["status"]) == ("completed", 4, "failed")
    calls = project.query("SELECT tool_calls FROM case_results WHERE case_id = 'good1'")
    assert [c["name"] for c in json.loads(calls[0][0])] == ["lookup"]  # the target ran inside the case


def test_subsets_with_lf_k_and_x_each_write_a_run_of_what_ran(project: Project) -> None:
    _mini(project, STRICT)
    first = project.pytest(cache=True)
    assert (first.ret, first.outcomes()) == (1, {"passed": 3, "failed": 1}), first.out
    (run1,), = project.query("SELECT run_id FROM runs")
    assert "<CaseEval 'bad' FAILED exact_match: false (needs true) | trace " in first.out
    assert f"| `evalkit trace {run1} bad`>.passed" in first.out
    last_failed = project.pytest("--lf", cache=True)
    assert last_failed.outcomes().get("failed") == 1 and "passed" not in last_failed.outcomes(), last_failed.out
    stop_early = project.pytest("-x", "-k", "bad or good1")
    assert stop_early.outcomes() == {"failed": 1, "deselected": 2}, stop_early.out
    runs = _runs(project)
    # -k and --lf plan what they select; -x stops early: the item it never ran is cancelled, not forgotten
    assert [(s, n) for _, s, n in runs] == [("completed", 4), ("completed", 1), ("interrupted", 2)]
    assert [c for (c,) in project.query("SELECT case_id FROM case_results WHERE run_id = ?", [runs[1][0]])] == ["bad"]
    stopped = project.query("SELECT case_id, outcome FROM case_results WHERE run_id = ? ORDER BY 1", [runs[2][0]])
    assert stopped == [("bad", "completed"), ("good1", "cancelled")]
    assert "evalkit gate FAILED (incomplete)" in stop_early.out


def test_repeats_then_a_baseline_comparison_and_an_unreachable_mlflow(project: Project) -> None:
    _mini(project, LENIENT)
    first = project.pytest("--evalkit-repeat", "2", "-vv")
    assert first.ret == 0, first.out
    assert "test_mini[good1-r1] PASSED" in first.out
    (run1, _, total), = _runs(project)
    assert total == 8
    reps = project.query("SELECT repeat, count(*) FROM case_results GROUP BY 1 ORDER BY 1")
    assert reps == [(0, 4), (1, 4)]

    second = project.pytest("--evalkit-baseline", run1, mlflow=True, MLFLOW_TRACKING_URI="http://127.0.0.1:9")
    assert second.ret == 0, second.out
    assert "exact_match/mean: 0.75 vs baseline 0.75" in second.out
    assert "warning: MLflow logging failed" in second.out
    assert "evalkit gate PASSED" in second.out


def test_a_test_that_fails_before_evaluate_is_an_errored_case(project: Project) -> None:
    _mini(project, STRICT)
    with (project.path / "cases.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "explodes", "input": "boom", "expected": "x"}) + "\n")
    res = project.pytest("-k", "not bad")
    assert res.outcomes() == {"passed": 3, "failed": 1, "deselected": 1}, res.out
    (status, error), = project.query("SELECT status, error FROM case_results WHERE case_id = 'explodes'")
    assert (status, error) == ("error", "test failed: RuntimeError: agent exploded")
    # one errored case in four is over the suite's 5 % error budget: the gate says so
    assert "evalkit gate FAILED (infra_error): error rate 25.0% (1 of 4 case runs errored) exceeds" in res.out


def test_an_unusable_store_fails_the_session_with_one_clear_line(project: Project) -> None:
    _mini(project, LENIENT)
    (project.path / "a-folder").mkdir()
    res = project.pytest("--evalkit-store", "a-folder")
    assert (res.ret, res.outcomes()) == (1, {"passed": 4}), res.out
    assert "evalkit: the run could not be fully recorded: " in res.out and "a-folder: cannot open the store" in res.out
    assert "INTERNALERROR" not in res.out


def test_the_plugin_does_nothing_where_evalkit_is_not_used(project: Project) -> None:
    project.write("test_plain.py", '''
import sys


def test_plain():
    loaded = [m for m in sys.modules if m.startswith(("evalkit.testing", "evalkit.tracing.setup", "duckdb", "mlflow"))]
    assert loaded == []
''')
    res = project.pytest()
    assert (res.ret, res.outcomes()) == (0, {"passed": 1}), res.out
    assert "evalkit" not in res.out
    assert not (project.path / ".evalkit").exists()


def test_evalkit_modules_are_not_assert_rewritten_but_test_files_are(project: Project) -> None:
    """pytest marks a plugin's whole distribution for assert rewriting; evalkit takes itself off that list."""
    # what pytest does for a regular (non-editable) install, done by a plugin that loads before evalkit's
    project.write("mark_evalkit.py", "import pytest\n\npytest.register_assert_rewrite('evalkit')\n")
    project.write("test_rewrite.py", '''
import sys


def test_rewrite():
    import evalkit.runner  # holds an assert: a rewritten module would carry pytest's helper

    hooks = [f for f in sys.meta_path if type(f).__name__ == "AssertionRewritingHook"]
    assert hooks and all("evalkit" not in h._must_rewrite for h in hooks)
    assert "@pytest_ar" not in vars(evalkit.runner)
    assert "@pytest_ar" in globals()  # this test file still is
''')
    res = project.pytest("-p", "mark_evalkit")
    assert (res.ret, res.outcomes()) == (0, {"passed": 1}), res.out
