"""`evalkit scorers`, `evalkit judges` and `evalkit init` (its files run as written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.core.helpers import run_main as cli


def test_scorers_and_judges_list_what_exists(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = cli(["scorers", "--json"], capsys, monkeypatch)
    scorers = {s["name"]: s for s in json.loads(out)}
    assert code == 0 and {"contains", "exact_match", "regex", "json_schema"} <= set(scorers)
    assert {"name": "pattern", "required": True} in [{k: a[k] for k in ("name", "required")}
                                                     for a in scorers["regex"]["arguments"]]
    code, out, _ = cli(["judges", "--json"], capsys, monkeypatch)
    judges = {j["name"]: j for j in json.loads(out)}
    assert code == 0 and {"correctness", "safety", "tone"} <= set(judges) and judges["tone"]["version"] == "1.0"
    code, out, _ = cli(["judges", "correctness", "--json"], capsys, monkeypatch)
    one = json.loads(out)
    assert code == 0 and one["ref"].startswith("correctness@") and len(one["prompt_sha256"]) == 64
    code, _, err = cli(["judges", "corectness"], capsys, monkeypatch)
    assert code == 2 and "unknown judge 'corectness'" in err


def test_a_newcomers_first_hour(workspace: Path) -> None:
    """init → run → show → trace → report → leaderboard → a CI gate with no baseline, as the README says."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def evalkit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "evalkit.cli.app", *args], cwd=workspace, env=env,
                              capture_output=True, text=True, timeout=300)

    p = evalkit("init")
    assert p.returncode == 0 and "evalkit run evals/suite.yaml" in p.stdout
    assert sorted(f.name for f in (workspace / "evals").iterdir()) == [
        "agent.py", "cases.jsonl", "conftest.py", "suite.yaml", "test_agent.py"]
    assert evalkit("init").returncode == 2  # never overwrites without --force
    run = evalkit("run", "evals/suite.yaml")
    assert run.returncode == 0, run.stderr
    assert "optional scorer correctness: no credentials" in run.stderr  # the judge waits for a model, with a notice
    first = run.stdout.splitlines()[0]  # printed as the run starts, before any case runs
    run_id = first.split()[1]
    assert first.endswith(f"watch it with: evalkit status {run_id}")
    assert f"run id: {run_id}" in run.stdout and "gate passed" in run.stdout
    assert evalkit("show", run_id).returncode == 0
    trace = evalkit("trace", run_id, "capital-fr")
    assert trace.returncode == 0 and "evalkit.case" in trace.stdout
    assert evalkit("report", run_id, "-o", "report.html").returncode == 0 and (workspace / "report.html").is_file()
    board = evalkit("leaderboard")
    assert board.returncode == 0 and "my-agent" in board.stdout
    gate = evalkit("run", "evals/suite.yaml", "--no-mlflow", "--baseline", "last-on-branch:main",
                   "--fail-on-regression", "--junit", "junit.xml")
    assert gate.returncode == 0, gate.stderr  # a first CI build: the regression check is skipped, with a notice
    assert "regression check is skipped" in gate.stderr and (workspace / "junit.xml").is_file()
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "evals",
                            "--evalkit-no-mlflow"], cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout
