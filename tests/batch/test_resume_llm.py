"""SIGKILL a 5,000-case run whose agent and judge call the loopback provider, then resume it:
every case is stored exactly once, no score row is duplicated, and the provider sees no repeated
request for a case that had finished before the kill (the response cache covers in-flight ones)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from evalkit.batch.parquet_sink import committed_parts, part_keys
from tests.conftest import REPO
from tests.fakes.openai_server import FakeOpenAIServer, Reply, Request

N = 5000
SUITE = """
name: resume-llm
dataset: cases.jsonl
target: {{model: openai/gpt-4o-mini, prompt: "{{input}}", api_base: "{base}"}}
scorers:
  - correctness
defaults:
  concurrency: 32
"""


def responder(req: Request) -> Reply:
    if "rationale" in req.prompt:
        return Reply.ok(json.dumps({"rationale": "ok", "score": 4}))
    return Reply.ok("Restart the router.")


def case_of(req: Request) -> str:
    m = re.search(r"\[(q\d+)\]", req.prompt)
    assert m, req.prompt[:200]
    return m.group(1)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_and_resume_repays_no_finished_call(workspace: Path, workers: int) -> None:
    """With workers, what counts as finished at the kill is what the workers had committed (merged or not)."""
    server = FakeOpenAIServer(record=True).start()
    server.responder = responder
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENAI_API_KEY": "sk-test",
           "EVALKIT_JUDGE_MODEL": "openai/gpt-4o-mini", "EVALKIT_API_BASE": server.url + "/v1"}
    try:
        (workspace / "cases.jsonl").write_text(
            "".join(json.dumps({"id": f"q{i}", "input": f"[q{i}] VPN drops", "expected": "restart the router"}) + "\n"
                    for i in range(N)))
        (workspace / "suite.yaml").write_text(SUITE.format(base=server.url + "/v1"))
        run = [*EVALKIT_RUN, "run", "suite.yaml", "--no-mlflow", "--no-trace", "--workers", str(workers)]
        proc = subprocess.Popen(run, cwd=workspace, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # a random point of the run, in requests (workers commit every 500 cases: late enough for one part each)
        kill_after = random.Random().randint(200, 3000) if workers == 1 else random.Random().randint(2500, 6000)
        deadline = time.time() + 240
        while time.time() < deadline and server.count < kill_after and proc.poll() is None:
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before the kill"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        shards = workspace / ".evalkit" / "shards"
        deadline = time.time() + 30  # the orphaned workers see the driver gone and exit
        while time.time() < deadline and _live_workers(shards):
            time.sleep(0.1)
        before_kill = Counter(case_of(r) for r in server.requests)
        store = workspace / ".evalkit" / "evalkit.duckdb"
        con = duckdb.connect(str(store), read_only=True)
        run_id, = con.execute("SELECT run_id FROM runs").fetchone()  # type: ignore[misc]
        finished = {r[0] for r in con.execute("SELECT case_id FROM case_results").fetchall()}
        con.close()
        if shards.exists():
            finished |= {c for c, _ in part_keys(committed_parts(shards / run_id))}
        assert 0 < len(finished) < N
        res = subprocess.run([*run, "--resume", run_id, "--json"], cwd=workspace, env=env, capture_output=True,
                             text=True, timeout=600)
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        assert out["run_id"] == run_id and out["summary"]["cases"] == N and out["summary"]["errors"] == 0
        after = Counter(case_of(r) for r in server.requests)
    finally:
        server.stop()
    con = duckdb.connect(str(store), read_only=True)
    rows, distinct = con.execute("SELECT count(*), count(DISTINCT case_id) FROM case_results").fetchone()  # type: ignore[misc]
    srows, sdistinct = con.execute("SELECT count(*), count(DISTINCT (case_id, name)) FROM scores").fetchone()  # type: ignore[misc]
    con.close()
    assert (rows, distinct) == (N, N)
    assert srows == sdistinct == N
    repeated = [c for c in finished if after[c] != before_kill[c]]
    assert repeated == [], f"{len(repeated)} finished cases were called again, e.g. {repeated[:3]}"
    assert all(after[f"q{i}"] >= 2 for i in range(N))  # every case: one agent call and one judge call


def _live_workers(shards: Path) -> bool:
    """Whether a worker process of this test's run is still alive (its command line names the worker body)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if b"evalkit.batch.worker_main" in cmd and cwd == str(shards.parent.parent):
            return True
    return False


EVALKIT_RUN = [sys.executable, "-m", "evalkit.cli.app"]
