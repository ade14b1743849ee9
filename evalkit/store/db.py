"""Opening the store, migrating it, and the reads and writes everything else uses."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import StoreCorrupt, StoreError, StoreLocked, UserError
from evalkit.store import large_values
from evalkit.store.lease import Lease, is_lock_conflict, lease_for
from evalkit.store.migrations import LATEST, MIGRATIONS

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from evalkit.schema import CaseResult

DEFAULT_WORKSPACE = ".evalkit"
SMALL_ROWS = 2048
Params = Sequence[Any] | dict[str, Any] | None  # below this, rows move as Python tuples rather than through Arrow


def default_store_path() -> Path:
    """``$EVALKIT_STORE``, else ``.evalkit/evalkit.duckdb`` in the working directory."""
    env = os.environ.get("EVALKIT_STORE")
    return Path(env) if env else Path(DEFAULT_WORKSPACE) / "evalkit.duckdb"


MEMORY_ENV = "EVALKIT_STORE_MEMORY"
DEFAULT_MEMORY = "128MB"
MIN_MEMORY = 8 * 2**20
EVALKIT_TABLES = frozenset({"runs", "case_results", "scores", "spans"})
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20,
          "gib": 2**30, "tib": 2**40}
_DAMAGE = ("corrupt", "checksum", "could not read enough bytes", "not a valid duckdb database", "deserializ")
_OUT_OF_MEMORY = ("out of memory", "failed to pin", "could not allocate")


def memory_limit() -> tuple[str, int]:
    """The writer's DuckDB memory limit from ``$EVALKIT_STORE_MEMORY`` (default 128MB): as given, and in bytes."""
    text = os.environ.get(MEMORY_ENV, "").strip() or DEFAULT_MEMORY
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)", text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise UserError(f"{MEMORY_ENV}={text!r}: give a size such as 256MB or 1GB")
    size = int(float(m.group(1)) * _UNITS[unit])
    if size < MIN_MEMORY:
        raise UserError(f"{MEMORY_ENV}={text!r}: the store needs at least 8MB")
    return text, size


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_damage(text: str) -> bool:
    low = text.lower()
    return any(k in low for k in _DAMAGE)


def _corrupt(path: Path, what: str) -> StoreCorrupt:
    err = StoreCorrupt(f"{path}: the store file is damaged ({what}); `evalkit doctor --store {path}` checks it "
                       "and says how to recover")
    err.reason = what
    return err


def store_error(exc: BaseException, path: Path) -> StoreError:
    """A DuckDB or OS failure on the store as one typed, one-line error (corrupt, locked, out of memory …)."""
    return _known_fault(exc, path) or StoreError(f"{path}: cannot open the store: {_first_line(exc)}")


def _known_fault(exc: BaseException, path: Path) -> StoreError | None:
    """The failure when it is the file's or the machine's (damage, lock, memory, permissions, disk), else None."""
    first = _first_line(exc)
    low = str(exc).lower()
    if _is_damage(low):
        return _corrupt(path, first)
    if "could not set lock" in low or "conflicting lock" in low:
        return StoreLocked(f"{path}: the store is locked by another process ({first}); wait for it or use --store")
    if any(k in low for k in _OUT_OF_MEMORY):
        limit = os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY
        return StoreError(f"{path}: the store ran out of memory ({MEMORY_ENV}={limit}; {first}); "
                          f"raise {MEMORY_ENV}, e.g. to 512MB")
    if "read-only" in low or "permission" in low:
        return StoreError(f"{path}: the store is not writable ({first})")
    if "no space" in low or "errno 28" in low:
        return StoreError(f"{path}: disk full while writing the store")
    return None


class GuardedConnection:
    """The DuckDB connection as other modules see it: a damaged file raises :class:`StoreCorrupt`, not a DuckDB error."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self._con, self._path = con, path

    def _guard(self, exc: Exception) -> None:
        if _is_damage(str(exc)):
            raise _corrupt(self._path, _first_line(exc)) from None

    def execute(self, sql: str, params: Params = None) -> GuardedConnection:
        try:
            self._con.execute(sql, params or [])
        except Exception as exc:
            self._guard(exc)
            raise
        return self

    @property
    def description(self) -> Any:
        return self._con.description

    def fetchall(self) -> list[Any]:
        try:
            return self._con.fetchall()
        except Exception as exc:
            self._guard(exc)
            raise

    def fetchone(self) -> Any:
        try:
            return self._con.fetchone()
        except Exception as exc:
            self._guard(exc)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


class Store:
    """The workspace store: a DuckDB file several processes share, through one :class:`Lease` per process.

    Nothing holds the file between operations: each one opens it (writable, or read-only for a reader),
    and it is let go when idle or when another process knocks (:mod:`evalkit.store.lease`), so readers,
    runs, pytest sessions and ``collect`` take turns on one file. Every failure is a :class:`StoreError`
    naming the file: :class:`StoreCorrupt` for a damaged file, :class:`StoreLocked` when another process
    kept it past ``$EVALKIT_STORE_WAIT``, a newer or unknown schema in plain words.
    """

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise StoreError(f"{self.path}: no store here yet; run `evalkit run` first or pass --store")
        self._memory = ("", 0) if read_only else memory_limit()
        self.inline_limit = large_values.inline_limit(self._memory[1]) if not read_only else 0
        if not read_only:
            with contextlib.suppress(OSError):
                self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lease = lease_for(self.path, functools.partial(connect_file, self.path))
        self._lease.attach()
        self._pinned = self._closed = False
        if str(self.path) == ":memory:":  # an in-memory database lives only while its connection is open
            self._lease.pin(writable=True)
            self._pinned = True
        try:
            with self._use() as con:
                self._check_size(con)
                if read_only:
                    self._schema_version(con)
                else:
                    self._migrate(con)
        except BaseException:
            self.close()
            raise

    def _use(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        """The connection for one operation (a failure to open it is a :class:`StoreError`: see :func:`connect_file`)."""
        return self._lease.use(writable=not self.read_only)

    @property
    def con(self) -> GuardedConnection:
        """A connection kept open until :meth:`close`, for ad-hoc queries (``evalkit sql``, doctor)."""
        con = self._lease.pin(writable=not self.read_only)
        self._pinned = True
        return GuardedConnection(con, self.path)

    @property
    def lease(self) -> Lease:
        return self._lease

    def _recover(self) -> None:
        """After a FATAL DuckDB error (an autocheckpoint out of memory): reopen, and checkpoint unbounded."""
        import duckdb

        self._lease.drop()
        try:
            with self._use() as con:
                _checkpoint(con, self._memory[1])
        except duckdb.Error as exc:
            raise store_error(exc, self.path) from None

    def _check_size(self, con: duckdb.DuckDBPyConnection) -> None:
        """A file shorter than its used blocks was cut short (a copy, a full disk). Only the used blocks count:
        free ones at the end may never have been written. Skipped while a log is pending (blocks in memory)."""
        if str(self.path) == ":memory:" or Path(f"{self.path}.wal").exists():
            return
        try:
            row = con.execute("PRAGMA database_size").fetchone()
            size = self.path.stat().st_size
        except Exception as exc:
            raise store_error(exc, self.path) from None
        if row is not None and isinstance(row[2], int) and isinstance(row[4], int):  # block size, used blocks
            expected = 3 * 4096 + row[2] * row[4]
            if size < expected:
                raise _corrupt(self.path, f"truncated: {size} bytes, its {row[4]} used blocks need {expected}")

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Let go of the file (a pinned connection included); the lease closes it when no one uses it."""
        if self._closed:
            return
        self._closed = True
        if str(self.path) == ":memory:":
            self._lease.close()
            return
        if self._pinned:
            self._lease.unpin()
            self._pinned = False
        self._lease.detach()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _schema_version(self, con: duckdb.DuckDBPyConnection) -> int | None:
        """The store's schema version (None for an empty file); unknown or newer schemas raise one clear line."""
        try:
            tables = {r[0] for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
                " AND schema_name = 'main'").fetchall()}
            row = con.execute("SELECT max(version) FROM schema_version").fetchone() \
                if "schema_version" in tables else None
        except Exception as exc:
            raise store_error(exc, self.path) from None
        version = int(row[0]) if row and row[0] is not None else None
        if not version and tables & EVALKIT_TABLES:
            raise StoreError(f"{self.path}: the file has evalkit tables but no schema version (not written by "
                             f"evalkit, or damaged); `evalkit doctor --store {self.path}` says how to recover")
        if version is not None and version > LATEST:
            raise StoreError(f"{self.path}: store schema v{version} is newer than this evalkit (v{LATEST}); "
                             "upgrade evalkit or pass --store")
        if version is None and self.read_only:
            raise StoreError(f"{self.path}: no store here yet (the file has no evalkit tables); run `evalkit run` "
                             "first or pass --store")
        return version

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        current = self._schema_version(con) or 0
        try:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
            for version, sql in MIGRATIONS:
                if version <= current:
                    continue
                con.execute("BEGIN TRANSACTION")
                try:
                    con.execute(sql)
                    con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, datetime.now(UTC)])
                    con.execute("COMMIT")
                except Exception:
                    with contextlib.suppress(Exception):
                        con.execute("ROLLBACK")
                    raise
        except Exception as exc:
            raise store_error(exc, self.path) from None

    @contextlib.contextmanager
    def _errors(self, *, writing: bool = False) -> Iterator[None]:
        """Failures that are the file's or the machine's (damage, lock, memory, disk) as :class:`StoreError`;
        ``writing``: every failure. A FATAL error reopens the connection first; when DuckDB reports the commit
        durable (an autocheckpoint that ran out of memory) the statement stands and nothing is raised."""
        import duckdb

        try:
            yield
        except duckdb.FatalException as exc:
            if not self.read_only:
                self._recover()
            if "commit succeeded and is durable" not in str(exc).lower():
                raise store_error(exc, self.path) from None
        except StoreError:
            raise
        except Exception as exc:
            fault = _known_fault(exc, self.path) if isinstance(exc, (duckdb.Error, OSError)) else None
            if fault is not None:
                raise fault from None
            if writing:
                raise store_error(exc, self.path) from None
            raise

    # -- generic ---------------------------------------------------------------------------
    def execute(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Run a statement and fetch its rows (results are never left pending on the connection)."""
        rows: list[tuple[Any, ...]] = []
        with self._errors(), self._use() as con:
            rows = con.execute(sql, params or []).fetchall()
        return rows

    @contextlib.contextmanager
    def session(self) -> Iterator[Store]:
        """Keep one connection across a block of operations that share its state (``ATTACH`` … ``DETACH``);
        other processes wait until the block ends."""
        with self._lease.pinned(writable=not self.read_only):
            yield self

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Hold the file for a block of statements that commit or roll back together."""
        with self._lease.pinned(writable=not self.read_only) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield self
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):  # a failed COMMIT has already ended it
                    con.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        """Rows as dicts."""
        with self._errors(), self._use() as con:
            cur = con.execute(sql, params or [])
            cols = [d[0] for d in cur.description or []]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def frame(self, sql: str, params: Params = None) -> pl.DataFrame:
        """A query's result as a polars DataFrame (large results through the Arrow C stream interface, no pyarrow)."""
        import polars as pl

        with self._errors(), self._use() as con:
            # Small results are built from Python rows, large ones read again as an Arrow stream.
            cur = con.execute(sql, params or [])
            cols = [d[0] for d in cur.description or []]
            head = cur.fetchmany(SMALL_ROWS)
            if len(head) < SMALL_ROWS:
                cur.fetchall()
                return pl.DataFrame(head, schema=cols, orient="row", infer_schema_length=None)
            cur.fetchall()  # complete the pending result before the Arrow query
            return pl.DataFrame(con.sql(sql, params=params or [])).rechunk()  # polars reads the relation's stream

    def insert_frame(self, table: str, data: pl.DataFrame) -> None:
        """Append a polars frame in one statement (one transaction), scanned as an Arrow stream (no pyarrow)."""
        from evalkit.store.arrow_rows import ArrowStream

        if data.height == 0:
            return
        with self._errors(writing=True), self._use() as con:
            cur = con.cursor()
            try:
                cur.register("_incoming", ArrowStream(data))
                cols = ", ".join(f'"{c}"' for c in data.columns)
                cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _incoming")
                cur.unregister("_incoming")
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
        """Append case results and their scores (two bulk inserts in one transaction); values longer than
        :attr:`inline_limit` go to side files (:mod:`evalkit.store.large_values`)."""
        from evalkit.store.arrow_rows import result_columns

        cases, scores = result_columns(list(results), inputs or {})
        if self.inline_limit and str(self.path) != ":memory:":
            try:
                for name, cols in (("case_results", cases), ("scores", scores)):
                    large_values.spill(name, cols, self.path, self.inline_limit)
            except OSError as exc:
                raise StoreError(f"{large_values.values_dir(self.path)}: cannot write a large value "
                                 f"({_first_line(exc)})") from None
        with self._errors(writing=True), self.transaction():
            for name, cols in (("case_results", cases), ("scores", scores)):
                self._append(name, cols)

    def _append(self, table: str, cols: dict[str, list[Any]]) -> None:
        with self._use() as con:
            _append_columns(con, table, cols)

    def full_value(self, value: Any) -> Any:
        """A decoded JSON column value in full, read from its side file when it was stored as a marker."""
        return large_values.load(value, self.path)


def _append_columns(con: duckdb.DuckDBPyConnection, table: str, cols: dict[str, list[Any]]) -> None:
    """Insert columns: a multi-row VALUES statement when small, one Arrow stream scan when large."""
    n = len(next(iter(cols.values()), []))
    if n == 0:
        return
    names = ", ".join(f'"{c}"' for c in cols)
    if n < 64:
        row = "(" + ", ".join("?" for _ in cols) + ")"
        params = [v for i in range(n) for v in (col[i] for col in cols.values())]
        con.execute(f"INSERT INTO {table} ({names}) VALUES " + ", ".join(row for _ in range(n)), params)
        return
    from evalkit.store.arrow_rows import ArrowStream, to_frame

    con.register("_incoming", ArrowStream(to_frame(table, cols)))
    try:
        con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _incoming")
    finally:
        con.unregister("_incoming")


def _checkpoint(con: duckdb.DuckDBPyConnection, memory_bytes: int) -> None:
    """Checkpoint with the memory limit lifted (it rewrites whole row groups, old large values included)."""
    con.execute("RESET memory_limit")
    try:
        con.execute("CHECKPOINT")
    finally:
        if memory_bytes:
            con.execute(f"SET memory_limit = '{memory_bytes}B'")


def connect_file(path: Path, writable: bool) -> duckdb.DuckDBPyConnection:
    """Open the file. The writer's buffer pool is bounded (``$EVALKIT_STORE_MEMORY``), spilling to
    ``<store>.tmp``; readers keep DuckDB's default. A log left by a crash is checkpointed at once with
    the limit lifted, so a store that outgrew the limit is never left unopenable for writers. DuckDB's
    lock error passes through (the lease waits for its turn); every other failure is a :class:`StoreError`."""
    import duckdb

    try:
        return _connect(path, writable)
    except (duckdb.Error, OSError) as exc:
        if is_lock_conflict(exc):
            raise
        raise store_error(exc, path) from None


def _connect(path: Path, writable: bool) -> duckdb.DuckDBPyConnection:
    import duckdb

    memory = memory_limit() if writable else ("", 0)
    if not writable:
        config: dict[str, str | bool | int | float | list[str]] = {}
    else:
        config = {"memory_limit": memory[0]}
        if str(path) != ":memory:":
            config["temp_directory"] = f"{path}.tmp"
    try:
        con = duckdb.connect(str(path), read_only=not writable, config=config)
    except duckdb.Error as exc:
        if not writable or not any(k in str(exc).lower() for k in _OUT_OF_MEMORY):
            raise
        config.pop("memory_limit")  # replaying a large log: unbounded, then bounded again
        con = duckdb.connect(str(path), config=config)
        con.execute(f"SET memory_limit = '{memory[1]}B'")
    if writable and Path(f"{path}.wal").exists():
        _checkpoint(con, memory[1])
    return con


def open_store(path: Path | str | None = None, *, read_only: bool = False) -> Store:
    """Open the store at ``path`` (default: :func:`default_store_path`)."""
    return Store(path or default_store_path(), read_only=read_only)
