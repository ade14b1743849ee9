"""Checking a store file and moving a damaged one aside (``evalkit doctor``).

The check opens the file read-only, so it never changes it: does it open, is it whole (as long as
its header says), which schema version, how many rows each table holds (every column read, so a
damaged block shows up), and whether a writer holds its lock. A damaged store is recovered by
saving what is readable and moving the file aside: the next ``evalkit run`` creates a fresh one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from evalkit.errors import StoreCorrupt, StoreError, StoreLocked, UserError
from evalkit.store.large_values import values_dir

TABLES = ("runs", "case_results", "scores", "spans")


@dataclass
class Diagnosis:
    """What :func:`diagnose` found; ``healthy`` when nothing needs doing."""

    path: Path
    exists: bool = True
    opens: bool = False
    locked: bool = False
    problem: str | None = None
    schema_version: int | None = None
    rows: dict[str, int] = field(default_factory=dict)  # readable tables
    unreadable: dict[str, str] = field(default_factory=dict)  # table -> first line of its error
    side_files: int = 0
    advice: list[str] = field(default_factory=list)
    label: str = ""  # the store for messages (a team store's URL, password redacted)
    shared: bool = False  # a team store: checked through its catalog, never moved aside

    @property
    def healthy(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {"store": self.label or str(self.path), "healthy": self.healthy, "exists": self.exists, "opens": self.opens,
                "locked": self.locked, "problem": self.problem, "schema_version": self.schema_version,
                "rows": self.rows, "unreadable": self.unreadable, "side_files": self.side_files,
                "advice": self.advice}


def diagnose(path: Path) -> Diagnosis:
    """Check the store at ``path`` without changing it."""
    from evalkit.store.db import Store
    from evalkit.store.lake import is_store_url, parse_url

    if is_store_url(path):
        d = Diagnosis(path=path, label=parse_url(path).label, shared=True)
        try:
            store = Store(path, read_only=True)
        except StoreError as exc:
            d.exists = "no store here yet" not in exc.message
            d.problem = exc.message if d.exists else None
            d.advice.append("check the URL, the catalog server and its login" if d.exists
                            else "no store here yet: `evalkit run` creates it")
            return d
        return _check_tables(d, store)
    d = Diagnosis(path=path, exists=path.exists(), label=str(path))
    if not d.exists:
        d.advice.append("no store here yet: `evalkit run` creates it")
        return d
    folder = values_dir(path)
    d.side_files = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
    try:
        store = Store(path, read_only=True)
    except StoreLocked as exc:
        d.locked, d.opens = True, True  # DuckDB opened it for that writer: the file was readable then
        d.advice.append(f"a writer holds the lock ({exc.message}); run `evalkit doctor` again once it ends")
        return d
    except StoreError as exc:
        d.problem = f"{path}: damaged: {exc.reason}" if isinstance(exc, StoreCorrupt) else exc.message
        d.opens = not isinstance(exc, StoreCorrupt)
        if d.opens:
            _readable_tables(d)
        _advise(d)
        return d
    return _check_tables(d, store)


def _check_tables(d: Diagnosis, store: Any) -> Diagnosis:
    path = d.label
    d.opens = True
    with store:
        row = store.execute("SELECT max(version) FROM schema_version")[0]
        d.schema_version = int(row[0]) if row[0] is not None else None
        for table in TABLES:
            _count(d, store.con, table)
    if d.unreadable:
        d.problem = f"{path}: damaged: {len(d.unreadable)} table(s) cannot be read: " + ", ".join(d.unreadable)
    _advise(d)
    return d


def _readable_tables(d: Diagnosis) -> None:
    """Row counts straight from DuckDB, for a file the store refuses (unknown schema) but that opens."""
    import duckdb

    try:
        con = duckdb.connect(str(d.path), read_only=True)
    except duckdb.Error:
        return
    try:
        for table in TABLES:
            _count(d, con, table)
    finally:
        con.close()


def _count(d: Diagnosis, con: Any, table: str) -> None:
    try:
        # hashing every column reads every block: a damaged one fails here rather than in a later report
        row = con.execute(f"SELECT count(*), max(hash(COLUMNS(*))) FROM {table}").fetchone()
        d.rows[table] = int(row[0])
    except StoreCorrupt as exc:
        d.unreadable[table] = exc.reason
    except Exception as exc:
        text = str(exc).strip()
        if "does not exist" in text:
            return
        d.unreadable[table] = text.splitlines()[0] if text else type(exc).__name__


def _advise(d: Diagnosis) -> None:
    if d.healthy or d.shared:
        return
    p = d.path
    if "newer than this evalkit" in (d.problem or ""):
        d.advice.append("upgrade evalkit to read this store, or pass --store to use another one")
        return
    if d.rows:
        how = f"`evalkit sql \"COPY {next(iter(d.rows))} TO '{next(iter(d.rows))}.parquet'\" --store {p}`"
        if {"runs", "case_results", "scores"} <= d.rows.keys():
            how = f"`evalkit export RUN_ID --out DIR --store {p}` or " + how
        d.advice.append(f"save what is readable first ({', '.join(d.rows)}): {how}")
    d.advice.append(f"move the file aside: `evalkit doctor --store {p} --move-aside` (renames it to "
                    f"{p.name}.corrupt-<timestamp>); the next `evalkit run` creates a fresh store")


def move_aside(d: Diagnosis, now: datetime | None = None) -> Path:
    """Rename a damaged store (and its write-ahead log) to ``<name>.corrupt-<timestamp>``; returns the new path."""
    if d.shared:
        raise UserError(f"{d.label}: a team store is not moved aside; its catalog server keeps it")
    if not d.exists:
        raise UserError(f"{d.path}: no store here to move aside")
    if d.healthy:
        raise UserError(f"{d.path}: the store is healthy (or in use by a writer); nothing to move aside")
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    target = d.path.with_name(f"{d.path.name}.corrupt-{stamp}")
    os.replace(d.path, target)
    wal = d.path.with_name(d.path.name + ".wal")
    if wal.exists():
        os.replace(wal, target.with_name(target.name + ".wal"))
    return target
