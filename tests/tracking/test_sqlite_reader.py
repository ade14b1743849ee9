"""The embedded store's direct-SQL leaderboard agrees with MLflow's own search, and needs no mlflow import."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evalkit.tracking.leaderboard import leaderboard
from evalkit.tracking.sqlite_reader import SqliteRunReader, Unsupported
from evalkit.tracking.uri import client
from tests.conftest import REPO
from tests.tracking._cli import cli_json
from tests.tracking._runs import make_run


def _rows(board: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in asdict(e).items() if k != "age"} for e in board.entries]


def test_reader_matches_mlflow_search(tracked: Path) -> None:
    store = tracked / ".evalkit" / "evalkit.duckdb"
    make_run(store, quality=0.9, n=30, agent="alpha", version="1")
    make_run(store, quality=0.3, n=30, agent="beta")
    make_run(store, quality=0.85, n=30, agent="alpha", version="2")
    make_run(store, quality=0.6, n=30, agent="gamma", judge=False)
    make_run(store, quality=0.7, n=30, agent="delta", suite="other")
    cli_json("sync", "--json")
    db = tracked / ".evalkit" / "mlflow.db"
    uri = f"sqlite:///{db}"
    mlflow_client = client(uri)
    reader = SqliteRunReader(db)
    since = datetime.now(UTC) - timedelta(days=1)
    cases: list[dict[str, Any]] = [
        {"suite": "qa", "metric": "exact_match/mean"},
        {"metric": "exact_match/mean"},
        {"metric": "helpful/mean", "top": 2},
        {"metric": "latency_ms/p95"},
        {"suite": "qa", "metric": "exact_match/mean", "by": "agent"},
        {"metric": "exact_match/mean", "last": 3},
        {"metric": "exact_match/pass_rate", "since": since},
        {"suite": "qa"},
    ]
    for opts in cases:
        want = leaderboard(mlflow_client, uri=uri, **opts)
        got = leaderboard(reader, uri=uri, **opts)  # type: ignore[arg-type]
        assert got.metric == want.metric and _rows(got) == _rows(want), opts
        assert got.entries, opts
    with pytest.raises(Unsupported):
        reader.search_runs(["1"], "params.model = 'x'")
    reader.close()


def test_leaderboard_command_skips_the_mlflow_import(tracked: Path) -> None:
    store = tracked / ".evalkit" / "evalkit.duckdb"
    run_id = make_run(store, quality=0.8, n=10, agent="alpha")
    cli_json("sync", "--json")
    code = ("import sys, json; sys.argv = ['evalkit', 'leaderboard', '--suite', 'qa', '-f', 'json'];"
            "from evalkit.cli.app import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('MLFLOW_IMPORTED' if 'mlflow' in sys.modules else 'NO_MLFLOW')")
    out = subprocess.run([sys.executable, "-c", code], cwd=tracked, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tracked),
                              "EVALKIT_STORE": str(store)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("NO_MLFLOW")
    assert run_id in out.stdout
