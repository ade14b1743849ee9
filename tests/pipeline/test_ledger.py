"""A run is a ledger: every planned case × repeat ends completed, errored or cancelled, and the gate says so.

Each test reproduces a defect the way a user met it (the CLI in a fresh process), then checks the fix.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.pipeline import RunSettings, finish, run_suite
from evalkit.runner import RunOutcome
from evalkit.schema import Case, CaseResult, Score
from evalkit.store.db import open_store
from evalkit.suite import Suite, load_suite
from tests.conftest import evalkit_cli

STORE = Path(".evalkit") / "evalkit.duckdb"


def _project(ws: Path, agent: str, cases: list[dict[str, object]], scorers: str, extra: str = "",
             module: str = "agent") -> Path:
    (ws / f"{module}.py").write_text(agent)
    (ws / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    suite = ws / "suite.yaml"
    suite.write_text(f"name: ledger\ndataset: cases.jsonl\ntarget: {module}:answer\nscorers:\n{scorers}{extra}")
    return suite


def _rows(ws: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(ws / STORE), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_scorer_returning_a_list_or_a_huge_int_errors_its_case_and_loses_none(workspace: Path) -> None:
    agent = "def answer(q):\n    return q\n"
    checks = ("def odd(case, output):\n"
              "    if output == 'q7':\n        return [1.0, 0.0]\n"
              "    if output == 'q42':\n        return 10 ** 400\n"
              "    return True\n")
    (workspace / "checks.py").write_text(checks)
    _project(workspace, agent, [{"id": f"c{i:03d}", "input": f"q{i}"} for i in range(100)],
             "  - checks:odd\n", "defaults:\n  concurrency: 4\n")
    proc = evalkit_cli(workspace, "run", "suite.yaml", "--no-mlflow", "--json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr  # 2 of 100 errored: within the 5 % budget
    assert out["summary"]["cases"] == 100 and out["summary"]["errors"] == 2 and out["summary"]["missing"] == 0
    bad = _rows(workspace, "SELECT case_id, outcome, error_kind FROM scores WHERE outcome <> 'ok' ORDER BY 1")
    assert bad == [("c007", "error", "scorer_exception"), ("c042", "error", "scorer_exception")]
    assert out["metrics"]["errors/rate"] == pytest.approx(0.02)


def test_missing_reference_is_not_applicable_not_an_infrastructure_error(workspace: Path) -> None:
    agent = "def answer(q):\n    return q\n"
    cases = [{"id": "with", "input": "a", "expected": "a"}, {"id": "without", "input": "b"}]
    _project(workspace, agent, cases, "  - exact_match\n")
    proc = evalkit_cli(workspace, "run", "suite.yaml", "--no-mlflow", "--json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out["gate"]["status"] == "passed" and out["metrics"]["errors/rate"] == 0.0
    (scorer,) = out["summary"]["scorers"]
    assert (scorer["scored"], scorer["not_applicable"], scorer["errors"]) == (1, 1, 0)
    assert out["metrics"]["exact_match/not_applicable"] == 1.0 and out["metrics"]["exact_match/pass_rate"] == 1.0


def test_one_error_rate_gates_target_and_judge_faults_alike(workspace: Path) -> None:
    agent = "def answer(q):\n    return q\n"
    (workspace / "checks.py").write_text("def flaky(case, output):\n    raise TimeoutError('judge timed out')\n")
    _project(workspace, agent, [{"input": f"q{i}", "expected": f"q{i}"} for i in range(10)],
             "  - exact_match\n  - checks:flaky\n")
    proc = evalkit_cli(workspace, "run", "suite.yaml", "--no-mlflow", "--json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 3 and out["gate"]["status"] == "infra_error"
    assert out["gate"]["error_rate"] == out["metrics"]["errors/rate"] == 1.0  # one definition, one name
    assert "10 of 10 case runs errored" in out["gate"]["reason"]


def test_an_empty_dataset_or_shard_is_bad_input_and_nothing_is_stored(workspace: Path) -> None:
    _project(workspace, "def answer(q):\n    return q\n", [], "  - exact_match\n")
    proc = evalkit_cli(workspace, "run", "suite.yaml", "--no-mlflow")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "no cases" in proc.stderr and "suite.yaml" in proc.stderr
    assert not (workspace / STORE).exists()
    (workspace / "cases.jsonl").write_text('{"id": "only", "input": "a"}\n')
    proc = evalkit_cli(workspace, "run", "suite.yaml", "--no-mlflow", "--shard", "2/2")
    empty_shard = proc.returncode == 2 and "no cases" in proc.stderr
    other = evalkit_cli(workspace, "run", "suite.yaml", "--no-mlflow", "--shard", "1/2")
    assert empty_shard or other.returncode == 2  # 'only' falls in one of the two shards; the other is empty
    rows = _rows(workspace, "SELECT count(*) FROM runs") if (workspace / STORE).exists() else [(0,)]
    assert rows[0][0] <= 1


KILLER = '''
import os
from pathlib import Path

def answer(q):
    marker = Path("calls.txt")
    n = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(n + 1))
    if os.environ.get("KILL_AT") and n + 1 == int(os.environ["KILL_AT"]):
        os._exit(1)  # the agent takes the whole process down
    return q
'''


def test_resume_inherits_the_plan_and_a_conflicting_flag_is_bad_input(workspace: Path) -> None:
    _project(workspace, KILLER, [{"id": f"c{i}", "input": f"q{i}", "expected": f"q{i}"} for i in range(6)],
             "  - exact_match\n", "defaults:\n  concurrency: 1\n")
    dead = evalkit_cli(workspace, "run", "suite.yaml", "--no-mlflow", "--repeat", "2", env={"KILL_AT": "5"})
    assert dead.returncode == 1 and "gate" not in dead.stdout  # os._exit: no verdict, the run is left as it was
    ((run_id, status, planned),) = _rows(workspace, "SELECT run_id, status, cases_total FROM runs")
    assert (status, planned) == ("running", 12)
    clash = evalkit_cli(workspace, "run", "suite.yaml", "--no-mlflow", "--resume", "auto", "--repeat", "3")
    assert clash.returncode == 2 and "--repeat 3 conflicts with run" in clash.stderr, clash.stderr
    done = evalkit_cli(workspace, "run", "suite.yaml", "--no-mlflow", "--resume", "auto", "--json")
    out = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert out["run_id"] == run_id and out["status"] == "completed" and out["gate"]["status"] == "passed"
    assert out["summary"]["cases"] == out["summary"]["planned"] == 12 and out["summary"]["missing"] == 0
    assert _rows(workspace, "SELECT count(DISTINCT (case_id, repeat)) FROM case_results") == [(12,)]


def test_a_broken_ledger_fails_the_run_and_the_gate_cannot_pass(workspace: Path) -> None:
    """Five of ten planned case runs never reached the store (a crash, a lost write): failed, exit 3, how to go on."""
    _project(workspace, "def answer(q):\n    return q\n", [{"input": "a", "expected": "a"}], "  - exact_match\n")
    suite = load_suite(workspace / "suite.yaml")
    store = open_store()
    try:
        store.create_run({"run_id": "r1", "suite": suite.name, "status": "running", "cases_total": 10})
        t = datetime.now(UTC)
        store.write_results([CaseResult(run_id="r1", case_id=f"c{i}", scores=[Score(name="exact_match", value=True,
                                                                                    passed=True)],
                                        started_at=t, ended_at=t) for i in range(5)])
        run = finish(store, "r1", suite.name, planned=10, outcome=RunOutcome(), settings=RunSettings(mlflow=False),
                     thresholds=[], resume_command="evalkit run suite.yaml --resume r1")
    finally:
        store.close()
    assert run.status == "failed" and run.summary.missing == 5
    assert run.gate.status == "incomplete" and run.exit_code == 3 and not run.passed
    assert "5 of 10 planned case × repeats are missing" in run.gate.reason
    assert "--resume r1" in run.gate.reason


def test_evaluate_takes_a_suite_with_other_scorers_and_gates_and_tracks_like_the_cli(workspace: Path) -> None:
    import evalkit

    _project(workspace, "def answer(q):\n    return q.upper()\n",
             [{"input": "a", "expected": "A"}, {"input": "b", "expected": "x"}], "  - exact_match\n",
             "thresholds:\n  - exact_match/pass_rate >= 0.9\n", module="ledger_api_agent")  # in-process: unique
    strict = evalkit.evaluate("suite.yaml", mlflow=False, tracing=False)
    assert strict.gate.status == "failed" and strict.exit_code == 1  # the suite's threshold applies
    swapped = evalkit.evaluate("suite.yaml", scorers=["contains"], mlflow=True, tracing=False)
    assert [s.name for s in swapped.summary.scorers] == ["contains"]
    assert swapped.mlflow_run_id is not None  # logged, as `evalkit run` logs
    assert swapped.cases is not None and swapped.cases.height == 2


def test_a_target_or_scorer_returning_or_raising_anything_keeps_every_case() -> None:
    """Property: whatever user code returns or raises, the run records exactly the planned case runs."""
    values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
                       st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                       st.just(10 ** 400), st.just(object()), st.just(float("inf")))
    raised = st.sampled_from([ValueError("x"), SystemExit(2), KeyboardInterrupt(), RecursionError(), MemoryError(),
                              GeneratorExit(), None])

    @settings(max_examples=40, deadline=None)
    @given(out=values, exc=raised, score=values, score_exc=raised)
    def check(out: object, exc: BaseException | None, score: object, score_exc: BaseException | None) -> None:
        def target(q: str) -> object:
            if exc is not None and q == "q1":
                raise exc
            return out

        def scorer(case: Case, output: object) -> object:
            if score_exc is not None and case.input == "q2":
                raise score_exc
            return score

        suite = load_suite_from_objects(target, scorer)
        run = run_suite(suite, RunSettings(repeats=2, mlflow=False, tracing=False), door="api", store=":memory:",
                        handle_signals=False)
        assert run.summary.cases == run.summary.planned == 8 and run.summary.missing == 0
        assert run.summary.completed + run.summary.errors == 8

    check()


def load_suite_from_objects(target: object, scorer: object) -> object:
    from evalkit.scorers.registry import build_scorer
    from evalkit.targets import build_target

    return Suite(name="property", cases=[Case(id=f"c{i}", input=f"q{i}") for i in range(4)],
                 target=build_target(target), scorers=[build_scorer(scorer)])
