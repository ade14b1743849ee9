"""Opening the store, migrating it, and the reads and writes everything else uses."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import StoreError, UserError
from evalkit.store.migrations import LATEST, MIGRATIONS

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    import pyarrow as pa

    from evalkit.schema import CaseResult

DEFAULT_WORKSPACE = ".evalkit"
SMALL_ROWS = 2048
Params = Sequence[Any] | dict[str, Any] | None  # below this, rows move as Python tuples rather than through Arrow


def default_store_path() -> Path:
    """``$EVALKIT_STORE``, else ``.evalkit/evalkit.duckdb`` in the working directory."""
    env = os.environ.get("EVALKIT_STORE")
    return Path(env) if env else Path(DEFAULT_WORKSPACE) / "evalkit.duckdb"


def _explain(exc: Exception, path: Path) -> str:
    text = str(exc)
    low = text.lower()
    if "lock" in low:
        return f"{path}: the store is locked by another process ({text.splitlines()[0]}); wait for it or use --store"
    if "read-only" in low or "permission" in low:
        return f"{path}: the store is not writable ({text.splitlines()[0]})"
    if "no space" in low or "errno 28" in low:
        return f"{path}: disk full while writing the store"
    return f"{path}: cannot open the store: {text.splitlines()[0] if text else type(exc).__name__}"


class Store:
    """One DuckDB connection to the workspace store. The process that opens it writable owns it."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        import duckdb

        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        if read_only and not self.path.exists():
            raise StoreError(f"{self.path}: no store here yet; run `evalkit run` first or pass --store")
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # DuckDB would cache up to 80 % of RAM; the writer's buffer pool is bounded so long runs stay
            # flat (blocks spill to the database file). Readers (sql, reports) keep DuckDB's default.
            config: dict[str, str | bool | int | float | list[str]] = (
                {} if read_only else {"memory_limit": os.environ.get("EVALKIT_STORE_MEMORY", "128MB")}
            )
            self.con: duckdb.DuckDBPyConnection = duckdb.connect(str(self.path), read_only=read_only, config=config)
        except (duckdb.Error, OSError) as exc:
            raise StoreError(_explain(exc, self.path)) from None
        if not read_only:
            self._migrate()

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        con = self.con
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        current = (row[0] if row else None) or 0
        for version, sql in MIGRATIONS:
            if version <= current:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(sql)
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, datetime.now(UTC)])
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        if current > LATEST:
            raise StoreError(f"{self.path}: store schema v{current} is newer than this evalkit (v{LATEST})")

    # -- generic ---------------------------------------------------------------------------
    def execute(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Run a statement and fetch its rows (results are never left pending on the connection)."""
        with self._lock:
            return self.con.execute(sql, params or []).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Hold the connection for a block of statements that commit or roll back together."""
        with self._lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield self
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")

    def query(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        """Rows as dicts."""
        with self._lock:
            cur = self.con.execute(sql, params or [])
            cols = [d[0] for d in cur.description or []]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def frame(self, sql: str, params: Params = None) -> pl.DataFrame:
        """A query's result as a polars DataFrame (via Arrow, zero-copy where possible)."""
        import polars as pl

        with self._lock:
            # Small results are built from Python rows: importing pyarrow (+numpy) costs ~0.3 s.
            cur = self.con.execute(sql, params or [])
            cols = [d[0] for d in cur.description or []]
            head = cur.fetchmany(SMALL_ROWS)
            if len(head) < SMALL_ROWS:
                cur.fetchall()
                return pl.DataFrame(head, schema=cols, orient="row", infer_schema_length=None)
            cur.fetchall()  # complete the pending result before the Arrow query
            table = self.con.sql(sql, params=params or []).to_arrow_table()
            return pl.from_arrow(table)  # type: ignore[return-value]

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        """Append an Arrow table in one statement (one transaction)."""
        if data.num_rows == 0:
            return
        with self._lock:
            cur = self.con.cursor()
            try:
                cur.register("_incoming", data)
                cols = ", ".join(f'"{c}"' for c in data.column_names)
                cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _incoming")
                cur.unregister("_incoming")
            except Exception as exc:
                raise StoreError(_explain(exc, self.path)) from None
            finally:
                cur.close()

    # -- runs ------------------------------------------------------------------------------
    def create_run(self, row: dict[str, Any]) -> None:
        row = {k: (json.dumps(v) if k in ("config", "summary", "gate") and v is not None else v) for k, v in row.items()}
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", list(row.values()))

    def update_run(self, run_id: str, **fields: Any) -> None:
        if not fields:
            return
        vals = [json.dumps(v) if k in ("config", "summary", "gate") and v is not None else v for k, v in fields.items()]
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*vals, run_id])

    def get_run(self, run_id: str) -> dict[str, Any]:
        rows = self.query("SELECT * FROM runs WHERE run_id = ? OR run_id LIKE ? ORDER BY started_at", [run_id, run_id + "%"])
        if not rows:
            raise UserError(f"{self.path}: no run '{run_id}' in this store (see `evalkit runs`)")
        if len(rows) > 1 and rows[0]["run_id"] != run_id:
            raise UserError(f"run id prefix '{run_id}' is ambiguous: {', '.join(r['run_id'] for r in rows[:5])}")
        row = rows[0]
        for k in ("config", "summary", "gate"):
            if isinstance(row.get(k), str):
                row[k] = json.loads(row[k])
        return row

    def list_runs(self, limit: int = 50, suite: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE suite = ?", [suite]) if suite else ("", [])
        rows = self.query(
            f"SELECT run_id, suite, status, started_at, ended_at, cases_total, target, git_commit, summary"
            f" FROM runs {where} ORDER BY started_at DESC LIMIT {int(limit)}",
            params,
        )
        for row in rows:
            if isinstance(row.get("summary"), str):
                row["summary"] = json.loads(row["summary"])
        return rows

    # -- results ---------------------------------------------------------------------------
    def write_results(self, results: Iterable[CaseResult], inputs: dict[str, dict[str, Any]] | None = None) -> None:
        """Append case results and their scores (two bulk inserts)."""
        from evalkit.store.arrow_rows import result_columns

        cases, scores = result_columns(list(results), inputs or {})
        try:
            with self.transaction():
                for name, cols in (("case_results", cases), ("scores", scores)):
                    self._append(name, cols)
        except Exception as exc:
            raise StoreError(_explain(exc, self.path)) from None

    def _append(self, table: str, cols: dict[str, list[Any]]) -> None:
        """Insert columns: a multi-row VALUES statement when small, one Arrow scan when large."""
        n = len(next(iter(cols.values()), []))
        if n == 0:
            return
        names = ", ".join(f'"{c}"' for c in cols)
        if n < 64:
            row = "(" + ", ".join("?" for _ in cols) + ")"
            params = [v for i in range(n) for v in (col[i] for col in cols.values())]
            self.con.execute(f"INSERT INTO {table} ({names}) VALUES " + ", ".join(row for _ in range(n)), params)
            return
        from evalkit.store.arrow_rows import to_arrow

        self.con.register("_incoming", to_arrow(table, cols))
        try:
            self.con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _incoming")
        finally:
            self.con.unregister("_incoming")


def open_store(path: Path | str | None = None, *, read_only: bool = False) -> Store:
    """Open the store at ``path`` (default: :func:`default_store_path`)."""
    return Store(path or default_store_path(), read_only=read_only)
