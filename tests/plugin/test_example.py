"""The copyable example module over the demo suite: one test per case, one run per session."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.plugin.conftest import Project

DEMO_CASES = 29
FAILING = {"vpn-install", "access-shared-drive", "printer-badge", "phishing-clicked", "adv-social-engineering"}


def _failed_ids(out: str) -> set[str]:
    return set(re.findall(r"FAILED tests/test_demo_agent.py::test_demo_agent\[([\w-]+)\]", out))


def test_example_runs_one_test_per_case_and_writes_one_run(project: Project) -> None:
    project.copy_demo()
    mlruns = project.path / "mlflow.db"
    res = project.pytest("tests/test_demo_agent.py", "-rf", mlflow=True, EVALKIT_RUN_EXAMPLES="1",
                         MLFLOW_TRACKING_URI=f"sqlite:///{mlruns}")
    assert res.ret == 1, res.out
    assert res.outcomes() == {"passed": DEMO_CASES - len(FAILING), "failed": len(FAILING)}, res.out
    assert _failed_ids(res.out) == FAILING

    (run_id, cases, status, mlflow_id, gate), = project.query(
        "SELECT run_id, cases_total, status, mlflow_run_id, gate FROM runs")
    assert (cases, status) == (DEMO_CASES, "completed")
    assert mlflow_id, res.out  # logged to MLflow
    assert json.loads(gate)["status"] == "passed"
    rows = dict(project.query("SELECT case_id, trace_id FROM case_results WHERE run_id = ?", [run_id]))
    assert len(rows) == DEMO_CASES

    # the failure message: scorer, value, rationale, trace id and the command to view it
    trace = rows["vpn-install"]
    assert "key_facts: 0 (failed) — missing: 'GlobalConnect', 'Software Center'" in res.out
    assert f"trace: {trace}; view it with `evalkit trace {run_id} vpn-install`" in res.out
    assert "tool_calls: false (needs true) — called search_kb; expected search_kb → create_ticket" in res.out
    # one trace per case, holding the agent's tool spans from the test body and the scorer spans
    names = {n for (n,) in project.query("SELECT name FROM spans WHERE trace_id = ?", [trace])}
    assert {"evalkit.case", "execute_tool search_kb", "evalkit.scorer"} <= names
    # the session summary and the gate
    assert f"evalkit run {run_id}: {DEMO_CASES} case result(s)" in res.out
    assert "evalkit gate PASSED: 3 threshold(s) met" in res.out

    listed = subprocess.run([sys.executable, "-m", "evalkit.cli.app", "runs", "--json"], cwd=project.path,
                            env=project.env(), capture_output=True, text=True, check=True)
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [run_id]


def test_example_under_xdist_merges_shards_into_one_run(project: Project) -> None:
    project.copy_demo()
    res = project.pytest("tests/test_demo_agent.py", "-n", "2", "-rf", EVALKIT_RUN_EXAMPLES="1")
    assert res.ret == 1, res.out
    assert res.outcomes() == {"passed": DEMO_CASES - len(FAILING), "failed": len(FAILING)}, res.out
    assert "lock" not in res.out.lower()
    (run_id, total, workers), = project.query("SELECT run_id, cases_total, concurrency FROM runs")
    assert (total, workers) == (DEMO_CASES, 2)
    ids = [c for (c,) in project.query("SELECT case_id FROM case_results WHERE run_id = ?", [run_id])]
    assert len(ids) == len(set(ids)) == DEMO_CASES
    (n_scores,), = project.query("SELECT count(*) FROM scores WHERE run_id = ?", [run_id])
    assert n_scores == DEMO_CASES * 4
    (traced,), = project.query("SELECT count(DISTINCT trace_id) FROM spans WHERE name = 'evalkit.case'")
    assert traced == DEMO_CASES
    assert f"evalkit run {run_id}: {DEMO_CASES} case result(s)" in res.out
    assert not list(project.path.glob("*.duckdb"))  # shards live in the temp dir and are removed


def test_example_is_skipped_in_the_projects_own_suite(project: Project) -> None:
    project.copy_demo()
    res = project.pytest("tests/test_demo_agent.py")
    assert res.ret == 0, res.out
    assert res.outcomes() == {"skipped": DEMO_CASES}
    assert not project.store.exists()
