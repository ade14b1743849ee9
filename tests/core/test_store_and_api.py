"""The DuckDB store, migrations and the Python API."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import evalkit
from evalkit.errors import StoreError
from evalkit.store.db import Store
from evalkit.store.migrations import LATEST


def agent(q: str) -> str:
    return "yes" if "good" in q else "no"


def test_evaluate_returns_summary_and_frames(workspace: Path) -> None:
    cases = [{"id": f"g{i}", "input": "good", "expected": "yes"} for i in range(3)] + [
        {"id": "b1", "input": "bad", "expected": "yes"}]
    res = evalkit.evaluate(cases, target=agent, scorers=["exact_match", {"length": {"max_chars": 2}}], tracing=False,
                           mlflow=False)
    m = res.metrics
    assert m["cases"] == 4 and m["exact_match/pass_rate"] == 0.75 and m["length/pass_rate"] == 0.25
    assert set(res.scores["name"].unique()) == {"exact_match", "length"}
    wide = res.wide()
    assert wide.height == 4 and {"exact_match", "length"} <= set(wide.columns)
    with Store(res.store_path, read_only=True) as st:  # type: ignore[arg-type]
        assert st.execute("SELECT count(*) FROM case_results WHERE run_id = ?", [res.run_id])[0][0] == 4
        assert st.execute("SELECT count(*) FROM scores WHERE run_id = ?", [res.run_id])[0][0] == 8
        run = st.get_run(res.run_id[:15])
        assert run["status"] == "completed" and run["summary"]["cases"] == 4


def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    p = tmp_path / "s.duckdb"
    Store(p).close()
    Store(p).close()
    con = duckdb.connect(str(p))
    assert con.execute("SELECT list(version) FROM schema_version").fetchone()[0] == [v for v in range(1, LATEST + 1)]


def test_large_batches_use_the_bulk_path(workspace: Path) -> None:
    res = evalkit.evaluate([{"input": f"good {i}", "expected": "yes"} for i in range(3000)], target=agent,
                           scorers=["exact_match"], tracing=False, concurrency=64, mlflow=False)
    assert res.summary.cases == 3000 and res.metrics["exact_match/pass_rate"] == 1.0


def test_locked_store_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that is not evalkit never hands the file over: the wait is bounded and then says who holds it."""
    import subprocess
    import sys

    monkeypatch.setenv("EVALKIT_STORE_WAIT", "0.5")
    p = tmp_path / "locked.duckdb"
    Store(p).close()
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(p)!r}); print('ok', flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(StoreError, match=r"locked by another process \(.*PID \d+.*\) and stayed so for"):
            Store(p)
    finally:
        holder.kill()
        holder.wait()


def test_read_only_missing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store here yet"):
        Store(tmp_path / "nope.duckdb", read_only=True)
