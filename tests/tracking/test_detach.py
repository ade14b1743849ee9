"""A laptop's `evalkit run` prints its verdict and exits; a detached `evalkit sync --run` logs MLflow. CI logs inline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from evalkit.tracking.detach import in_ci, should_detach
from evalkit.tracking.sqlite_reader import SqliteRunReader
from tests.conftest import evalkit_cli

SUITE = "name: detach\ndataset: cases.jsonl\ntarget: agent:answer\nscorers:\n  - exact_match\n"
NO_CI = {"CI": "", "GITHUB_ACTIONS": "", "GITLAB_CI": "", "BUILDKITE": "", "JENKINS_URL": "", "TF_BUILD": ""}


def _workspace(ws: Path) -> None:
    (ws / "agent.py").write_text("def answer(q):\n    return q\n")
    (ws / "cases.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "input": f"q{i}", "expected": f"q{i}"}) + "\n"
                                            for i in range(10)))
    (ws / "suite.yaml").write_text(SUITE)


def _mlflow_runs(ws: Path) -> list[str]:
    db = ws / ".evalkit" / "mlflow.db"
    if not db.exists():
        return []
    reader = SqliteRunReader(db)
    try:
        rows = reader.con.execute("SELECT r.value FROM tags r JOIN tags d ON d.run_uuid = r.run_uuid"
                                  " AND d.key = 'evalkit.logged' WHERE r.key = 'evalkit.run_id'").fetchall()
        return [r[0] for r in rows]
    except Exception:  # the detached process is still creating the database
        return []
    finally:
        reader.close()


def test_local_run_exits_and_a_detached_process_logs_mlflow(workspace: Path) -> None:
    _workspace(workspace)
    r = evalkit_cli(workspace, "run", "suite.yaml", "--json", env={**NO_CI, "EVALKIT_MLFLOW_DETACH": ""})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["mlflow_run_id"] is None and out["summary"]["completed"] == 10
    run_id = out["run_id"]
    log = workspace / ".evalkit" / "logs" / f"mlflow-{run_id}.log"
    for _ in range(1200):  # the detached process imports mlflow and logs: seconds, bounded here at ~2 min
        if run_id in _mlflow_runs(workspace) and "new case trace" in (log.read_text() if log.exists() else ""):
            break
        time.sleep(0.1)
    assert _mlflow_runs(workspace) == [run_id], log.read_text() if log.exists() else "no log"
    assert f"logged {run_id}" in log.read_text() and "(10 new case trace(s))" in log.read_text()
    again = evalkit_cli(workspace, "sync", env=NO_CI)
    assert again.returncode == 0 and "nothing to sync" in again.stdout


def test_ci_logs_inline(workspace: Path) -> None:
    _workspace(workspace)
    r = evalkit_cli(workspace, "run", "suite.yaml", "--json", env={**NO_CI, "CI": "true", "EVALKIT_MLFLOW_DETACH": ""})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["mlflow_run_id"] and _mlflow_runs(workspace) == [out["run_id"]]  # in MLflow when the job ends
    assert not (workspace / ".evalkit" / "logs").exists()


def test_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in NO_CI:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("EVALKIT_MLFLOW_DETACH", raising=False)
    assert not in_ci() and should_detach()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert in_ci() and not should_detach()
    monkeypatch.setenv("EVALKIT_MLFLOW_DETACH", "1")
    assert should_detach()
    monkeypatch.setenv("EVALKIT_MLFLOW_DETACH", "0")
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert not should_detach()
    monkeypatch.setenv("CI", "false")
    monkeypatch.delenv("EVALKIT_MLFLOW_DETACH")
    assert not in_ci() and should_detach()
