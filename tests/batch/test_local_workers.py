"""Local worker processes (``--workers N``): the runner's ledger, resume, ordering and verdict, on several cores."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from evalkit.batch import driver
from evalkit.batch.worker_count import auto_workers, plan_workers
from evalkit.errors import UserError
from evalkit.pipeline import RunSettings, resolve_settings, run_suite
from evalkit.store import reads
from evalkit.store.db import Store, open_store
from evalkit.suite import Suite, load_suite
from evalkit.targets import build_target
from tests.conftest import EVALKIT, REPO, evalkit_cli

AGENT = '''
import asyncio, os, signal

def _log(case_id):
    log = os.environ.get("AGENT_LOG")
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, (case_id + "\\n").encode())
        os.close(fd)

async def answer(case):
    _log(case.id)
    marker = os.environ.get("AGENT_KILL_MARKER")
    if marker and case.id == os.environ.get("AGENT_KILL_ID") and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)  # this worker dies mid-chunk, once
    if case.id == os.environ.get("AGENT_HANG_ID"):
        await asyncio.sleep(30)  # past the case timeout
    await asyncio.sleep(float(os.environ.get("AGENT_SLEEP", "0")))
    if case.id.endswith("7"):
        raise RuntimeError("flaky backend")
    n = int(case.id[1:])
    return "yes " * (n % 4) + case.input
'''


def _suite(ws: Path, n: int, *, defaults: str = "  concurrency: 4\n") -> Path:
    (ws / "workers_agent.py").write_text(AGENT)
    with (ws / "cases.jsonl").open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"q{i:04d}", "input": f"q{i}", "expected": f"q{i}",
                                "tags": ["odd" if i % 2 else "even"]}) + "\n")
    path = ws / "suite.yaml"
    path.write_text("name: workers\ndataset: cases.jsonl\ntarget: workers_agent:answer\nscorers:\n"
                    "  - contains:\n      key: expected\n  - length:\n      max_words: 2\n"
                    "thresholds:\n  - length/pass_rate>=0.4\n"
                    f"defaults:\n{defaults}")
    return path


def _run(suite_file: Path, store: Store, door: str = "cli", **settings: object):
    base: dict[str, object] = {"mlflow": False, "max_error_rate": 1.0}
    return run_suite(load_suite(suite_file), RunSettings(**{**base, **settings}), door=door,  # type: ignore[arg-type]
                     store=store, handle_signals=False)


def _keys(store: Store, run_id: str) -> Counter[tuple[str, int]]:
    rows = store.execute("SELECT case_id, repeat FROM case_results WHERE run_id = ?", [run_id])
    return Counter((str(c), int(r)) for c, r in rows)


def test_every_case_lands_once_with_errors_and_a_timeout(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_HANG_ID", "q0013")
    suite_file = _suite(workspace, 120)
    with open_store() as store:
        run = _run(suite_file, store, door="api", workers=2, timeout_s=1.0, repeats=2)
        assert run.status == "completed", run.notes
        assert run.summary.planned == 240 and run.summary.missing == 0
        keys = _keys(store, run.run_id)
        assert len(keys) == 240 and set(keys.values()) == {1}
        books = reads.ledger(store, run.run_id)
        assert (books.completed, books.errored, books.cancelled) == (214, 26, 0)
        cases = reads.case_frame(store, run.run_id)
        kinds = Counter(cases.filter(pl.col("status") != "ok")["error_kind"].to_list())
        assert kinds == {"target_exception": 24, "timeout": 2}
        config = store.get_run(run.run_id)["config"]
        assert config["workers"] == 2 and config["local_workers"]["workers"] == 2
        assert not (workspace / ".evalkit" / "shards" / run.run_id).exists()


def test_two_workers_give_the_verdict_and_case_results_of_one(workspace: Path) -> None:
    suite_file = _suite(workspace, 150)
    with open_store() as store:
        one = _run(suite_file, store, workers=1)
        two = _run(suite_file, store, workers=2)
        assert store.get_run(one.run_id)["config"]["workers"] == 1
        assert store.get_run(two.run_id)["config"]["workers"] == 2

        def same(metrics: dict[str, float]) -> dict[str, float]:
            return {k: v for k, v in metrics.items() if not k.startswith(("latency", "cost"))}

        assert same(two.summary.metrics()) == same(one.summary.metrics())
        assert (two.status, two.gate.passed, two.gate.status, two.exit_code) == (
            one.status, one.gate.passed, one.gate.status, one.exit_code)
        assert [c.model_dump() for c in two.gate.checks] == [c.model_dump() for c in one.gate.checks]
        cols = ["case_id", "repeat", "status", "outcome", "error", "error_kind", "tags"]
        assert reads.case_frame(store, two.run_id).select(cols).equals(reads.case_frame(store, one.run_id).select(cols))
        scols = ["case_id", "repeat", "name", "value", "passed", "error"]
        assert reads.score_frame(store, two.run_id).select(scols).equals(
            reads.score_frame(store, one.run_id).select(scols))

        def page(run_id: str) -> list[tuple[object, ...]]:  # what `evalkit show` and the report list, in order
            return [(c["case_id"], c["repeat"], c["failed"], c["output"], [(s["name"], s["value"]) for s in c["scores"]])
                    for c in reads.cases_with_scores(store, run_id)]

        assert page(two.run_id) == page(one.run_id)
        assert [r["case_id"] for r in reads.case_page(store, two.run_id, limit=40)[0]] == [
            r["case_id"] for r in reads.case_page(store, one.run_id, limit=40)[0]]


def test_every_case_has_its_spans(workspace: Path) -> None:
    suite_file = _suite(workspace, 100)
    with open_store() as store:
        run = _run(suite_file, store, workers=2, tracing=True)
        traced = store.execute("SELECT count(DISTINCT trace_id) FROM spans WHERE run_id = ?", [run.run_id])[0][0]
        assert traced == 100
        missing = store.execute("SELECT count(*) FROM case_results c WHERE run_id = $r AND NOT EXISTS (SELECT 1"
                                " FROM spans s WHERE s.trace_id = c.trace_id AND s.name = 'evalkit.case')",
                                {"r": run.run_id})[0][0]
        assert missing == 0
        orphans = store.execute("SELECT count(*) FROM spans WHERE run_id = $r AND trace_id NOT IN (SELECT trace_id"
                                " FROM case_results WHERE run_id = $r)", {"r": run.run_id})[0][0]
        assert orphans == 0


def test_a_worker_killed_mid_chunk_loses_nothing(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 200  # chunks of 25 (2 workers × 4 chunks each), committed every 5 cases
    monkeypatch.setattr(driver, "FLUSH_ROWS", 5)
    monkeypatch.setenv("AGENT_KILL_ID", "q0120")  # the 21st case of chunk 4
    monkeypatch.setenv("AGENT_KILL_MARKER", str(workspace / "killed"))
    monkeypatch.setenv("AGENT_LOG", str(workspace / "calls.log"))
    suite_file = _suite(workspace, n)
    with open_store() as store:
        run = _run(suite_file, store, workers=2, tracing=True)
        assert (workspace / "killed").exists()
        assert run.status == "completed" and run.summary.missing == 0
        assert any("chunk 4: the worker died (killed by SIGKILL); the chunk ran again" in x for x in run.notes)
        keys = _keys(store, run.run_id)
        assert len(keys) == n and set(keys.values()) == {1}
        traced = store.execute("SELECT count(DISTINCT trace_id) FROM spans WHERE run_id = ?", [run.run_id])[0][0]
        assert traced == n  # the dead attempt's committed cases kept their spans
    calls = Counter((workspace / "calls.log").read_text().split())
    again = sorted(c for c, k in calls.items() if k > 1)
    assert "q0120" in again and all(calls[f"q{i:04d}"] == 1 for i in range(100, 110))  # committed: not run again
    assert len(again) <= 10, again  # only what the dead worker had not committed yet


def _wait_for(predicate, what: str, proc: subprocess.Popen[bytes], limit_s: float = 300) -> None:
    deadline = time.monotonic() + limit_s  # a guard against a hung run, not a timing assumption
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what}"
        time.sleep(0.05)


def _stored(store_path: Path) -> tuple[str | None, int]:
    if not store_path.exists():
        return None, 0
    try:
        with open_store(store_path, read_only=True) as st:
            runs = st.execute("SELECT run_id FROM runs")
            if not runs:
                return None, 0
            run_id = str(runs[0][0])
            return run_id, reads.ledger(st, run_id).recorded
    except UserError:  # not created yet
        return None, 0


def test_resume_after_the_driver_is_interrupted(workspace: Path) -> None:
    n = 300
    _suite(workspace, n, defaults="  concurrency: 4\n  workers: 2\n")  # the suite's default: two workers
    store_path = workspace / ".evalkit" / "evalkit.duckdb"
    env = {**os.environ, "PYTHONPATH": str(REPO), "AGENT_SLEEP": "0.02"}
    proc = subprocess.Popen([*EVALKIT, "run", "suite.yaml", "--no-mlflow", "--max-error-rate", "1"], cwd=workspace,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _stored(store_path)[1] >= 30, "stored cases", proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()[-2000:]
    run_id, recorded = _stored(store_path)
    assert run_id is not None and recorded == n  # finished, or recorded cancelled: the ledger is whole
    with open_store(store_path, read_only=True) as st:
        run = st.get_run(run_id)
        books = reads.ledger(st, run_id)
        assert run["status"] == "interrupted" and run["config"]["workers"] == 2
        assert books.cancelled > 0 and books.completed + books.errored >= 30
        before = {tuple(r) for r in st.execute("SELECT case_id, repeat FROM case_results WHERE run_id = ?"
                                               " AND outcome <> 'cancelled'", [run_id])}

    res = evalkit_cli(workspace, "run", "suite.yaml", "--no-mlflow", "--max-error-rate", "1", "--resume", run_id,
                      "--workers", "2", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert out["run_id"] == run_id and out["status"] == "completed" and out["summary"]["cases"] == n
    with open_store(store_path, read_only=True) as st:
        keys = _keys(st, run_id)
        assert len(keys) == n and set(keys.values()) == {1}
        assert reads.ledger(st, run_id).cancelled == 0
        after = {tuple(r) for r in st.execute("SELECT case_id, repeat FROM case_results WHERE run_id = ?", [run_id])}
        scores = st.execute("SELECT count(*), count(DISTINCT (case_id, repeat, name)) FROM scores WHERE run_id = ?",
                            [run_id])[0]
    assert before <= after and scores == (2 * n, 2 * n)
    assert not list((workspace / ".evalkit").glob("shards/*/*"))


def test_a_second_ctrl_c_cancels_the_chunks_in_flight(workspace: Path) -> None:
    n = 200
    _suite(workspace, n)
    store_path = workspace / ".evalkit" / "evalkit.duckdb"
    env = {**os.environ, "PYTHONPATH": str(REPO), "AGENT_SLEEP": "0.1"}
    proc = subprocess.Popen([*EVALKIT, "run", "suite.yaml", "--no-mlflow", "--workers", "2", "--max-error-rate", "1",
                             "--json"], cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _stored(store_path)[1] >= 10, "stored cases", proc)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()[-2000:]
    summary = json.loads(out)["summary"]
    assert summary["status"] == "interrupted" and summary["missing"] == 0
    run_id, recorded = _stored(store_path)
    assert recorded == n
    with open_store(store_path, read_only=True) as st:
        assert reads.ledger(st, run_id).cancelled > 0  # type: ignore[arg-type]
        assert len(_keys(st, run_id)) == n  # type: ignore[arg-type]


def test_workers_auto_and_the_settings_layers(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert auto_workers(1999, from_file=True, cores=8) == 1
    assert auto_workers(2000, from_file=True, cores=8) == 2
    assert auto_workers(5500, from_file=True, cores=4) == 4
    assert auto_workers(100_000, from_file=True, cores=16) == 8
    assert auto_workers(5000, from_file=False, cores=8) == 1
    assert auto_workers(5000, from_file=True, cores=1) == 1

    assert resolve_settings({}, None, {})[0].workers == "auto"
    assert resolve_settings({}, {"workers": 2}, {})[0].workers == 2
    assert resolve_settings({}, {"workers": 2}, {"EVALKIT_WORKERS": "3"})[0].workers == 3
    assert resolve_settings({"workers": "auto"}, {"workers": 2}, {"EVALKIT_WORKERS": "3"})[0].workers == "auto"
    assert resolve_settings({"workers": "4"}, None, {})[0].workers == 4
    with pytest.raises(UserError, match="EVALKIT_WORKERS in the environment"):
        resolve_settings({}, None, {"EVALKIT_WORKERS": "lots"})
    with pytest.raises(UserError, match="'workers' in the suite's defaults"):
        resolve_settings({}, {"workers": 0}, {})

    from evalkit.batch import worker_count

    monkeypatch.setattr(worker_count, "cores", lambda: 2)
    suite = load_suite(_suite(workspace, 10))
    auto = RunSettings(workers="auto")
    assert plan_workers(suite, auto, 1999, "cli") == 1
    assert plan_workers(suite, auto, 5000, "cli") == 2
    assert plan_workers(suite, auto, 5000, "api") == 2  # the file rebuilds the same target and scorers
    replaced = dataclasses.replace(suite, target=build_target(lambda q: q))
    assert plan_workers(replaced, auto, 5000, "api") == 1  # replaced in Python: the file cannot rebuild it
    with pytest.raises(UserError, match=r"workers=2: the suite's target or scorers were replaced in Python"):
        plan_workers(replaced, RunSettings(workers=2), 10, "api")
    assert plan_workers(suite, RunSettings(workers=3, engine="ray"), 10, "cli") == 3  # Ray's num_workers
    assert plan_workers(suite, RunSettings(engine="ray"), 10, "cli") is None  # the cluster's CPUs


def test_workers_for_a_suite_without_a_file_is_bad_input(workspace: Path) -> None:
    from evalkit.schema import Case
    from evalkit.scorers.registry import build_scorer

    suite = Suite(name="inline", cases=[Case(id=f"c{i}", input=f"q{i}") for i in range(5)],
                  target=build_target(lambda q: q.upper()), scorers=[build_scorer("exact_match")])
    with open_store() as store:
        with pytest.raises(UserError) as err:
            run_suite(suite, RunSettings(workers=2, mlflow=False), frozenset({"workers"}), door="api", store=store,
                      handle_signals=False)
        assert "\n" not in err.value.message
        assert err.value.message.startswith("workers=2: worker processes rebuild the target and scorers from the "
                                            "suite file, and this suite has none")
        assert store.execute("SELECT count(*) FROM runs")[0][0] == 0  # refused before anything was stored
        auto = run_suite(suite, RunSettings(mlflow=False), door="api", store=store, handle_signals=False)
        assert auto.status == "completed" and store.get_run(auto.run_id)["config"]["workers"] == 1

    _suite(workspace, 5)
    bad = evalkit_cli(workspace, "run", "suite.yaml", "--no-mlflow", "--workers", "two")
    assert bad.returncode == 2 and "--workers 'two'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def _worker_pids(cwd: Path) -> list[int]:
    """Live local worker processes whose working directory is ``cwd`` (Linux /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"evalkit.batch.worker_main" in (proc / "cmdline").read_bytes() and (proc / "cwd").resolve() == cwd:
                state = next((ln for ln in (proc / "status").read_text().splitlines() if ln.startswith("State:")), "")
                if "zombie" not in state:
                    pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs Linux /proc to find the worker processes")
def test_a_killed_driver_takes_its_workers_along_and_resume_finishes_the_run(workspace: Path) -> None:
    n = 300
    _suite(workspace, n)
    store_path = workspace / ".evalkit" / "evalkit.duckdb"
    env = {**os.environ, "PYTHONPATH": str(REPO), "AGENT_SLEEP": "0.02"}
    proc = subprocess.Popen([*EVALKIT, "run", "suite.yaml", "--no-mlflow", "--workers", "2", "--max-error-rate", "1"],
                            cwd=workspace, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _stored(store_path)[1] >= 30 and len(_worker_pids(workspace.resolve())) == 2,
                  "stored cases and two workers", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 60
    while _worker_pids(workspace.resolve()):  # they notice the driver is gone and exit
        assert time.monotonic() < deadline, "workers outlived their driver"
        time.sleep(0.05)
    run_id, recorded = _stored(store_path)
    assert run_id is not None and 0 < recorded < n
    res = evalkit_cli(workspace, "run", "suite.yaml", "--no-mlflow", "--max-error-rate", "1", "--resume", run_id,
                      "--workers", "2", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["summary"]["cases"] == n
    with open_store(store_path, read_only=True) as st:
        keys = _keys(st, run_id)
    assert len(keys) == n and set(keys.values()) == {1}


@pytest.mark.team_store
def test_workers_write_a_team_store_directly(tmp_path: Path, team_store_url: str) -> None:
    from tests.store.test_team_store import facts, workspace_with

    workspace_with(tmp_path, 120)
    r = evalkit_cli(tmp_path, "run", "team.yaml", "--workers", "2", "--no-mlflow", "--json",
                    env={"EVALKIT_STORE": team_store_url})
    assert r.returncode in (0, 1), r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "completed"
    run = facts(team_store_url)[out["run_id"]]
    assert run["cases"] == run["distinct_cases"] == 120 and run["scores"] == 240 and run["traced"] == 120
    assert run["orphan_spans"] == 0
    assert not list((tmp_path / ".evalkit").glob("shards/*/*"))  # no shard files: the workers wrote the store


def test_resume_in_process_merges_what_workers_had_committed(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts a killed driver never merged count when the run continues with ``--workers 1``."""
    from evalkit.batch.chunks import ChunkJob, run_chunk

    monkeypatch.setenv("AGENT_LOG", str(workspace / "calls.log"))
    suite_file = _suite(workspace, 60)
    suite = load_suite(suite_file)
    with open_store() as store:
        store.create_run({"run_id": "r-left", "suite": suite.name, "status": "running", "cases_total": 60,
                          "repeats": 1})
        shards = driver.shard_dir(store, "r-left")
        report = run_chunk(ChunkJob(
            run_id="r-left", suite=suite.name, suite_file=str(suite_file), suite_sha256="x",
            scorer_names=[s.name for s in suite.scorers], cwd=str(workspace), env={}, overrides={}, concurrency=2,
            timeout_s=10, repeats=1, cache=False, tracing=True, shard_dir=str(shards), chunk=0,
            cases=list(suite.cases[:20]), flush_rows=5))
        assert report.cases == 20 and report.parts >= 4 and _keys(store, "r-left") == Counter()
        run = _run(suite_file, store, workers=1, resume="r-left", tracing=True)
        assert run.run_id == "r-left" and run.status == "completed" and run.summary.missing == 0
        keys = _keys(store, "r-left")
        assert len(keys) == 60 and set(keys.values()) == {1}
        traced = store.execute("SELECT count(DISTINCT trace_id) FROM spans WHERE run_id = 'r-left'")[0][0]
        assert traced == 60 and not shards.exists()
    calls = Counter((workspace / "calls.log").read_text().split())
    assert len(calls) == 60 and set(calls.values()) == {1}  # the 20 committed cases did not run again
