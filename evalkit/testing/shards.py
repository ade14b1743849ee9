"""pytest-xdist: each worker writes its cases to its own DuckDB shard; the controller merges them.

Only the controller opens the workspace store for writing, so workers never contend for its lock.
A shard is an ordinary evalkit store (same migrations), so merging is ``INSERT ... BY NAME``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.store.db import Store

_ALIAS = "evalkit_shard"


def shard_dir(run_id: str) -> Path:
    """Where the workers of run ``run_id`` put their shards (created by the first worker that records)."""
    return Path(tempfile.gettempdir()) / f"evalkit-pytest-{run_id}"


def shard_path(directory: str | Path, worker_id: str) -> Path:
    return Path(directory) / f"{worker_id}.duckdb"


def shard_files(directory: str | Path) -> list[Path]:
    d = Path(directory)
    return sorted(d.glob("*.duckdb")) if d.is_dir() else []


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def read_configs(store: Store, shards: list[Path], run_id: str) -> list[dict[str, Any]]:
    """The run-row configs the workers wrote (what they collected: suites, targets, case count)."""
    out: list[dict[str, Any]] = []
    for p in shards:
        with store.session():  # the attached shard lives on one connection
            store.execute(f"ATTACH {_quote(p)} AS {_ALIAS} (READ_ONLY)")
            try:
                rows = store.execute(f"SELECT config, cases_total FROM {_ALIAS}.runs WHERE run_id = ?", [run_id])
                for cfg, total in rows:
                    conf = json.loads(cfg) if isinstance(cfg, str) else dict(cfg or {})
                    out.append({**conf, "cases_total": int(total or 0)})
            finally:
                store.execute(f"DETACH {_ALIAS}")
    return out


def merge(store: Store, shards: list[Path], run_id: str) -> int:
    """Copy the shards' case results, scores and spans into ``store``; returns the case rows copied."""
    copied = 0
    for p in shards:
        with store.session():
            store.execute(f"ATTACH {_quote(p)} AS {_ALIAS} (READ_ONLY)")
            try:
                for table in ("case_results", "scores"):
                    rows = store.execute(
                        f"INSERT INTO {table} BY NAME SELECT * FROM {_ALIAS}.{table} WHERE run_id = ?", [run_id]
                    )
                    if table == "case_results" and rows:
                        copied += int(rows[0][0])
                store.execute(f"INSERT INTO spans BY NAME SELECT * FROM {_ALIAS}.spans")
            finally:
                store.execute(f"DETACH {_ALIAS}")
    return copied


def remove(directory: str | Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
