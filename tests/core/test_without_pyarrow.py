"""evalkit's core without pyarrow (it is not a core dependency).

Each command runs in a fresh interpreter whose ``sitecustomize`` puts a meta-path finder in front
that refuses ``pyarrow`` and its submodules, as if the package were not installed (the test venv
has it: polars, pandas and MLflow probe for it and carry on without). The finder also notes every
attempt made from evalkit's code (``.pl()`` or ``to_arrow_table()`` would be one; DuckDB 1.5's probe
when the store registers an Arrow stream is allowed, as it carries on without), and the wrapper that runs the CLI reports them with the number
of Arrow streams the store scanned, so the bulk-insert path is proven to be taken and pyarrow-free.
A third-party module's own probe at its import (polars, pandas, MLflow) does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.isolated import REPO, isolated_env

CASES = 3000  # well above the 64-row threshold of the bulk (Arrow stream) insert
FAILING = sum(1 for i in range(CASES) if i % 10 == 3)

BLOCKER = '''
"""Test hook: make pyarrow unimportable, as if it were not installed; note evalkit's own attempts."""
import sys

EVALKIT = {evalkit!r}
ASKED = []  # "file:line" of evalkit code that asked for pyarrow (directly or through DuckDB)


class _NoPyarrow:
    def find_spec(self, name, path=None, target=None):
        if name == "pyarrow" or name.startswith("pyarrow."):
            f = sys._getframe(1)
            while f is not None:  # outwards to evalkit's code, unless a module's import-time probe comes first
                where = f.f_code.co_filename
                if where.startswith(EVALKIT):
                    ASKED.append(f"{{where}}:{{f.f_lineno}}")
                    break
                if f.f_code.co_name == "<module>" and not where.startswith("<frozen"):
                    break  # e.g. polars, pandas or MLflow checking at import whether pyarrow is there
                f = f.f_back
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, _NoPyarrow())
'''

WRAPPER = '''
import json
import sys

import sitecustomize
from evalkit.store import arrow_rows

scans = 0
_stream = arrow_rows.ArrowStream.__arrow_c_stream__


def _counted(self, requested_schema=None):
    global scans
    scans += 1
    return _stream(self, requested_schema)


arrow_rows.ArrowStream.__arrow_c_stream__ = _counted
from evalkit.cli.app import main

sys.argv = ["evalkit", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
finally:
    probe = {"pyarrow_loaded": any(m == "pyarrow" or m.startswith("pyarrow.") for m in sys.modules),
             "asked": sitecustomize.ASKED, "scans": scans}
    sys.stderr.write("\\nNO-PYARROW " + json.dumps(probe) + "\\n")
sys.exit(code)
'''

AGENT = '''
def answer(question):
    i = int(question.removeprefix("q"))
    return "wrong" if i % 10 == 3 else question
'''


def _env(ws: Path) -> dict[str, str]:
    return isolated_env(ws, hook=BLOCKER.format(evalkit=str(REPO / "evalkit")), name="_no_pyarrow")


def _python(ws: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ws, env=_env(ws), capture_output=True, text=True,
                          timeout=600)


class Ran:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        head, sep, probe = proc.stderr.rpartition("\nNO-PYARROW ")
        assert sep, proc.stderr
        self.stdout, self.stderr = proc.stdout, head
        self.probe: dict[str, Any] = json.loads(probe)
        assert self.probe["pyarrow_loaded"] is False
        # DuckDB 1.5 probes for pyarrow when it is handed an object to scan, then reads the Arrow stream
        # through its PyCapsule; only the store's own scans may ask, and nothing may load it.
        assert all("/evalkit/store/" in where for where in self.probe["asked"]), self.probe
        assert "pyarrow" not in self.stderr, self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


def _evalkit(ws: Path, *args: str) -> Ran:
    return Ran(subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=ws, env=_env(ws), capture_output=True,
                              text=True, timeout=600))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "agent.py").write_text(AGENT)
    (tmp_path / "cases.jsonl").write_text("".join(
        json.dumps({"id": f"c{i:04d}", "input": f"q{i}", "expected": f"q{i}"}) + "\n" for i in range(CASES)))
    (tmp_path / "suite.yaml").write_text("name: no-pyarrow\ndataset: cases.jsonl\ntarget: agent:answer\n"
                                         "scorers:\n  - exact_match\n")
    return tmp_path


def test_the_hook_makes_pyarrow_unimportable_and_duckdb_notices(ws: Path) -> None:
    proc = _python(ws, """
import duckdb, polars as pl, sitecustomize
try:
    import pyarrow  # noqa: F401
except ModuleNotFoundError as exc:
    print("blocked:", exc.name)
try:
    import pyarrow.parquet  # noqa: F401
except ModuleNotFoundError:
    print("submodule blocked")
sitecustomize.EVALKIT = "<string>"  # this script stands in for evalkit's code
try:
    duckdb.connect().register("x", pl.DataFrame({"a": [1]}))
except Exception:
    print("register failed, asked from:", sitecustomize.ASKED[-1])
from evalkit.store.arrow_rows import ArrowStream
con = duckdb.connect()
con.register("x", ArrowStream(pl.DataFrame({"a": [1, 2, 3]})))
print("stream rows:", con.execute("SELECT sum(a) FROM x").fetchall()[0][0])
""")
    assert proc.returncode == 0, proc.stderr
    # DuckDB's own pyarrow import is caught, and put down to the Python line that called it
    assert proc.stdout.splitlines() == ["blocked: pyarrow", "submodule blocked", "register failed, asked from: <string>:13",
                                        "stream rows: 6"]


def test_a_traced_run_and_every_read_export_and_import_without_pyarrow(ws: Path) -> None:
    # a traced run, logged to the embedded MLflow store
    run = _evalkit(ws, "run", "suite.yaml", "--json", "--workers", "1")  # in this process: its inserts are probed
    out = run.json()
    run_id = out["run_id"]
    assert out["summary"]["cases"] == CASES and out["summary"]["errors"] == 0
    (scorer,) = out["summary"]["scorers"]
    assert scorer["name"] == "exact_match" and scorer["passed"] == CASES - FAILING
    assert out["mlflow_run_id"]
    assert run.probe["scans"] >= 2  # case results, scores and spans went in as Arrow streams

    spans = _evalkit(ws, "sql", "SELECT count(*) AS n, count(DISTINCT trace_id) AS traces FROM spans", "--json").json()
    assert spans[0]["n"] >= CASES and spans[0]["traces"] == CASES

    shown = _evalkit(ws, "show", run_id, "--all", "--json").json()
    assert shown["total"] == CASES and len(shown["cases"]) == CASES and shown["failed_total"] == FAILING
    traces = _evalkit(ws, "traces", run_id, "--json").json()
    assert traces["cases"] and all(c["spans"] > 0 for c in traces["cases"])
    tree = _evalkit(ws, "trace", run_id, "c0003", "--json").json()
    assert tree["case"]["case_id"] == "c0003" and tree["case"]["trace_id"]
    assert "evalkit.target" in json.dumps(tree)

    _evalkit(ws, "report", run_id, "-o", "x.html")
    html = (ws / "x.html").read_text()
    assert len(html) > 10_000 and run_id in html

    exported = _evalkit(ws, "export", run_id, "-o", "exported", "--no-mlflow", "--json").json()
    assert exported["counts"] == {"runs": 1, "case_results": CASES, "scores": CASES, "spans": spans[0]["n"],
                                  "human_labels": 0, "judge_calibrations": 0}
    second = ws / "second.duckdb"
    imported = _evalkit(ws, "import", "exported", "--store", str(second), "--no-mlflow", "--json").json()
    assert imported["store_added"] == [run_id]
    counts = _evalkit(ws, "sql", "SELECT (SELECT count(*) FROM case_results) AS cases,"
                      " (SELECT count(*) FROM scores) AS scores, (SELECT count(*) FROM spans) AS spans",
                      "--store", str(second), "--json").json()
    assert counts == [{"cases": CASES, "scores": CASES, "spans": spans[0]["n"]}]
    reshown = _evalkit(ws, "show", run_id, "--store", str(second), "--json").json()
    assert reshown["total"] == CASES and reshown["failed_total"] == FAILING

    board = _evalkit(ws, "leaderboard", "-f", "json").json()
    (entry,) = board["entries"]
    assert board["metric"] == "exact_match/mean"
    assert entry["run_id"] == run_id and entry["value"] == pytest.approx((CASES - FAILING) / CASES, abs=1e-4)
