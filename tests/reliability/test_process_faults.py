"""Process faults: a full disk, a read-only store, SIGKILL while logging to MLflow.

Each gives a clear one-line message, and nothing already stored is corrupted: the store opens
and the earlier runs read back identically.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalkit.store.db import Store
from tests.conftest import EVALKIT, REPO, evalkit_cli

pytestmark = pytest.mark.reliability
SUITE = "name: pf\ndataset: cases.jsonl\ntarget: agent:answer\nscorers:\n  - exact_match\n  - length: {max_words: 3}\n"


cli = evalkit_cli


def write_suite(ws: Path, n: int, text: str = "x") -> None:
    (ws / "agent.py").write_text("def answer(q):\n    return q\n")
    (ws / "cases.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "input": f"{text}{i}", "expected": f"{text}{i}"}) + "\n"
                                            for i in range(n)))
    (ws / "suite.yaml").write_text(SUITE)


def snapshot(store: Path) -> dict[str, Any]:
    """Everything a reader sees of the store, for before/after comparisons."""
    with Store(store, read_only=True) as st:
        return {t: st.execute(f"SELECT * FROM {t} ORDER BY ALL") for t in ("runs", "case_results", "scores")}


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs (skipped where mounting is not allowed)."""
    d = tmp_path / "small"
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(d)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_full_disk_is_a_clear_error_and_earlier_runs_survive(workspace: Path, tmpfs: Path, workers: str) -> None:
    """In one process or with worker processes (their shards fill the disk first): exit 3, disk full said first."""
    store = tmpfs / "evalkit.duckdb"
    write_suite(workspace, 20)
    ok = cli(workspace, "run", "suite.yaml", "--store", str(store), "--no-mlflow", "--no-trace")
    assert ok.returncode == 0, ok.stderr
    before = snapshot(store)
    write_suite(workspace, 40_000, text="y" * 200)  # far more than 3 MiB of results
    full = cli(workspace, "run", "suite.yaml", "--store", str(store), "--no-mlflow", "--no-trace", "--workers", workers)
    assert full.returncode == 3, full.stderr
    lines = full.stderr.strip().splitlines()
    assert "Traceback" not in full.stderr and "disk full" in lines[0], full.stderr
    # one line; with workers the ledger also says how many case runs have no result
    assert len(lines) == 1 if workers == "1" else "have no result" in lines[-1], full.stderr
    after = snapshot(store)
    first = before["runs"][0][0]
    assert [r for r in after["runs"] if r[0] == first] == before["runs"]
    assert [r for r in after["case_results"] if r[0] == first] == before["case_results"]
    assert [r for r in after["scores"] if r[0] == first] == before["scores"]


def test_injected_enospc_mid_run(workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.cli.app import main

    write_suite(workspace, 50)
    store = workspace / ".evalkit" / "evalkit.duckdb"
    # in this process (the fault is injected into this process's store writes)
    monkeypatch.setattr(sys, "argv", ["evalkit", "run", "suite.yaml", "--no-mlflow", "--no-trace", "--workers", "1"])
    monkeypatch.syspath_prepend(str(workspace))
    with pytest.raises(SystemExit) as first:
        main()
    assert first.value.code == 0
    before = snapshot(store)
    write_suite(workspace, 3000)
    real = Store._append
    calls = {"n": 0}

    def failing(self: Store, table: str, cols: dict[str, list[Any]]) -> None:
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(28, "No space left on device")
        real(self, table, cols)

    monkeypatch.setattr(Store, "_append", failing)
    with pytest.raises(SystemExit) as second:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    assert second.value.code == 3 and len(err) == 1 and "disk full" in err[0], err
    monkeypatch.setattr(Store, "_append", real)
    after = snapshot(store)
    first_run = before["runs"][0][0]
    assert [r for r in after["case_results"] if r[0] == first_run] == before["case_results"]
    assert [r for r in after["scores"] if r[0] == first_run] == before["scores"]


def test_read_only_store_is_a_clear_error(workspace: Path, tmpfs: Path) -> None:
    store = tmpfs / "evalkit.duckdb"
    write_suite(workspace, 10)
    assert cli(workspace, "run", "suite.yaml", "--store", str(store), "--no-mlflow", "--no-trace").returncode == 0
    before = snapshot(store)
    if subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], capture_output=True).returncode:
        pytest.skip("cannot remount read-only here")
    res = cli(workspace, "run", "suite.yaml", "--store", str(store), "--no-mlflow", "--no-trace")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 3 and len(lines) == 1 and "not writable" in lines[0], res.stderr
    shown = cli(workspace, "runs", "--store", str(store), "--json")  # readers still work
    assert shown.returncode == 0 and len(json.loads(shown.stdout)) == 1
    assert snapshot(store) == before


def test_sigkill_while_logging_to_mlflow_then_sync(workspace: Path) -> None:
    write_suite(workspace, 30)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([*EVALKIT, "run", "suite.yaml", "--no-trace"], cwd=workspace, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = workspace / ".evalkit" / "progress"
    deadline = time.time() + 120
    while time.time() < deadline:  # the run is done once its progress file says so; MLflow comes next
        files = list(progress.glob("*.json")) if progress.exists() else []
        if files and json.loads(files[0].read_text()).get("status") == "finished":
            break
        time.sleep(0.02)
    time.sleep(0.3)  # inside log_run: importing mlflow and creating its database take seconds
    assert proc.poll() is None, "the process ended before it could be killed during MLflow logging"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = workspace / ".evalkit" / "evalkit.duckdb"
    with Store(store, read_only=True) as st:
        (run_id, status, mlflow_id), = st.execute("SELECT run_id, status, mlflow_run_id FROM runs")
        assert st.execute("SELECT count(*) FROM case_results")[0][0] == 30
    assert status == "completed" and mlflow_id is None
    for _ in range(2):  # idempotent
        res = cli(workspace, "sync", "--json")
        assert res.returncode == 0, res.stderr
    with Store(store, read_only=True) as st:
        assert st.execute("SELECT mlflow_run_id FROM runs")[0][0]
    board = json.loads(cli(workspace, "leaderboard", "--suite", "pf", "-f", "json").stdout)
    assert [e["run_id"] for e in board["entries"]] == [run_id]


KILL_MID_WRITE = """
import sys
from datetime import UTC, datetime
from evalkit.schema import CaseResult, Score
from evalkit.store.arrow_rows import result_columns
from evalkit.store.db import Store

st = Store(sys.argv[1])
now = datetime.now(UTC)
results = [CaseResult(run_id="big", case_id=f"c{i}", started_at=now, ended_at=now, output="x" * 200,
                      scores=[Score(name="s", value=1.0, passed=True)]) for i in range(10_000)]
cases, scores = result_columns(results, {})
with st.transaction():  # one transaction: it must land whole or not at all
    for i in range(10_000):
        st._append("case_results", cases)
        st._append("scores", scores)
        if i == 0:
            print("writing", flush=True)  # rows are in the open transaction now
"""


def test_sigkill_during_a_duckdb_write_leaves_the_store_intact(workspace: Path) -> None:
    write_suite(workspace, 25)
    assert cli(workspace, "run", "suite.yaml", "--no-mlflow", "--no-trace").returncode == 0
    store = workspace / ".evalkit" / "evalkit.duckdb"
    before = snapshot(store)
    proc = subprocess.Popen([sys.executable, "-c", KILL_MID_WRITE, str(store)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    time.sleep(0.3)  # more batches go into the same open transaction
    assert proc.poll() is None, "the write finished before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = snapshot(store)  # the store opens (its log replays) ...
    assert after == before  # ... and holds exactly what was committed before: no partial batch
