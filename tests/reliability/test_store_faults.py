"""The DuckDB store under hostile sizes and damaged files.

Large answers are stored with flat memory (side files beyond the inline limit), a write failure is
a typed error and a failed run (never lost cases or a run left "running"), a store that outgrew its
memory limit stays openable, and every read command on a truncated or checksum-damaged file prints
one line and exits 3. Sizes are modest: the memory limit is lowered to 16MB to reproduce cheaply.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

import evalkit
from evalkit.cli.app import _mount, app
from evalkit.errors import EXIT_INFRA, StoreCorrupt, StoreError, UserError
from evalkit.store import large_values
from evalkit.store.db import Store, checkpoint_threshold
from evalkit.store.doctor import diagnose
from evalkit.store.migrations import LATEST
from tests.conftest import evalkit_cli

pytestmark = pytest.mark.reliability

SMALL_MEMORY = "16MB"  # inline limit 1 KiB; a 2,048-row vector of 300 KB values would need 600 MB


def big_agent(question: str) -> str:
    size = int(question.split()[1])
    return question + os.urandom(size // 2).hex()  # incompressible, like real text after DuckDB's FSST


def cases(n: int, size: int) -> list[dict[str, Any]]:
    return [{"id": f"c{i:03d}", "input": f"q{i} {size}", "expected": "x"} for i in range(n)]


def _evaluate(n: int, size: int, concurrency: int) -> Any:
    return evalkit.evaluate(cases(n, size), target=big_agent, scorers=["exact_match"], tracing=False, mlflow=False,
                            cache=False, concurrency=concurrency)


def test_a_marker_shaped_value_cannot_name_a_file_outside_the_side_files(tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text('"not yours"')
    spoof = {large_values.MARKER: {"bytes": 11, "sha256": "0" * 64, "file": "secret.json"}, "head": ""}
    with pytest.raises(ValueError, match="not a side file"):
        large_values.load(spoof, tmp_path / "store" / "evalkit.duckdb")
    spoof[large_values.MARKER]["file"] = "evalkit.duckdb.values/../../secret.json"
    with pytest.raises(ValueError, match="not a side file"):
        large_values.load(spoof, tmp_path / "store" / "evalkit.duckdb")


def test_large_outputs_go_to_side_files_and_read_back_in_full(workspace: Path, monkeypatch: pytest.MonkeyPatch,
                                                              figures: dict[str, Any]) -> None:
    monkeypatch.setenv("EVALKIT_STORE_MEMORY", SMALL_MEMORY)
    res = _evaluate(80, 300_000, 8)  # 24 MB of answers: FATAL autocheckpoint / lost cases before
    assert res.summary.status == "completed" and res.summary.cases == 80
    big = _evaluate(4, 4_000_000, 2)  # "five 20 MB answers at concurrency 2", scaled to the lowered limit
    assert big.summary.status == "completed" and big.summary.cases == 4
    store = Path(res.store_path)
    with Store(store, read_only=True) as st:
        assert st.execute("SELECT count(*) FROM case_results")[0][0] == 84
        rows = st.query("SELECT case_id, CAST(output AS VARCHAR) AS o, length(CAST(output AS VARCHAR)) AS n"
                        " FROM case_results WHERE run_id = ? ORDER BY case_id", [big.run_id])
        assert max(r["n"] for r in rows) <= 1024
        from evalkit.store.reads import case_rows

        out = case_rows(st, big.run_id)[0]["output"]
        assert large_values.is_truncated(out) and out[large_values.MARKER]["bytes"] > 4_000_000
        full = st.full_value(out)
    assert isinstance(full, str) and full.startswith("q0 4000000") and len(full) == len("q0 4000000") + 4_000_000
    side = large_values.values_dir(store)
    figures.update(store_mb=round(store.stat().st_size / 2**20, 1),
                   side_mb=round(sum(p.stat().st_size for p in side.rglob("*.json")) / 2**20, 1))
    assert store.stat().st_size < 16 * 2**20  # the rows hold heads, the side files the values
    with Store(store) as st:  # and the store stays writable at the same limit
        assert st.get_run(res.run_id)["status"] == "completed"


def test_a_write_the_store_cannot_hold_is_a_typed_error_and_a_failed_run(workspace: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_STORE_MEMORY", SMALL_MEMORY)
    with monkeypatch.context() as m, pytest.raises(StoreError) as err:
        m.setattr(large_values, "inline_limit", lambda memory: 1 << 40)  # the old behaviour: all inline
        _evaluate(120, 300_000, 8)
    assert "--resume" in err.value.format() and "\n" not in err.value.format()
    with Store(workspace / ".evalkit" / "evalkit.duckdb") as st:  # still opens for writers at the same limit, and the run is failed, not running
        (status,), = st.execute("SELECT status FROM runs")
        assert status == "failed"
    assert _evaluate(3, 300_000, 2).summary.status == "completed"


def test_a_store_that_outgrew_its_limit_opens_and_takes_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    # a crash leaves 30 MB of large inline values (an older evalkit) in the write-ahead log
    code = (f"import duckdb, os; c = duckdb.connect({str(path)!r}, config={{'checkpoint_threshold': '10GB'}})\n"
            "for i in range(100):\n"
            "    c.execute(\"INSERT INTO case_results (run_id, case_id, repeat, status, output) VALUES ('r', ?, 0, 'ok', ?)\","
            " [f'c{i}', '\"' + os.urandom(150000).hex() + '\"'])\n"
            "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert Path(f"{path}.wal").stat().st_size > 16 * 2**20
    monkeypatch.setenv("EVALKIT_STORE_MEMORY", SMALL_MEMORY)
    with Store(path) as st:  # checkpointed with the limit lifted: later autocheckpoints do not fail
        assert not Path(f"{path}.wal").exists()
        for i in range(40):
            st.execute("INSERT INTO runs (run_id, suite, status) VALUES (?, 's', 'completed')", [f"r{i}"])
        assert st.execute("SELECT count(*) FROM case_results")[0][0] == 100
    with Store(path) as st:
        assert st.execute("SELECT count(*) FROM runs")[0][0] == 40


def test_the_writer_holds_a_log_beyond_its_memory_limit_and_a_crash_replays_it(tmp_path: Path) -> None:
    """The writer checkpoints after twice its memory limit of log, not DuckDB's 16MB: rows past the limit
    spill, later writes go on, and a crash before the checkpoint loses nothing."""
    assert checkpoint_threshold(8 * 2**20) == 16 * 2**20 and checkpoint_threshold(128 * 10**6) == 256 * 10**6
    path = tmp_path / "s.duckdb"
    code = ("import os; from evalkit.store.db import Store\n"
            f"st = Store({str(path)!r})\n"
            "assert st.execute(\"SELECT current_setting('checkpoint_threshold')\")[0][0] == '61.0 MiB'\n"
            "for k in range(14):\n"
            "    st.execute(\"INSERT INTO spans (trace_id, span_id, name) SELECT 't' || i, 's' || i,"
            " repeat(md5(i::VARCHAR), 20) FROM range(5000) r(i)\")\n"
            "os._exit(0)\n")
    env = {**os.environ, "EVALKIT_STORE_MEMORY": "32MB"}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=env)
    assert Path(f"{path}.wal").stat().st_size > 40 * 2**20  # 45 MB of rows, past the 32MB limit, none checkpointed
    with Store(path) as st:
        assert not Path(f"{path}.wal").exists()
        assert st.execute("SELECT count(*), sum(length(name)) FROM spans")[0] == (70_000, 70_000 * 640)


def test_bad_memory_setting_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_STORE_MEMORY", "lots")
    with pytest.raises(UserError, match="EVALKIT_STORE_MEMORY='lots'"):
        Store(tmp_path / "s.duckdb")


# -- damaged files ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A store with one traced run (runs, case_results, scores and spans rows)."""
    folder = tmp_path_factory.mktemp("healthy")
    mp = pytest.MonkeyPatch()
    mp.chdir(folder)
    mp.setenv("EVALKIT_STORE", str(folder / "evalkit.duckdb"))
    mp.setenv("EVALKIT_NO_MLFLOW", "1")
    try:
        res = evalkit.evaluate([{"id": f"c{i}", "input": f"q{i} 10", "expected": "x"} for i in range(30)],
                               target=big_agent, scorers=["exact_match"], mlflow=False, cache=False)
    finally:
        mp.undo()
    yield folder / "evalkit.duckdb", res.run_id


def truncated(src: Path, dst: Path) -> None:
    shutil.copy(src, dst)
    os.truncate(dst, src.stat().st_size // 2)


def checksum_damaged(src: Path, dst: Path) -> None:
    """Flip bytes in every storage block (past the three 4 KiB headers), checksums left as they were."""
    shutil.copy(src, dst)
    with dst.open("r+b") as f:
        for block in range(12288, src.stat().st_size, 262144):
            f.seek(block + 512)
            f.write(b"\xde\xad\xbe\xef" * 16)


def data_damaged(src: Path, dst: Path) -> None:
    """Flip bytes in the data blocks: reads fail (on some files the catalog sits among them: then opening does)."""
    shutil.copy(src, dst)
    with dst.open("r+b") as f:
        for block in range(12288 + 262144, src.stat().st_size, 262144):
            f.seek(block + 512)
            f.write(b"\xde\xad\xbe\xef" * 16)


def one_block_damaged(src: Path, dst: Path) -> None:
    """Flip bytes in one data block: the file opens, a table's reads fail. Which blocks hold data and which
    the catalog varies from file to file, so blocks are tried from the end until one gives exactly that."""
    import duckdb

    blocks = list(range(12288 + 262144, src.stat().st_size, 262144))
    for block in reversed(blocks):
        shutil.copy(src, dst)
        with dst.open("r+b") as f:
            f.seek(block + 512)
            f.write(b"\xde\xad\xbe\xef" * 16)
        try:
            con = duckdb.connect(str(dst), read_only=True)
        except duckdb.Error:
            continue  # a catalog block: the file would not open at all
        try:
            for table in ("runs", "case_results", "scores", "spans"):
                con.execute(f"SELECT max(hash(COLUMNS(*))) FROM {table}").fetchall()
        except duckdb.Error:
            return  # opens, and a read fails
        finally:
            con.close()
    raise AssertionError(f"no single damaged block of {src} leaves it opening with a table unreadable")


DAMAGE = {"truncated": truncated, "checksum": checksum_damaged}


def invoke(*args: str) -> tuple[int, str]:
    """``evalkit ARGS`` in-process, as ``main()`` reports it: (exit code, the one error line)."""
    res = CliRunner().invoke(app, list(args), standalone_mode=False)
    if isinstance(res.exception, UserError):
        return res.exception.exit_code, res.exception.format()
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"`evalkit {' '.join(args)}` raised {res.exception!r}") from res.exception
    rv = res.return_value  # what main() exits with
    return (rv if isinstance(rv, int) else res.exit_code), " ".join(res.output.split())


def read_commands(run_id: str, out: Path) -> dict[str, list[str]]:
    return {"show": ["show", run_id], "runs": ["runs"], "report": ["report", run_id, "-o", str(out / "r.html")],
            "sql": ["sql", "SELECT * FROM case_results"], "traces": ["traces", run_id],
            "trace": ["trace", run_id, "c1"], "export": ["export", run_id, "--out", str(out / "x"), "--no-mlflow"],
            "status": ["status", run_id]}


@pytest.fixture(scope="module")
def mounted() -> None:
    _mount()


@pytest.mark.parametrize("damage", [*DAMAGE, "data"])
def test_every_read_command_reports_a_damaged_store_in_one_line(damage: str, healthy: tuple[Path, str],
                                                                tmp_path: Path, mounted: None) -> None:
    src, run_id = healthy
    bad = tmp_path / "evalkit.duckdb"
    {**DAMAGE, "data": data_damaged}[damage](src, bad)
    for name, args in read_commands(run_id, tmp_path).items():
        code, line = invoke(*args, "--store", str(bad))
        assert code == EXIT_INFRA, (name, code, line)
        assert "damaged" in line and str(bad) in line and "\n" not in line and "locked" not in line, (name, line)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_doctor_reports_and_moves_a_damaged_store_aside(damage: str, healthy: tuple[Path, str],
                                                        tmp_path: Path, mounted: None) -> None:
    src, _ = healthy
    code, out = invoke("doctor", "--store", str(src))
    assert code == 0 and "healthy" in out and "case_results: 30 rows" in out
    bad = tmp_path / "evalkit.duckdb"
    DAMAGE[damage](src, bad)
    d = diagnose(bad)
    assert not d.healthy and not d.opens and "damaged" in (d.problem or "")
    code, out = invoke("doctor", "--store", str(bad))
    assert code == EXIT_INFRA and "--move-aside" in out
    code, out = invoke("doctor", "--store", str(bad), "--move-aside")
    assert code == 0 and not bad.exists()
    assert [p.name.split("-")[0] for p in tmp_path.glob("evalkit.duckdb.corrupt-*")] == ["evalkit.duckdb.corrupt"]
    with Store(bad) as st:  # a fresh store in its place
        assert st.execute("SELECT max(version) FROM schema_version")[0][0] == LATEST


def test_doctor_lists_what_is_readable_in_a_partly_damaged_store(healthy: tuple[Path, str], tmp_path: Path) -> None:
    src, _ = healthy
    bad = tmp_path / "evalkit.duckdb"
    one_block_damaged(src, bad)
    d = diagnose(bad)
    assert not d.healthy and d.opens and d.schema_version == LATEST and d.unreadable
    assert any("COPY" in a for a in d.advice) == bool(d.rows)


def test_damaged_store_from_a_real_process_is_one_line_exit_3(healthy: tuple[Path, str], tmp_path: Path) -> None:
    src, run_id = healthy
    bad = tmp_path / "evalkit.duckdb"
    checksum_damaged(src, bad)
    (tmp_path / "agent.py").write_text("def answer(q):\n    return q\n")
    (tmp_path / "cases.jsonl").write_text('{"input": "a", "expected": "a"}\n')
    (tmp_path / "suite.yaml").write_text("name: s\ndataset: cases.jsonl\ntarget: agent:answer\nscorers:\n  - exact_match\n")
    for args in (["show", run_id], ["run", "suite.yaml", "--no-mlflow"]):
        proc = evalkit_cli(tmp_path, *args, "--store", str(bad))
        assert proc.returncode == EXIT_INFRA, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "damaged" in lines[0] and "Traceback" not in proc.stderr, proc.stderr


# -- schemas this evalkit cannot read -----------------------------------------------------------------------------

def test_tables_without_a_schema_version_and_newer_schemas_are_one_line(tmp_path: Path) -> None:
    unversioned = tmp_path / "unversioned.duckdb"
    con = duckdb.connect(str(unversioned))
    con.execute("CREATE TABLE runs (run_id VARCHAR)")
    con.close()
    for read_only in (True, False):
        with pytest.raises(StoreError, match="no schema version") as err:
            Store(unversioned, read_only=read_only)
        assert not isinstance(err.value, StoreCorrupt)
    newer = tmp_path / "newer.duckdb"
    Store(newer).close()
    con = duckdb.connect(str(newer))
    con.execute("INSERT INTO schema_version VALUES (?, now())", [LATEST + 5])
    con.close()
    messages = set()
    for read_only in (False, True):
        with pytest.raises(StoreError, match=f"schema v{LATEST + 5} is newer than this evalkit") as err:
            Store(newer, read_only=read_only)
        messages.add(err.value.format())
    assert len(messages) == 1  # `run` and the read commands say the same
    duckdb.connect(str(newer)).close()  # the failed opens released the file


def test_export_says_locked_and_damaged_not_missing(healthy: tuple[Path, str], tmp_path: Path, mounted: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_STORE_WAIT", "0.5")  # the holder is not evalkit: it never hands over
    src, run_id = healthy
    bad = tmp_path / "bad.duckdb"
    checksum_damaged(src, bad)
    code, line = invoke("export", run_id, "--out", str(tmp_path / "x"), "--no-mlflow", "--store", str(bad))
    assert code == EXIT_INFRA and "damaged" in line and "no store here" not in line
    held = tmp_path / "held.duckdb"
    shutil.copy(src, held)
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(held)!r}); "
                               "print('ok', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        code, line = invoke("export", run_id, "--out", str(tmp_path / "y"), "--no-mlflow", "--store", str(held))
        assert code == EXIT_INFRA and "locked by another process" in line, line
        code, out = invoke("doctor", "--store", str(held))
        assert code == 0 and "in use by a writer" in out
    finally:
        holder.kill()
        holder.wait()
