"""The CLI end to end, as a user runs it: exit codes, JSON output, the store on disk, SIGKILL."""

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


def cli(*args: str, cwd: Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    proc = evalkit_cli(cwd, *args)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_demo_run_show_and_store(workspace: Path) -> None:
    run = cli("run", str(REPO / "datasets/demo/suite.yaml"), "--no-trace", "--json", cwd=workspace, check=True)
    out = json.loads(run.stdout)
    run_id = out["run_id"]
    assert out["summary"]["cases"] >= 24
    pass_rates = [s["pass_rate"] for s in out["summary"]["scorers"]]
    assert min(pass_rates) < 1.0, "the demo must show failures"
    shown = json.loads(cli("show", run_id, "--json", cwd=workspace, check=True).stdout)
    assert len(shown["cases"]) == out["summary"]["cases"]
    assert all(c["scores"] for c in shown["cases"])
    assert shown["cases"][0]["failed"] is True  # failures first
    runs = json.loads(cli("runs", "--json", cwd=workspace, check=True).stdout)
    assert [r["run_id"] for r in runs] == [run_id]
    table = cli("show", run_id, cwd=workspace, check=True).stdout
    assert "key_facts" in table and "missing:" in table


def test_bad_input_exits_2_with_one_line_and_store_unchanged(workspace: Path) -> None:
    (workspace / "agent.py").write_text("def answer(q):\n    return q\n")
    (workspace / "good.jsonl").write_text('{"input": "a", "expected": "a"}\n')
    suite = "name: s\ndataset: {ds}\ntarget: agent:answer\nscorers:\n  - exact_match\n"
    (workspace / "good.yaml").write_text(suite.format(ds="good.jsonl"))
    cli("run", "good.yaml", cwd=workspace, check=True)
    store = workspace / ".evalkit" / "evalkit.duckdb"
    before = store.read_bytes()
    cases = {
        "missing.jsonl": ('{"input": "a"}\n{"expected": "b"}\n', "missing.jsonl:2: field 'input' is required"),
        "badjson.jsonl": ('{"input": "a"}\n{"input": "b"}\n{"input": \n', "badjson.jsonl:3: invalid JSON"),
        "dupe.jsonl": ('{"id": "x", "input": "a"}\n{"id": "x", "input": "b"}\n', "dupe.jsonl:2: duplicate case id 'x'"),
    }
    for name, (content, expected) in cases.items():
        (workspace / name).write_text(content)
        (workspace / "bad.yaml").write_text(suite.format(ds=name))
        proc = cli("run", "bad.yaml", cwd=workspace)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr
    (workspace / "bad.yaml").write_text(suite.format(ds="good.jsonl").replace("exact_match", "exact_matchh"))
    proc = cli("run", "bad.yaml", cwd=workspace)
    assert proc.returncode == 2 and "bad.yaml:5: unknown scorer 'exact_matchh'" in proc.stderr
    (workspace / "bad.yaml").write_text(suite.format(ds="good.jsonl").replace("- exact_match", "- length: {max_words: lots}"))
    proc = cli("run", "bad.yaml", cwd=workspace)
    assert proc.returncode == 2 and "bad.yaml:5: scorer 'length': argument 'max_words'" in proc.stderr
    assert store.read_bytes() == before


def test_usage_errors_exit_2(workspace: Path) -> None:
    proc = cli("run", "--concurrency", "zero", "x.yaml", cwd=workspace)
    assert proc.returncode == 2
    proc = cli("show", "nope", cwd=workspace)
    assert proc.returncode != 0 and "no store here yet" in proc.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_leaves_finished_cases_readable(workspace: Path, workers: int) -> None:
    """In-process or with worker processes (they commit a part each second), what finished is in the store."""
    (workspace / "agent.py").write_text("import time\ndef answer(q):\n    time.sleep(0.01)\n    return q\n")
    (workspace / "cases.jsonl").write_text("".join(json.dumps({"input": f"q{i}", "expected": f"q{i}"}) + "\n" for i in range(2000)))
    (workspace / "suite.yaml").write_text("name: kill\ndataset: cases.jsonl\ntarget: agent:answer\nscorers:\n  - exact_match\n"
                                          "defaults:\n  concurrency: 2\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([*EVALKIT, "run", "suite.yaml", "--no-trace", "--workers", str(workers)], cwd=workspace,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = workspace / ".evalkit" / "evalkit.duckdb"
    deadline = time.time() + 60
    while time.time() < deadline and not (store.exists() and store.stat().st_size > 0):
        time.sleep(0.05)
    time.sleep(2.0 if workers == 1 else 6.0)  # workers start fresh interpreters first
    assert proc.poll() is None, "run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    con = duckdb.connect(str(store), read_only=True)
    ((_, status),) = con.execute("SELECT run_id, status FROM runs").fetchall()
    assert status == "running"
    n_cases = con.execute("SELECT count(*) FROM case_results").fetchone()[0]
    n_scores = con.execute("SELECT count(*) FROM scores").fetchone()[0]
    assert 0 < n_cases < 2000
    assert n_scores == n_cases
    assert con.execute("SELECT count(DISTINCT case_id) FROM case_results").fetchone()[0] == n_cases


def test_demo_gate_with_repeats_exit_code_matches_verdict(workspace: Path) -> None:
    suite = str(REPO / "datasets/demo/suite.yaml")
    strict = cli("run", suite, "--no-mlflow", "--no-trace", "--repeat", "3", "--threshold",
                 "key_facts/pass_rate>=0.95@lower_bound", cwd=workspace)
    assert strict.returncode == 1 and "gate failed" in strict.stdout and "(CI low)" in strict.stdout
    lenient = cli("run", suite, "--no-mlflow", "--no-trace", "--repeat", "3", "--threshold",
                  "key_facts/pass_rate>=0.6@lower_bound", "--json", cwd=workspace)
    out = json.loads(lenient.stdout)
    assert lenient.returncode == 0 and out["gate"]["status"] == "passed"
    key = next(s for s in out["summary"]["scorers"] if s["name"] == "key_facts")
    assert key["pass_rate_ci"][0] < key["pass_rate"] < key["pass_rate_ci"][1]
    unknown = cli("run", suite, "--no-mlflow", "--threshold", "key_fact/pass_rate>=0.5", cwd=workspace)
    assert unknown.returncode == 2 and "unknown metric" in unknown.stderr


def test_sigint_finishes_in_flight_cases_and_marks_the_run_interrupted(workspace: Path) -> None:
    (workspace / "agent.py").write_text("import time\ndef answer(q):\n    time.sleep(0.02)\n    return q\n")
    (workspace / "cases.jsonl").write_text("".join(json.dumps({"input": f"q{i}", "expected": f"q{i}"}) + "\n" for i in range(3000)))
    (workspace / "suite.yaml").write_text("name: int\ndataset: cases.jsonl\ntarget: agent:answer\nscorers:\n  - exact_match\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([*EVALKIT, "run", "suite.yaml", "--no-trace", "--no-mlflow", "--concurrency", "4"],
                            cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    progress = workspace / ".evalkit" / "progress"
    deadline = time.time() + 60
    while time.time() < deadline and not (progress.exists() and any(progress.glob("*.json"))):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    con = duckdb.connect(str(workspace / ".evalkit" / "evalkit.duckdb"), read_only=True)
    run_id, status, summary = con.execute("SELECT run_id, status, summary FROM runs").fetchone()
    n, cancelled, cut = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE outcome = 'cancelled'),"
        " count(*) FILTER (WHERE error = 'cancelled: run interrupted') FROM case_results").fetchone()
    # the ledger: every planned case is recorded; those never started are cancelled, in-flight ones finished
    assert status == "interrupted" and n == 3000 and 0 < n - cancelled < 3000 and cut == 0
    assert json.loads(summary)["cancelled"] == cancelled
    assert "gate incomplete" in out and "gate passed" not in out
    assert f"continue it with: evalkit run suite.yaml --resume {run_id}" in out


def test_baseline_mistakes_are_caught_before_the_run(workspace: Path) -> None:
    suite = str(REPO / "datasets/demo/suite.yaml")
    cli("run", suite, "--no-mlflow", "--no-trace", cwd=workspace, check=True)
    before = json.loads(cli("runs", "--json", cwd=workspace, check=True).stdout)
    bad = cli("run", suite, "--no-mlflow", "--baseline", "no-such-run", cwd=workspace)
    assert bad.returncode == 2 and "no-such-run" in bad.stderr
    lonely = cli("run", suite, "--no-mlflow", "--fail-on-regression", cwd=workspace)
    assert lonely.returncode == 2 and "--fail-on-regression needs --baseline" in lonely.stderr
    assert json.loads(cli("runs", "--json", cwd=workspace, check=True).stdout) == before  # nothing was run


def test_an_agent_module_that_fails_to_import_is_bad_input(workspace: Path) -> None:
    (workspace / "agent.py").write_text("def answer(q)\n    return q\n")  # a SyntaxError
    (workspace / "cases.jsonl").write_text('{"input": "a"}\n')
    (workspace / "suite.yaml").write_text("name: s\ndataset: cases.jsonl\ntarget: agent:answer\nscorers: [exact_match]\n")
    proc = cli("run", "suite.yaml", "--no-mlflow", cwd=workspace)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "suite.yaml:3" in lines[0] and "SyntaxError" in lines[0] and "Traceback" not in proc.stderr
    assert not (workspace / ".evalkit" / "evalkit.duckdb").exists()
