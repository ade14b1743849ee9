"""Partial runs (a shard, --limit, a pytest subset) say so: in the store, in MLflow, in the verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.store.db import open_store
from evalkit.tracking.payload import build_payload
from tests.conftest import REPO
from tests.core.helpers import run_main as cli

SUITE = "name: part\ndataset: cases.jsonl\ntarget: tests.core.helpers:echo\nscorers:\n  - exact_match\n"


def partial_of(workspace: Path, run_id: str) -> tuple[str | None, str | None]:
    with open_store(workspace / ".evalkit" / "evalkit.duckdb") as st:
        run = st.get_run(run_id)
        cfg = json.loads(run["config"]) if isinstance(run["config"], str) else run["config"]
        return cfg.get("partial"), build_payload(st, run).tags.get("evalkit.partial")


def test_shards_and_limits_are_partial_and_a_merge_is_whole(workspace: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (workspace / "cases.jsonl").write_text("".join(
        json.dumps({"id": f"c{i}", "input": str(i), "expected": f"echo: {i}"}) + "\n" for i in range(6)))
    (workspace / "suite.yaml").write_text(SUITE)
    ids = []
    for shard in ("1/2", "2/2"):
        code, out, err = cli(["run", "suite.yaml", "--no-mlflow", "--no-trace", "--shard", shard, "--json"], capsys,
                             monkeypatch)
        assert code == 0, err
        data = json.loads(out)
        assert any(n.startswith(f"shard {shard}: its gate covers this slice only") for n in data["notes"]), data
        ids.append(data["run_id"])
        assert partial_of(workspace, ids[-1]) == (f"shard {shard}", f"shard {shard}")
    code, out, err = cli(["merge", *ids, "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert partial_of(workspace, json.loads(out)["run_id"]) == (None, None)
    code, out, _ = cli(["run", "suite.yaml", "--no-mlflow", "--no-trace", "--limit", "2", "--json"], capsys, monkeypatch)
    assert partial_of(workspace, json.loads(out)["run_id"])[0] == "first 2 cases (--limit)"
    code, out, _ = cli(["run", "suite.yaml", "--no-mlflow", "--no-trace", "--json"], capsys, monkeypatch)
    assert partial_of(workspace, json.loads(out)["run_id"]) == (None, None)


def test_a_pytest_subset_is_partial(workspace: Path) -> None:
    (workspace / "cases.jsonl").write_text("".join(
        json.dumps({"id": f"c{i}", "input": str(i), "expected": f"echo: {i}"}) + "\n" for i in range(4)))
    (workspace / "suite.yaml").write_text(SUITE)
    (workspace / "test_part.py").write_text(
        "import evalkit\nfrom tests.core.helpers import echo\n\n\n@evalkit.cases('suite.yaml')\n"
        "def test_case(case, evaluate):\n    evaluate(case, echo(case.input_text))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for args, expected in ((["-k", "c1 or c2"], "pytest subset: 2 of 4 case runs"), ([], None)):
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_part.py",
                            "--evalkit-no-mlflow", *args], cwd=workspace, env=env, capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        with open_store(workspace / ".evalkit" / "evalkit.duckdb") as st:
            run_id = st.query("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")[0]["run_id"]
        assert partial_of(workspace, run_id)[0] == expected
