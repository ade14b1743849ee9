"""Merging runs (shards of one logical run, possibly from other store files) into one run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from evalkit.errors import UserError
from evalkit.pipeline.finalise import finalise
from evalkit.provenance import new_run_id
from evalkit.runner import RunOutcome
from evalkit.schema import RunSummary
from evalkit.store.db import Store

TABLES = ("case_results", "scores", "spans")


def _split(source: str) -> tuple[Path | None, str | None]:
    """``file.duckdb``, ``file.duckdb:RUN_ID`` or ``RUN_ID`` (in the target store)."""
    path, sep, run = source.partition(".duckdb")
    if sep:
        return Path(path + sep), (run.lstrip(":") or None)
    return None, source


def merge_runs(store: Store, sources: list[str], *, suite: str | None = None) -> tuple[str, RunSummary]:
    """Copy every source run's rows into one new run of ``store``; duplicate cases are an error."""
    if not sources:
        raise UserError("merge needs at least one source (RUN_ID, FILE.duckdb or FILE.duckdb:RUN_ID)")
    run_id = new_run_id()
    picked: list[tuple[str, str]] = []  # (schema alias, run id)
    attached: list[str] = []
    with store.session():  # the attached sources live on one connection
        try:
            return _merge(store, sources, suite, run_id, picked, attached)
        finally:
            for alias in attached:
                store.execute(f"DETACH {alias}")


def _merge(
    store: Store, sources: list[str], suite: str | None, run_id: str, picked: list[tuple[str, str]], attached: list[str]
) -> tuple[str, RunSummary]:
    resolved: list[tuple[str, str | None]] = []
    for i, src in enumerate(sources):
        path, rid = _split(src)
        alias = "main"
        if path is not None:
            if not path.exists():
                raise UserError(f"{path}: no such store file")
            if path.resolve() != store.path.resolve():
                alias = f"src{i}"
                quoted = str(path.resolve()).replace("'", "''")
                store.execute(f"ATTACH '{quoted}' AS {alias} (READ_ONLY)")
                attached.append(alias)
        resolved.append((alias, rid))
    suite_name, planned = store.atomic(lambda st: _copy(st, resolved, sources, suite, run_id, picked))
    return run_id, finalise(store, run_id, suite_name, planned=planned or None, engine=RunOutcome())


def _copy(store: Store, resolved: list[tuple[str, str | None]], sources: list[str], suite: str | None, run_id: str,
          picked: list[tuple[str, str]]) -> tuple[str, int]:
    """The merge's one transaction (run again whole when a team store's commit lost a race): the suite's
    name and the number of cases the sources planned."""
    picked.clear()
    for (alias, rid), src in zip(resolved, sources, strict=True):
        if rid is None:
            rows = store.execute(f"SELECT run_id FROM {alias}.runs ORDER BY started_at")
            picked.extend((alias, r[0]) for r in rows)
        else:
            rows = store.execute(f"SELECT run_id FROM {alias}.runs WHERE run_id = ? OR run_id LIKE ?", [rid, rid + "%"])
            if len(rows) != 1:
                raise UserError(f"{src}: {'no' if not rows else 'more than one'} matching run")
            picked.append((alias, rows[0][0]))
    suites = {store.execute(f"SELECT suite FROM {a}.runs WHERE run_id = ?", [r])[0][0] for a, r in picked}
    digests = {store.execute(f"SELECT dataset_sha256 FROM {a}.runs WHERE run_id = ?", [r])[0][0] for a, r in picked}
    if len(suites) > 1 or (suite and suites != {suite}):
        raise UserError(f"runs of different suites cannot be merged: {', '.join(sorted(map(str, suites)))}")
    if len(digests - {None}) > 1:
        raise UserError("shards were run on different datasets (dataset SHA-256 differs)")
    first_alias, first_run = picked[0]
    store.execute(
        f"INSERT INTO runs SELECT * REPLACE (? AS run_id, 'running' AS status, ? AS started_at, NULL AS ended_at,"
        f" NULL AS summary, NULL AS gate, NULL AS mlflow_run_id, NULL AS parent_run_id)"
        f" FROM {first_alias}.runs WHERE run_id = ?", [run_id, datetime.now(UTC), first_run],
    )
    for alias, rid in picked:
        for table in TABLES:
            store.execute(f"INSERT INTO {table} SELECT * REPLACE (? AS run_id) FROM {alias}.{table} WHERE run_id = ?",
                          [run_id, rid])
    dupes = store.execute(
        "SELECT case_id, repeat, count(*) FROM case_results WHERE run_id = ? GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 1",
        [run_id],
    )
    if dupes:
        raise UserError(f"case '{dupes[0][0]}' (repeat {dupes[0][1]}) is in more than one source run; not merged")
    # the merged run plans what its sources planned: a shard that never finished leaves cases missing
    planned = sum(int(store.execute(f"SELECT coalesce(cases_total, 0) FROM {a}.runs WHERE run_id = ?", [r])[0][0])
                  for a, r in picked)
    store.execute("UPDATE runs SET cases_total = ?, config = json_merge_patch(coalesce(config, '{}'), ?) WHERE run_id = ?",
                  [planned, json.dumps({"merged_from": [r for _, r in picked], "partial": None}), run_id])
    return str(next(iter(suites))), planned
