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
from typing import TYPE_CHECKING, Any, TypeVar

from evalkit.errors import StoreCorrupt, StoreError, StoreLocked, UserError
from evalkit.store import lake, large_values
from evalkit.store.lease import Lease, is_lock_conflict, lease_for, wait_limit
from evalkit.store.literals import inline
from evalkit.store.migrations import LATEST, MIGRATIONS

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb
    import polars as pl

    from evalkit.schema import CaseResult

T = TypeVar("T")
DEFAULT_WORKSPACE = ".evalkit"
SMALL_ROWS = 2048
Params = Sequence[Any] | dict[str, Any] | None  # below this, rows move as Python tuples rather than through Arrow


def default_store_path() -> Path:
    """``$EVALKIT_STORE``, else ``.evalkit/evalkit.duckdb`` in the working directory (a team store's URL
    comes back as a Path too; :class:`Store` reads it as the URL again)."""
    env = os.environ.get("EVALKIT_STORE")
    return Path(env) if env else Path(DEFAULT_WORKSPACE) / "evalkit.duckdb"


KEEP_SNAPSHOTS = "'7 days'"  # a team store's time travel reaches back this far after `evalkit compact`
TEAM_ANCHOR = Path(DEFAULT_WORKSPACE) / "team.store"  # a team store's local side: progress files, embedded MLflow


def local_anchor(store: Path | str) -> Path:
    """The file, or for a team store's URL :data:`TEAM_ANCHOR` (what stays on this machine sits beside it)."""
    return TEAM_ANCHOR if lake.is_store_url(store) else Path(store)


MEMORY_ENV = "EVALKIT_STORE_MEMORY"
DEFAULT_MEMORY = "128MB"
# DuckDB checkpoints when its log passes 16MB; a checkpoint that closes a row group filled by many small
# commits costs more the larger the table (measured: 0.3 s at 140k rows, 1.9 s at 500k), so span inserts
# slowed as a store grew (13 → 20 µs a span by 2.5M rows). The writer checkpoints every twice its memory
# limit of log instead (256MB by default: 5–9 µs a span, flat to 2.5M rows); rows past the limit spill to
# ``<store>.tmp``, and a crash leaves at most that much log, replayed with the limit lifted (:func:`_connect`;
# 130MB of log: 1.5 s).
MIN_CHECKPOINT = 16 * 2**20


def checkpoint_threshold(memory_bytes: int) -> int:
    """Bytes of log after which the writer checkpoints: twice its memory limit, at least DuckDB's 16MiB."""
    return max(MIN_CHECKPOINT, 2 * memory_bytes)


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


def _corrupt(path: Path | str, what: str) -> StoreCorrupt:
    err = StoreCorrupt(f"{path}: the store file is damaged ({what}); `evalkit doctor --store {path}` checks it "
                       "and says how to recover")
    err.reason = what
    return err


def store_error(exc: BaseException, path: Path | str, *, doing: str = "open the store") -> StoreError:
    """A DuckDB or OS failure on the store as one typed, one-line error (corrupt, locked, out of memory …)."""
    return _known_fault(exc, path) or StoreError(f"{path}: cannot {doing}: {_first_line(exc)}")


def _known_fault(exc: BaseException, path: Path | str) -> StoreError | None:
    """The failure when it is the file's or the machine's (damage, lock, memory, permissions, disk), else None."""
    first = _first_line(exc)
    low = str(exc).lower()
    if "created with an newer version of duckdb" in low or "created with a newer version of duckdb" in low:
        import duckdb

        return StoreError(f"{path}: the store was written by a newer DuckDB than this evalkit's {duckdb.__version__} "
                          "(evalkit 0.1 stored on DuckDB 2.0; the team store needs 1.5.5, see the README's "
                          "\"A store a team shares\"); keep using the evalkit that wrote it for this store, or start "
                          "a new one with --store")
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

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | str) -> None:
        self._con, self._path = con, path

    def _guard(self, exc: Exception) -> None:
        if _is_damage(str(exc)):
            raise _corrupt(self._path, _first_line(exc)) from None

    def execute(self, sql: str, params: Params = None) -> GuardedConnection:
        try:
            self._con.execute(*inline(sql, params or []))
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
    """The store: a DuckDB file several processes share, through one :class:`Lease` per process, or a team
    store's URL (DuckLake on PostgreSQL, :mod:`evalkit.store.lake`) that many machines share.

    Nothing holds the file between operations: each one opens it (writable, or read-only for a reader),
    and it is let go when idle or when another process knocks (:mod:`evalkit.store.lease`), so readers,
    runs, pytest sessions and ``collect`` take turns on one file. Every failure is a :class:`StoreError`
    naming the file: :class:`StoreCorrupt` for a damaged file, :class:`StoreLocked` when another process
    kept it past ``$EVALKIT_STORE_WAIT``, a newer or unknown schema in plain words.

    ``label`` names the store in messages (a URL's password redacted). ``path`` is the file, or for a team
    store :data:`TEAM_ANCHOR`, whose directory keeps what stays on this machine (progress files, the
    embedded MLflow store).
    """

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.read_only = read_only
        self.url = lake.parse_url(path) if lake.is_store_url(path) else None
        if self.url is None:
            lake.check_not_url(str(path))
        self.path = TEAM_ANCHOR if self.url else Path(path)
        self.label = self.url.label if self.url else str(self.path)
        if read_only and self.url is None and not self.path.exists():
            raise StoreError(f"{self.path}: no store here yet; run `evalkit run` first or pass --store")
        self._memory = ("", 0) if read_only or self.url else memory_limit()
        self.inline_limit = large_values.inline_limit(self._memory[1]) if self._memory[1] else 0
        if not read_only and self.url is None:
            with contextlib.suppress(OSError):
                self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lease: Lease | lake.LakeLease = lake.lease_for(self.url) if self.url else \
            lease_for(self.path, functools.partial(connect_file, self.path))
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
    def lease(self) -> Lease | lake.LakeLease:
        return self._lease

    @property
    def shared(self) -> bool:
        """A team store (many machines write it at once), not a file."""
        return self.url is not None

    def _retry(self, fn: Callable[[], T]) -> T:
        """``fn`` once for a file; for a team store, again after a commit conflict (nothing of it was applied)."""
        if self.url is None:
            return fn()
        return lake.retrying(fn, label=self.label, wait_s=wait_limit())

    def atomic(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(self)`` in one transaction; on a team store, whole again when its commit lost a race."""
        def once() -> T:
            with self.transaction():
                return fn(self)
        return self._retry(once)

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
        if self.url or str(self.path) == ":memory:" or Path(f"{self.path}.wal").exists():
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
            raise store_error(exc, self.label) from None
        version = int(row[0]) if row and row[0] is not None else None
        if not version and tables & EVALKIT_TABLES:
            raise StoreError(f"{self.label}: the store has evalkit tables but no schema version (not written by "
                             f"evalkit, or damaged); `evalkit doctor --store {self.label}` says how to recover")
        if version is not None and version > LATEST:
            raise StoreError(f"{self.label}: store schema v{version} is newer than this evalkit (v{LATEST}); "
                             "upgrade evalkit or pass --store")
        if version is None and self.read_only:
            raise StoreError(f"{self.label}: no store here yet (no evalkit tables); run `evalkit run` "
                             "first or pass --store")
        return version

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        """Apply the missing migrations, each in its own transaction. On a team store several clients may
        try at once: the losers' commits conflict, and they look again (DuckLake has no primary keys)."""
        try:
            self._retry(functools.partial(self._migrate_once, con))
        except StoreError:
            raise
        except Exception as exc:
            raise store_error(exc, self.label) from None

    def _migrate_once(self, con: duckdb.DuckDBPyConnection) -> None:
        current = self._schema_version(con) or 0
        if current >= LATEST:
            return
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
        for version, sql in MIGRATIONS:
            if version <= current:
                continue
            if self.url:
                sql = sql.replace(" PRIMARY KEY", "")
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(sql)
                con.execute(*inline("INSERT INTO schema_version VALUES (?, ?)", [version, datetime.now(UTC)]))
                con.execute("COMMIT")
            except Exception as exc:
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK")
                if self.url and "already exists" in str(exc).lower():  # another client applied it first
                    raise RuntimeError(f"Transaction conflict: {_first_line(exc)}") from None
                raise

    @contextlib.contextmanager
    def _errors(self, *, writing: bool = False) -> Iterator[None]:
        """Failures that are the file's or the machine's (damage, lock, memory, disk) as :class:`StoreError`;
        ``writing``: every failure. A FATAL error reopens the connection first; when DuckDB reports the commit
        durable (an autocheckpoint that ran out of memory) the statement stands and nothing is raised."""
        import duckdb

        try:
            yield
        except duckdb.FatalException as exc:
            if not self.read_only and self.url is None:
                self._recover()
            if "commit succeeded and is durable" not in str(exc).lower():
                raise store_error(exc, self.label) from None
        except StoreError:
            raise
        except Exception as exc:
            fault = _known_fault(exc, self.label) if isinstance(exc, (duckdb.Error, OSError)) else None
            if fault is not None:
                raise fault from None
            if writing:
                raise store_error(exc, self.label, doing="write to the store") from None
            raise

    # -- generic ---------------------------------------------------------------------------
    def execute(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Run a statement and fetch its rows (results are never left pending on the connection)."""
        def once() -> list[tuple[Any, ...]]:
            with self._use() as con:
                return con.execute(*inline(sql, params or [])).fetchall()
        with self._errors():
            return self._retry(once)

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
            cur = con.execute(*inline(sql, params or []))
            cols = [d[0] for d in cur.description or []]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def frame(self, sql: str, params: Params = None, *, large: bool = False) -> pl.DataFrame:
        """A query's result as a polars DataFrame (large results through the Arrow C stream interface, no pyarrow;
        ``large``: read it that way at once, when the caller expects many rows — the query then runs once)."""
        import polars as pl

        sql, params = inline(sql, params or [])
        with self._errors(), self._use() as con:
            if large:
                return pl.DataFrame(con.sql(sql, params=params or [])).rechunk()
            # Small results are built from Python rows, large ones read again as an Arrow stream.
            cur = con.execute(sql, params or [])
            cols = [d[0] for d in cur.description or []]
            head = cur.fetchmany(SMALL_ROWS)
            if len(head) < SMALL_ROWS:
                cur.fetchall()
                return pl.DataFrame(head, schema=cols, orient="row", infer_schema_length=None)
            # The rest is read as Arrow (fetching it as Python rows first costs ~1 kB per row of peak memory).
            return pl.DataFrame(con.sql(sql, params=params or [])).rechunk()  # polars reads the relation's stream

    def insert_frame(self, table: str, data: pl.DataFrame) -> None:
        """Append a polars frame in one statement (one transaction), scanned as an Arrow stream (no pyarrow)."""
        from evalkit.store.arrow_rows import stream_of

        if data.height == 0:
            return

        def once() -> None:
            with self._use() as con:  # this connection: inside a transaction, the insert is part of it
                con.register("_incoming", stream_of(data))
                try:
                    cols = ", ".join(f'"{c}"' for c in data.columns)
                    con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _incoming")
                finally:
                    con.unregister("_incoming")
        with self._errors(writing=True):
            self._retry(once)

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
            raise UserError(f"{self.label}: no run '{run_id}' in this store (see `evalkit runs`)")
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
        if self.inline_limit and self.url is None and str(self.path) != ":memory:":
            try:
                for name, cols in (("case_results", cases), ("scores", scores)):
                    large_values.spill(name, cols, self.path, self.inline_limit)
            except OSError as exc:
                raise StoreError(f"{large_values.values_dir(self.path)}: cannot write a large value "
                                 f"({_first_line(exc)})") from None
        def once(store: Store) -> None:
            for name, cols in (("case_results", cases), ("scores", scores)):
                store._append(name, cols)
        with self._errors(writing=True):
            self.atomic(once)

    def _append(self, table: str, cols: dict[str, list[Any]]) -> None:
        with self._use() as con:
            _append_columns(con, table, cols)

    def compact(self) -> dict[str, int]:
        """Upkeep. A team store: inlined rows flushed to Parquet, small files merged, snapshots older than
        ``KEEP_SNAPSHOTS`` expired and their files removed (DuckLake runs these beside other writers).
        A file: a checkpoint. Returns what was done, by kind."""
        if self.url is None:
            with self._errors(writing=True), self._use() as con:
                _checkpoint(con, self._memory[1])
            return {"checkpoints": 1}
        a = lake.ALIAS
        steps = {"tables_flushed": f"CALL ducklake_flush_inlined_data('{a}')",
                 "files_merged": f"CALL ducklake_merge_adjacent_files('{a}')",
                 "snapshots_expired": f"CALL ducklake_expire_snapshots('{a}', older_than => now() - INTERVAL {KEEP_SNAPSHOTS})",
                 "files_removed": f"CALL ducklake_cleanup_old_files('{a}', older_than => now() - INTERVAL {KEEP_SNAPSHOTS})"}
        return {kind: len(self.execute(sql)) for kind, sql in steps.items()}

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
        con.execute(*inline(f"INSERT INTO {table} ({names}) VALUES " + ", ".join(row for _ in range(n)), params))
        return
    from evalkit.store.arrow_rows import stream_of, to_frame

    con.register("_incoming", stream_of(to_frame(table, cols)))
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
    config: dict[str, str | bool | int | float | list[str]] = {}
    if writable:
        config["memory_limit"] = memory[0]
        if str(path) != ":memory:":
            config["temp_directory"] = f"{path}.tmp"
            config["checkpoint_threshold"] = f"{checkpoint_threshold(memory[1])}B"
    replay = writable and Path(f"{path}.wal").exists()
    if replay:  # a log left by a crash may hold more than the limit: replayed unbounded, then bounded again
        config.pop("memory_limit")
    con = duckdb.connect(str(path), read_only=not writable, config=config)
    lake.quiet_progress(con)
    if replay:
        _checkpoint(con, memory[1])
    return con


def open_store(path: Path | str | None = None, *, read_only: bool = False) -> Store:
    """Open the store at ``path`` (default: :func:`default_store_path`)."""
    return Store(path or default_store_path(), read_only=read_only)
