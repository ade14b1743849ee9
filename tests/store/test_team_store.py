"""The team store (DuckLake on a PostgreSQL catalog): many writers at once, readers during the writes,
a killed writer resumed, push/pull, every read command, schema versions, Ray workers writing directly.

Each test gets a fresh database on the session's own PostgreSQL server (``tests/fakes/postgres.py``);
without PostgreSQL they skip, except in CI (``EVALKIT_REQUIRE_TEAM_STORE=1``)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from evalkit.errors import StoreError
from evalkit.store import migrations
from evalkit.store.db import Store
from evalkit.store.transfer import run_rows
from tests.conftest import EVALKIT, REPO, evalkit_cli

pytestmark = pytest.mark.team_store

SUITE = "name: {name}\ndataset: cases.jsonl\ntarget: agent:answer\nscorers:\n  - exact_match\n  - contains:\n      key: expected\n"
AGENT = ("import time\n\nfrom opentelemetry import trace\n\n\ndef answer(q):\n"
         "    with trace.get_tracer('agent').start_as_current_span('think'):\n"
         "        time.sleep({delay})\n    return q if not q.endswith('7') else q + ' (wrong)'\n")


def workspace_with(ws: Path, n: int, delay: float = 0.0, names: tuple[str, ...] = ("team",), big: bool = False) -> None:
    (ws / "agent.py").write_text(AGENT.format(delay=delay))
    rows = []
    for i in range(n):
        text = f"q{i}" + ("x" * 40_000 if big and i == 1 else "")  # one value larger than a row holds inline
        rows.append(json.dumps({"id": f"c{i:04d}", "input": text, "expected": text}) + "\n")
    (ws / "cases.jsonl").write_text("".join(rows))
    for name in names:
        (ws / f"{name}.yaml").write_text(SUITE.format(name=name))


def start(ws: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*EVALKIT, *args], cwd=ws, env={**os.environ, "PYTHONPATH": str(REPO), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def facts(url: str) -> dict[str, dict[str, Any]]:
    """Per run: planned, stored cases, distinct cases, scores, spans, distinct spans, traced cases."""
    with Store(url, read_only=True) as st:
        rows = st.query(
            "SELECT r.run_id, r.status, r.cases_total AS planned,"
            " (SELECT count(*) FROM case_results c WHERE c.run_id = r.run_id) AS cases,"
            " (SELECT count(DISTINCT (case_id, repeat)) FROM case_results c WHERE c.run_id = r.run_id) AS distinct_cases,"
            " (SELECT count(*) FROM scores s WHERE s.run_id = r.run_id) AS scores,"
            " (SELECT count(*) FROM spans p WHERE p.run_id = r.run_id) AS spans,"
            " (SELECT count(DISTINCT span_id) FROM spans p WHERE p.run_id = r.run_id) AS distinct_spans,"
            " (SELECT count(DISTINCT p.trace_id) FROM spans p JOIN case_results c USING (run_id, trace_id)"
            "  WHERE p.run_id = r.run_id) AS traced,"
            " (SELECT count(*) FROM spans p WHERE p.run_id = r.run_id AND p.trace_id NOT IN"
            "  (SELECT trace_id FROM case_results c WHERE c.run_id = r.run_id)) AS orphan_spans"
            " FROM runs r")
    return {r.pop("run_id"): r for r in rows}


READER = r'''
import json, os, sys, time
from evalkit.store.db import Store
url, stop = sys.argv[1], sys.argv[2]
reads, seen = 0, []
st = None
while not os.path.exists(stop):
    try:
        if st is None:
            st = Store(url, read_only=True)
        n = st.execute("SELECT count(*) FROM case_results")[0][0]
        st.execute("SELECT count(*), max(duration_ms) FROM spans")
        seen.append(int(n))
        reads += 1
    except Exception as exc:
        if "no store here yet" in str(exc) and not seen:
            time.sleep(0.05)  # before the first writer created the tables
            continue
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        sys.exit(1)
    time.sleep(0.1)
print(json.dumps({"reads": reads, "seen": seen}))
'''


def test_four_writers_and_a_reader_every_case_and_span_exactly_once(tmp_path: Path, team_store_url: str) -> None:
    n, writers = 2000, 4
    names = tuple(f"w{i}" for i in range(writers))
    workspace_with(tmp_path, n, names=names)
    env = {"EVALKIT_STORE": team_store_url}
    Store(team_store_url).close()  # the schema exists before the reader starts (creation races are tested below)
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, team_store_url, str(stop)], cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
    procs = [start(tmp_path, "run", f"{name}.yaml", "--no-mlflow", "--json", "--concurrency", "16", env=env)
             for name in names]
    outs = [p.communicate(timeout=900) for p in procs]
    stop.write_text("")
    polled, _ = reader.communicate(timeout=120)
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode in (0, 1), (out[-3000:], err)  # 1: the gate failed (every 10th answer is wrong)
        assert json.loads(out)["status"] == "completed", err
    report = json.loads(polled.strip().splitlines()[-1])
    assert reader.returncode == 0, report
    assert report["reads"] >= 3 and report["seen"] == sorted(report["seen"]), report  # reads only ever grow
    runs = facts(team_store_url)
    assert len(runs) == writers
    for run in runs.values():
        assert run["status"] == "completed"
        assert run["planned"] == run["cases"] == run["distinct_cases"] == n
        assert run["scores"] == 2 * n
        assert run["spans"] == run["distinct_spans"] and run["traced"] == n and run["orphan_spans"] == 0
        assert run["spans"] >= 2 * n  # the case's span and the agent's own, at least


def test_a_killed_writer_leaves_the_store_consistent_and_resume_completes_it(tmp_path: Path,
                                                                             team_store_url: str) -> None:
    n = 2000
    workspace_with(tmp_path, n, delay=0.02)  # ~5 s of work at 8 in flight: killed part-way
    env = {"EVALKIT_STORE": team_store_url}
    p = start(tmp_path, "run", "team.yaml", "--no-mlflow", "--concurrency", "8", env=env)
    deadline = time.monotonic() + 300
    stored = 0
    while time.monotonic() < deadline and stored < 300:
        time.sleep(0.3)
        try:
            with Store(team_store_url, read_only=True) as st:
                stored = st.execute("SELECT count(*) FROM case_results")[0][0]
        except StoreError:
            pass  # not created yet
    assert stored >= 300 and p.poll() is None, "the run finished before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
    (run_id, run), = facts(team_store_url).items()
    assert run["status"] == "running" and 300 <= run["cases"] < n, (stored, run)  # what it committed, no more
    assert run["cases"] == run["distinct_cases"] and run["scores"] == 2 * run["cases"]  # whole batches only
    r = evalkit_cli(tmp_path, "run", "team.yaml", "--resume", run_id, "--no-mlflow", "--json", env=env)
    assert r.returncode in (0, 1), r.stderr
    assert json.loads(r.stdout)["status"] == "completed"
    run = facts(team_store_url)[run_id]
    assert run["status"] == "completed" and run["cases"] == run["distinct_cases"] == n
    assert run["scores"] == 2 * n and run["traced"] == n and run["orphan_spans"] == 0
    assert run["spans"] == run["distinct_spans"]


def test_push_and_pull_round_trip_a_run_with_no_differences(tmp_path: Path, team_store_url: str) -> None:
    workspace_with(tmp_path, 50, big=True)
    local = tmp_path / ".evalkit" / "evalkit.duckdb"
    r = evalkit_cli(tmp_path, "run", "team.yaml", "--no-mlflow", "--json", env={"EVALKIT_STORE": str(local)})
    run_id = json.loads(r.stdout)["run_id"]
    assert list((tmp_path / ".evalkit" / "evalkit.duckdb.values").rglob("*.json")), "no side file: nothing large"
    for _ in range(2):  # twice: the second push replaces the first
        pushed = evalkit_cli(tmp_path, "push", run_id, "--to", team_store_url, "--json")
        assert pushed.returncode == 0, pushed.stderr
    rows = json.loads(pushed.stdout)["rows"]
    assert rows["case_results"] == 50 and rows["scores"] == 100 and rows["spans"] >= 100
    other = tmp_path / "elsewhere"
    other.mkdir()
    pulled = evalkit_cli(other, "pull", run_id[:12], "--from", team_store_url, "--json")
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["rows"] == rows
    with Store(local, read_only=True) as a, Store(team_store_url, read_only=True) as b, \
            Store(other / ".evalkit" / "evalkit.duckdb", read_only=True) as c:
        original, shared, back = run_rows(a, run_id), run_rows(b, run_id), run_rows(c, run_id)
        assert b.execute("SELECT count(*) FROM runs")[0][0] == 1
    assert original == shared == back  # 0 differences, the 40 KB value included
    assert any("x" * 40_000 in str(v) for row in back["case_results"] for v in row)
    password = team_store_url.split("//")[1].split("@")[0].split(":")[1]
    for out in (pushed, pulled):
        assert password not in out.stdout + out.stderr and "[REDACTED]" in out.stdout


def test_every_read_command_works_on_the_team_store_and_never_shows_the_password(tmp_path: Path,
                                                                                 team_store_url: str) -> None:
    workspace_with(tmp_path, 30, names=("team",))
    env = {"EVALKIT_STORE": team_store_url}
    ids = [json.loads(evalkit_cli(tmp_path, "run", "team.yaml", "--no-mlflow", "--json", env=env).stdout)["run_id"]
           for _ in range(2)]
    password = team_store_url.split("//")[1].split("@")[0].split(":")[1]
    commands = [
        ("runs", "--json"), ("show", ids[0], "--json"), ("show", ids[0], "--failed"), ("trace", ids[0], "c0001"),
        ("traces", ids[0]), ("report", ids[0], "-o", str(tmp_path / "r.html")),
        ("sql", "SELECT count(*) AS n FROM spans JOIN case_results USING (run_id, trace_id)"),
        ("compare", ids[0], ids[1]), ("status", ids[0]), ("doctor",), ("compact",),
    ]
    for args in commands:
        r = evalkit_cli(tmp_path, *args, env=env)
        assert r.returncode == 0, (args, r.stderr)
        assert password not in r.stdout + r.stderr, args
    runs = json.loads(evalkit_cli(tmp_path, "runs", "--json", env=env).stdout)
    assert {r["run_id"] for r in runs} == set(ids)
    shown = json.loads(evalkit_cli(tmp_path, "show", ids[0], "--json", env=env).stdout)
    assert shown["total"] == 30 and shown["failed_total"] == 3  # c0007, c0017, c0027
    assert password not in (tmp_path / "r.html").read_text()
    after = facts(team_store_url)  # compaction changed files, not rows
    assert all(r["cases"] == 30 and r["scores"] == 60 for r in after.values())


CREATE = r'''
import sys
from evalkit.store.db import Store
with Store(sys.argv[1]) as st:
    print(st.execute("SELECT count(*) FROM schema_version")[0][0])
'''


def test_clients_creating_the_store_at_once_agree_on_one_schema(tmp_path: Path, team_store_url: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", CREATE, team_store_url], cwd=tmp_path, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    with Store(team_store_url, read_only=True) as st:
        versions = [r[0] for r in st.execute("SELECT version FROM schema_version ORDER BY 1")]
        tables = {r[0] for r in st.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                                           "current_database()")}
    assert versions == [v for v, _ in migrations.MIGRATIONS]  # each migration applied once
    assert {"runs", "case_results", "scores", "spans", "unattributed_spans"} <= tables


def test_an_older_client_is_told_and_writes_nothing(tmp_path: Path, team_store_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    workspace_with(tmp_path, 5)
    env = {"EVALKIT_STORE": team_store_url}
    assert evalkit_cli(tmp_path, "run", "team.yaml", "--no-mlflow", env=env).returncode in (0, 1)
    from evalkit.store import db

    before = facts(team_store_url)
    with Store(team_store_url) as st:  # a newer evalkit migrated the shared store
        st.execute("INSERT INTO schema_version VALUES (?, now())", [migrations.LATEST + 1])
    for args in (("run", "team.yaml", "--no-mlflow"), ("runs",)):
        r = evalkit_cli(tmp_path, *args, env=env)
        assert r.returncode == 3, r.stderr
        assert f"newer than this evalkit (v{migrations.LATEST})" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    monkeypatch.setattr(db, "LATEST", migrations.LATEST + 1)  # read it as the newer evalkit would
    assert facts(team_store_url) == before


def test_a_newer_client_migrates_a_store_older_clients_made(team_store_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.store import db

    old = migrations.MIGRATIONS[:-1]
    with monkeypatch.context() as m:  # the previous evalkit, one migration short
        m.setattr(db, "MIGRATIONS", old)
        m.setattr(db, "LATEST", old[-1][0])
        with Store(team_store_url) as st:
            st.execute("INSERT INTO runs (run_id, suite, status) VALUES ('r1', 's', 'completed')")
    with Store(team_store_url) as st:
        assert st.execute("SELECT max(version) FROM schema_version")[0][0] == migrations.LATEST
        assert st.execute("SELECT run_id FROM runs") == [("r1",)]


def test_a_retried_chunk_writes_each_case_once_into_the_team_store(tmp_path: Path, team_store_url: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Ray: a chunk run twice in one process (what Ray's retry of a dead worker does)."""
    from evalkit.batch.ray_engine import ChunkJob, run_chunk
    from evalkit.suite import load_suite

    workspace_with(tmp_path, 40)
    monkeypatch.chdir(tmp_path)
    suite = load_suite(tmp_path / "team.yaml")
    with Store(team_store_url) as st:
        st.create_run({"run_id": "r-chunk", "suite": "team", "status": "running", "cases_total": 40})
    job = ChunkJob(run_id="r-chunk", suite="team", suite_file=str(tmp_path / "team.yaml"), suite_sha256="x",
                   scorer_names=[s.name for s in suite.scorers], cwd=str(tmp_path), env={}, overrides={},
                   concurrency=4, timeout_s=30, repeats=1, cache=False, tracing=True, shard_dir=str(tmp_path / "no"),
                   chunk=0, cases=list(suite.cases), store_url=team_store_url)
    first = run_chunk(job)
    again = run_chunk(job)
    assert (first.cases, again.cases) == (40, 0) and first.parts == 0 and first.spans and first.spans >= 80
    assert not (tmp_path / "no").exists()
    run = facts(team_store_url)["r-chunk"]
    assert run["cases"] == run["distinct_cases"] == 40 and run["scores"] == 80 and run["traced"] == 40


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (pip install 'evalkit[ray]')")
def test_ray_workers_write_the_team_store_directly(tmp_path: Path, team_store_url: str) -> None:
    workspace_with(tmp_path, 200)
    env = {"EVALKIT_STORE": team_store_url}
    r = evalkit_cli(tmp_path, "run", "team.yaml", "--engine", "ray", "--no-mlflow", "--json", env=env)
    assert r.returncode in (0, 1), r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "completed"
    run = facts(team_store_url)[out["run_id"]]
    assert run["cases"] == run["distinct_cases"] == 200 and run["scores"] == 400 and run["traced"] == 200
    assert not list((tmp_path / ".evalkit").glob("shards/*/*"))  # no shard files: the workers wrote the store


def test_pytest_sessions_record_into_the_team_store_with_and_without_xdist(tmp_path: Path, team_store_url: str) -> None:
    """The pytest door: a plain session and a two-worker one (shards merged into the team store)."""
    workspace_with(tmp_path, 20)
    (tmp_path / "test_team.py").write_text(
        "import evalkit\nfrom agent import answer\n\n\n@evalkit.cases('team.yaml')\n"
        "def test_case(case, evaluate):\n    evaluate(case, answer(case.input_text))\n")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}", "EVALKIT_STORE": team_store_url}
    for extra in ([], ["-n", "2"]):
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_team.py",
                            "--evalkit-no-mlflow", *extra], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600)
        assert "could not be fully recorded" not in r.stdout + r.stderr, r.stdout[-3000:]
        assert r.returncode in (0, 1), r.stdout[-3000:]  # 1 only if the suite gate fails
    runs = facts(team_store_url)
    assert len(runs) == 2
    for run in runs.values():
        assert run["cases"] == run["distinct_cases"] == 20 and run["scores"] == 40 and run["traced"] == 20
    assert not (tmp_path / ".evalkit" / "evalkit.duckdb").exists()
