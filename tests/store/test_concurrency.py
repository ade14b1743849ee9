"""One workspace, many processes: readers while a run writes, runs and pytest sessions side by side,
nothing held while idle, and a bounded, reported wait where another program keeps the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from evalkit.errors import StoreLocked
from evalkit.store.db import Store
from evalkit.store.lease import IDLE_S
from tests.conftest import EVALKIT, REPO, evalkit_cli

SUITE = "name: {name}\ndataset: cases.jsonl\ntarget: agent:answer\nscorers:\n  - exact_match\n"
AGENT = "import time\n\n\ndef answer(q):\n    time.sleep({delay})\n    return q\n"


def workspace_with(ws: Path, n: int, delay: float, names: tuple[str, ...] = ("conc",)) -> None:
    (ws / "agent.py").write_text(AGENT.format(delay=delay))
    (ws / "cases.jsonl").write_text("".join(json.dumps({"id": f"c{i:03d}", "input": f"q{i}", "expected": f"q{i}"})
                                            + "\n" for i in range(n)))
    for name in names:
        (ws / f"{name}.yaml").write_text(SUITE.format(name=name))


def start(ws: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([*EVALKIT, *args], cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(p: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=600)
    return p.returncode, out, err


def counts(store: Path) -> dict[str, tuple[int, int]]:
    """run id -> (cases planned, case rows stored)."""
    with Store(store, read_only=True) as st:
        rows = st.execute("SELECT r.run_id, r.cases_total, count(c.case_id) FROM runs r LEFT JOIN case_results c "
                          "USING (run_id) GROUP BY ALL")
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


HELD_AGENT = ("import pathlib\nimport time\n\n\ndef answer(q):\n    deadline = time.monotonic() + 120\n"
              "    while int(q[1:]) >= 30 and not pathlib.Path('go').exists() and time.monotonic() < deadline:\n"
              "        time.sleep(0.02)\n    return q\n")


def test_readers_see_a_run_grow_while_it_writes(workspace: Path) -> None:
    workspace_with(workspace, 60, 0.0)
    (workspace / "agent.py").write_text(HELD_AGENT)  # the second half waits until a reader saw the first
    run = start(workspace, "run", "conc.yaml", "--no-mlflow", "--concurrency", "2", "--json")
    seen: list[int] = []
    reads = 0
    while run.poll() is None:
        if any(0 < n < 60 for n in seen):
            (workspace / "go").touch()
        r = evalkit_cli(workspace, "runs", "--json")  # a separate process, as a user's second terminal
        if r.returncode == 0 and json.loads(r.stdout):
            reads += 1
            run_id = json.loads(r.stdout)[0]["run_id"]
            shown = evalkit_cli(workspace, "show", run_id, "--json", "--all")
            assert shown.returncode == 0, shown.stderr
            seen.append(json.loads(shown.stdout)["total"])
        else:
            assert r.returncode == 0 or "no store here yet" in r.stderr, r.stderr  # before the first write
    code, out, err = finish(run)
    assert code == 0, err
    assert reads >= 1 and seen == sorted(seen)  # every read worked, and saw the run only grow
    assert any(0 < n < 60 for n in seen), seen  # ... including part-way through
    assert counts(workspace / ".evalkit" / "evalkit.duckdb")[json.loads(out)["run_id"]] == (60, 60)


def test_two_runs_and_a_pytest_session_at_once_each_land_whole(workspace: Path) -> None:
    workspace_with(workspace, 40, 0.01, names=("first", "second"))
    (workspace / "test_conc.py").write_text(
        "import evalkit\nfrom agent import answer\n\n\n@evalkit.cases('first.yaml')\n"
        "def test_case(case, evaluate):\n    evaluate(case, answer(case.input_text))\n")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{workspace}"}
    procs = [start(workspace, "run", "first.yaml", "--no-mlflow", "--json"),
             start(workspace, "run", "second.yaml", "--no-mlflow", "--json"),
             subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_conc.py",
                               "--evalkit-no-mlflow"], cwd=workspace, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)]
    results = [finish(p) for p in procs]
    for code, out, err in results:
        assert code == 0, out[-2000:] + err[-2000:]
        assert "could not be fully recorded" not in out + err
    stored = counts(workspace / ".evalkit" / "evalkit.duckdb")
    assert len(stored) == 3 and all(planned == rows == 40 for planned, rows in stored.values()), stored
    with Store(workspace / ".evalkit" / "evalkit.duckdb", read_only=True) as st:
        spans = st.execute("SELECT count(DISTINCT run_id) FROM spans")[0][0]
    assert spans == 3  # traces landed for every run too


def test_an_idle_store_is_not_held(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    st = Store(path)
    try:
        st.execute("SELECT 1")
        time.sleep(IDLE_S * 5)
        # another process can take the file for writing while this store is open but idle
        other = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}).close()"],
                               capture_output=True, text=True, timeout=120)
        assert other.returncode == 0, other.stderr
        assert st.execute("SELECT count(*) FROM runs")[0][0] == 0  # and this one reopens on its next use
    finally:
        st.close()


HOLDER = """
import sys, time
from evalkit.store.db import Store
st = Store(sys.argv[1])
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < end:  # a busy writer: one short write after another, never idle
    st.execute("INSERT INTO schema_version VALUES (0, now())")
    n += 1
print(n, st.lease.handovers, flush=True)
st.close()
"""


def test_a_busy_writer_hands_over_when_another_process_knocks(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "4"], env=env, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with Store(path) as st:  # a second writer gets its turn while the first keeps writing
            st.execute("INSERT INTO schema_version VALUES (-1, now())")
            assert st.lease.waited_s >= 0
        alive_after_turn = holder.poll() is None
        out, _ = holder.communicate(timeout=120)
    finally:
        holder.kill()
    writes, handovers = (int(x) for x in out.split())
    assert alive_after_turn, "the second writer got in only after the first had stopped"
    assert handovers >= 1 and writes > 1
    with Store(path, read_only=True) as st:
        assert st.execute("SELECT count(*) FROM schema_version WHERE version = -1")[0][0] == 1


def test_a_foreign_holder_means_a_bounded_reported_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    monkeypatch.setenv("EVALKIT_STORE_WAIT", "2.5")
    monkeypatch.setattr("evalkit.store.lease.NOTICE_S", 0.5)
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); "
                               "print('ok', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(StoreLocked) as err:
            Store(path, read_only=True)
        assert f"PID {holder.pid}" in str(err.value) and "EVALKIT_STORE_WAIT" in str(err.value)
        assert "waiting for the store" in capfd.readouterr().err  # said once the wait grew long
    finally:
        holder.kill()
        holder.wait()
    with Store(path) as st:  # nothing was harmed: the store opens once the holder is gone
        assert st.execute("SELECT count(*) FROM runs")[0][0] == 0
    duckdb.connect(str(path)).close()


def test_bad_wait_setting_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.errors import UserError

    path = tmp_path / "s.duckdb"
    Store(path).close()
    monkeypatch.setenv("EVALKIT_STORE_WAIT", "soon")
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); "
                               "print('ok', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(UserError, match="EVALKIT_STORE_WAIT 'soon'"):
            Store(path)
    finally:
        holder.kill()
        holder.wait()


def test_status_tells_a_live_run_from_one_whose_process_died(workspace: Path) -> None:
    from datetime import UTC, datetime

    from evalkit.batch.progress_file import progress_path, write_progress

    store = workspace / ".evalkit" / "evalkit.duckdb"
    with Store(store) as st:
        st.create_run({"run_id": "r-live", "suite": "s", "status": "running", "started_at": datetime.now(UTC),
                       "cases_total": 5})
    write_progress(progress_path(store, "r-live"), {"run_id": "r-live", "status": "running", "done": 1, "total": 5})
    live = json.loads(evalkit_cli(workspace, "status", "r-live", "--json").stdout)  # this test's process runs it
    assert live["status"] == "running" and not live.get("stale")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    snap = json.loads(progress_path(store, "r-live").read_text())
    progress_path(store, "r-live").write_text(json.dumps({**snap, "pid": dead.pid}))
    gone = evalkit_cli(workspace, "status", "r-live", "--json")
    assert json.loads(gone.stdout)["stale"] is True and "--resume r-live" in json.loads(gone.stdout)["hint"]


def test_merge_keeps_its_attached_sources_when_the_lease_lets_go_after_every_operation(
        workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under contention the file is handed over between operations; ATTACH … DETACH blocks hold a session."""
    from evalkit.batch.merge import merge_runs
    from evalkit.store.lease import Lease

    workspace_with(workspace, 30, 0.0)
    for i in (1, 2):
        r = evalkit_cli(workspace, "run", "conc.yaml", "--no-mlflow", "--no-trace", "--shard", f"{i}/2",
                        "--store", f"shard{i}.duckdb")
        assert r.returncode == 0, r.stderr

    def always_hand_over(self: Lease) -> None:
        if not self._pins:
            self.handovers += 1
            self._release()

    monkeypatch.setattr(Lease, "_after_use", always_hand_over)
    with Store(workspace / "merged.duckdb") as st:
        run_id, summary = merge_runs(st, ["shard1.duckdb", "shard2.duckdb"])
        assert summary.cases == 30 and st.lease.handovers > 0
        assert st.execute("SELECT count(*) FROM case_results WHERE run_id = ?", [run_id])[0][0] == 30
        assert st.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name LIKE 'src%'")[0][0] == 0
