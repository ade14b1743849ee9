"""Batch jobs: resume after SIGKILL, retry of errors, shards merged into one run, status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import EVALKIT, REPO, evalkit_cli

AGENT = """
import os, time
def answer(q):
    time.sleep(float(os.environ.get("AGENT_SLEEP", "0")))
    if os.environ.get("AGENT_FAIL") and q.endswith("7"):
        raise RuntimeError("flaky backend")
    return q.upper()
"""


cli = evalkit_cli


@pytest.fixture
def suite(workspace: Path) -> Path:
    (workspace / "agent.py").write_text(AGENT)
    (workspace / "cases.jsonl").write_text(
        "".join(json.dumps({"id": f"q{i}", "input": f"q{i}", "expected": f"Q{i}"}) + "\n" for i in range(400)))
    (workspace / "suite.yaml").write_text(
        "name: batch\ndataset: cases.jsonl\ntarget: agent:answer\nscorers:\n  - exact_match\n  - length: {max_chars: 3}\n"
        "defaults:\n  concurrency: 4\n")
    return workspace


def counts(store: Path, run_id: str) -> tuple[int, int, int, int]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(
            "SELECT (SELECT count(*) FROM case_results WHERE run_id = $r),"
            " (SELECT count(DISTINCT (case_id, repeat)) FROM case_results WHERE run_id = $r),"
            " (SELECT count(*) FROM scores WHERE run_id = $r),"
            " (SELECT count(DISTINCT (case_id, repeat, name)) FROM scores WHERE run_id = $r)", {"r": run_id}
        ).fetchone()
    finally:
        con.close()


def test_sigkill_then_resume_runs_every_case_exactly_once(suite: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "AGENT_SLEEP": "0.01"}
    proc = subprocess.Popen([*EVALKIT, "run", "suite.yaml", "--no-mlflow", "--concurrency", "2"], cwd=suite, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress_dir = suite / ".evalkit" / "progress"
    deadline = time.time() + 60
    while time.time() < deadline and not any(progress_dir.glob("*.json")):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run_file,) = progress_dir.glob("*.json")
    run_id = run_file.stem
    store = suite / ".evalkit" / "evalkit.duckdb"
    before, *_ = counts(store, run_id)
    assert 0 < before < 400
    status = json.loads(cli(suite, "status", run_id, "--json").stdout)
    assert status["status"] == "running" and status["done"] == before
    res = cli(suite, "run", "suite.yaml", "--no-mlflow", "--resume", run_id, "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["run_id"] == run_id and out["summary"]["cases"] == 400
    assert counts(store, run_id) == (400, 400, 800, 800)
    again = cli(suite, "run", "suite.yaml", "--no-mlflow", "--resume", run_id, "--json")
    assert json.loads(again.stdout)["summary"]["cases"] == 400  # nothing left to do, nothing duplicated
    assert counts(store, run_id) == (400, 400, 800, 800)


def test_resume_auto_and_wrong_suite(suite: Path) -> None:
    res = cli(suite, "run", "suite.yaml", "--no-mlflow", "--resume", "auto", "--json", "--limit", "5")
    assert res.returncode == 0 and json.loads(res.stdout)["summary"]["cases"] == 5  # nothing unfinished: fresh run
    run_id = json.loads(res.stdout)["run_id"]
    (suite / "other.yaml").write_text((suite / "suite.yaml").read_text().replace("name: batch", "name: other"))
    bad = cli(suite, "run", "other.yaml", "--no-mlflow", "--resume", run_id)
    assert bad.returncode == 2 and "is of suite 'batch'" in bad.stderr


def test_retry_errors_reruns_only_failed_cases(suite: Path) -> None:
    first = cli(suite, "run", "suite.yaml", "--no-mlflow", "--json", "--max-error-rate", "1", env={"AGENT_FAIL": "1"})
    out = json.loads(first.stdout)
    run_id = out["run_id"]
    assert out["summary"]["errors"] == 40
    store = suite / ".evalkit" / "evalkit.duckdb"
    con = duckdb.connect(str(store), read_only=True)
    ok_before = con.execute("SELECT case_id, started_at FROM case_results WHERE run_id = ? AND status = 'ok' ORDER BY 1",
                            [run_id]).fetchall()
    con.close()
    second = cli(suite, "run", "suite.yaml", "--no-mlflow", "--json", "--retry-errors", run_id)
    out2 = json.loads(second.stdout)
    assert out2["run_id"] == run_id and out2["summary"]["errors"] == 0 and out2["summary"]["cases"] == 400
    con = duckdb.connect(str(store), read_only=True)
    ok_after = con.execute("SELECT case_id, started_at FROM case_results WHERE run_id = ? AND case_id NOT LIKE '%7' ORDER BY 1",
                           [run_id]).fetchall()
    con.close()
    assert ok_after == ok_before  # untouched
    assert counts(store, run_id) == (400, 400, 800, 800)


def test_four_shards_merge_to_the_unsharded_run(suite: Path) -> None:
    whole = json.loads(cli(suite, "run", "suite.yaml", "--no-mlflow", "--json").stdout)
    shard_ids = []
    sizes = []
    for i in range(1, 5):
        out = json.loads(cli(suite, "run", "suite.yaml", "--no-mlflow", "--json", "--shard", f"{i}/4",
                             "--store", f"shard{i}.duckdb").stdout)
        shard_ids.append(out["run_id"])
        sizes.append(out["summary"]["cases"])
    assert sum(sizes) == 400 and all(s > 0 for s in sizes)
    merged = cli(suite, "merge", *[f"shard{i}.duckdb" for i in range(1, 5)], "--json")
    assert merged.returncode == 0, merged.stderr
    m = json.loads(merged.stdout)
    assert m["summary"]["cases"] == 400
    keep = ("mean", "pass_rate", "scored", "errors", "passed", "mean_ci", "pass_rate_ci")

    def strip(summary: dict) -> list[dict]:
        return [{k: x[k] for k in keep} | {"name": x["name"]} for x in sorted(summary["scorers"], key=lambda x: x["name"])]

    assert strip(m["summary"]) == strip(whole["summary"])
    store = suite / ".evalkit" / "evalkit.duckdb"
    con = duckdb.connect(str(store), read_only=True)
    a = con.execute("SELECT case_id, name, value FROM scores WHERE run_id = ? ORDER BY 1, 2", [whole["run_id"]]).fetchall()
    b = con.execute("SELECT case_id, name, value FROM scores WHERE run_id = ? ORDER BY 1, 2", [m["run_id"]]).fetchall()
    con.close()
    assert a == b
    twice = cli(suite, "merge", "shard1.duckdb", "shard1.duckdb")
    assert twice.returncode == 2 and "more than one source run" in twice.stderr


def test_bad_shard_spec(suite: Path) -> None:
    res = cli(suite, "run", "suite.yaml", "--shard", "5/4")
    assert res.returncode == 2 and "--shard '5/4'" in res.stderr
