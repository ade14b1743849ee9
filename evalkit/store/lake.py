"""The team store: DuckLake tables with a PostgreSQL catalog, shared by every machine of a team.

Selected by one setting, ``EVALKIT_STORE`` (or ``--store``)::

    ducklake+postgresql://USER:PASSWORD@HOST:PORT/DBNAME?data_path=/shared/evalkit-lake

PostgreSQL holds the catalog (snapshots, schemas, file lists, small inlined commits); the rows
are Parquet files under ``data_path`` (a shared disk, or object storage DuckDB can write). Any
number of processes on any number of machines read and write at once with snapshot isolation:
appends never conflict; an update or delete that races another write to the same table fails
its commit and is retried (:func:`retrying`), never half-applied. ``data_path`` is needed once,
by the first client; later clients read it from the catalog. The password may also come from
``PGPASSWORD`` or ``~/.pgpass`` (libpq's usual places) and is redacted from every message.

The DuckDB extensions (``ducklake``, ``postgres_scanner``) come from PyPI wheels built for DuckDB
1.5.5 (``pip install 'evalkit[team]'``) and are loaded from those packages, never downloaded.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from evalkit.errors import StoreError, UserError
from evalkit.redact import redact

if TYPE_CHECKING:
    import duckdb

T = TypeVar("T")
ALIAS = "evalkit_lake"
SCHEMES = ("ducklake+postgresql", "ducklake+postgres")
_URL = re.compile(r"^(ducklake\+postgres(?:ql)?):/+(.*)$", re.S)  # Path("a://b") collapses to "a:/b"
_OTHER_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # a scheme (two letters at least: not C:/)
EXTENSIONS = (("duckdb_extension_postgres_scanner", "postgres_scanner"), ("duckdb_extension_ducklake", "ducklake"))
CREATE_ATTEMPTS = 20
TEAM_EXTRA = "pip install 'evalkit[team]'"


def is_store_url(target: object) -> bool:
    """Whether a ``--store`` / ``$EVALKIT_STORE`` value names a team store rather than a file."""
    return bool(_URL.match(str(target)))


def check_not_url(target: str) -> None:
    """A URL evalkit does not store into (``postgresql://``, ``s3://``) is a clear error, not a file name."""
    if _OTHER_URL.match(target) and not is_store_url(target):
        target = re.sub(r":/+", "://", target, count=1)  # as typed (a Path collapsed it), so redaction sees the URL
        raise UserError(f"--store/EVALKIT_STORE {redact(target)!r}: a team store URL starts with "
                        "ducklake+postgresql:// (e.g. ducklake+postgresql://user@db-host/evalkit?data_path=/shared/lake);"
                        " anything else is a DuckDB file path")


@dataclass(frozen=True)
class LakeUrl:
    """A parsed team-store URL."""

    host: str
    port: int | None
    dbname: str
    user: str | None
    password: str | None
    data_path: str | None
    text: str  # normalised, with the password

    @property
    def label(self) -> str:
        """The URL for messages: the password redacted."""
        return redact(self.text, [self.password])

    def conninfo(self) -> str:
        """libpq key=value connection string (values quoted)."""
        parts = {"dbname": self.dbname, "host": self.host, "port": str(self.port) if self.port else None,
                 "user": self.user, "password": self.password}
        return " ".join(f"{k}={_quote(v)}" for k, v in parts.items() if v)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_url(target: object) -> LakeUrl:
    """Parse ``ducklake+postgresql://USER:PASSWORD@HOST:PORT/DBNAME?data_path=DIR``; bad parts say which."""
    m = _URL.match(str(target))
    if not m:
        raise UserError(f"{redact(str(target))!r} is not a team store URL (ducklake+postgresql://...)")
    text = f"{m.group(1)}://{m.group(2)}"
    parts = urlsplit(text)
    label = redact(text, [parts.password])
    dbname = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not dbname:
        raise UserError(f"{label}: a team store URL needs a host and a database name "
                        "(ducklake+postgresql://USER@HOST:PORT/DBNAME)")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"data_path"})
    if unknown:
        raise UserError(f"{label}: unknown parameter {unknown[0]!r} (the URL takes data_path=)")
    try:
        port = parts.port
    except ValueError:
        raise UserError(f"{label}: the port is not a number") from None
    data_path = query.get("data_path", [None])[-1] or None
    return LakeUrl(host=parts.hostname, port=port, dbname=dbname,
                   user=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None,
                   data_path=data_path, text=text)


def extension_files() -> list[Path]:
    """The packaged extension binaries, in load order; a clear error naming the extra when missing."""
    import duckdb

    files = []
    for module, name in EXTENSIONS:
        spec = importlib.util.find_spec(module)
        root = Path(next(iter(spec.submodule_search_locations or []), "")) if spec else None
        path = root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension" if root else None
        if path is None or not path.is_file():
            raise UserError(f"the team store needs DuckDB's {name} extension for DuckDB {duckdb.__version__}: "
                            f"{TEAM_EXTRA}")
        files.append(path)
    return files


def quiet_progress(con: duckdb.DuckDBPyConnection) -> None:
    """No DuckDB progress bar on the user's stderr for a slow store query (in Jupyter DuckDB refuses to change
    the setting without ipywidgets: the bar is then not a terminal's to spoil)."""
    with contextlib.suppress(Exception):
        con.execute("SET enable_progress_bar = false")


def is_conflict(exc: BaseException) -> bool:
    """A DuckLake commit that lost a race with another writer (safe to run again: nothing was applied), also
    after DuckLake's own retries of the commit ran out (``ducklake_max_retry_count``) under many writers."""
    low = str(exc).lower()
    return "transaction conflict" in low or ("failed to commit ducklake transaction" in low
                                             and "maximum retry count" in low)


def _is_disconnect(exc: BaseException) -> bool:
    low = str(exc).lower()
    return any(k in low for k in ("server closed the connection", "connection refused", "could not connect",
                                  "connection to server", "terminating connection", "no connection to the server"))


def retrying(fn: Callable[[], T], *, label: str, wait_s: float) -> T:
    """Run ``fn`` again after a commit conflict, with jittered backoff, for at most ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    delay = 0.01
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_conflict(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise StoreError(f"{label}: a write kept conflicting with other writers for {wait_s:.0f} s "
                                 "($EVALKIT_STORE_WAIT); nothing of it was stored; run it again") from None
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5)


class LakeLease:
    """One DuckDB connection per process with the team store attached, kept open while the process lives
    (attaching loads the extensions and reads the catalog), used by one thread at a time. The same interface
    as :class:`~evalkit.store.lease.Lease`; there is no file lock to take turns on, so readers and writers
    never wait for each other."""

    def __init__(self, url: LakeUrl) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._writable = False
        self._depth = 0
        self._users = 0

    @contextlib.contextmanager
    def use(self, *, writable: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            if self._con is None or (writable and not self._writable):
                if self._depth:
                    raise RuntimeError(f"{self.url.label}: a write inside a read of the same store")
                self._open(writable)
            assert self._con is not None
            self._depth += 1
            try:
                yield self._con
            except Exception as exc:
                if _is_disconnect(exc) and self._depth == 1:
                    self._close()  # the next operation connects again
                raise
            finally:
                self._depth -= 1

    @contextlib.contextmanager
    def pinned(self, *, writable: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.use(writable=writable) as con:
            yield con

    def pin(self, *, writable: bool) -> duckdb.DuckDBPyConnection:
        with self.use(writable=writable) as con:
            return con

    def unpin(self) -> None:
        """Nothing to do: the connection stays open until the last store closes."""

    def attach(self) -> None:
        with self._lock:
            self._users += 1

    def detach(self) -> None:
        """A store closed. The connection stays for the next one in this process: there is no lock to let go
        of, and attaching again costs ~200 ms (the extensions load per connection)."""
        with self._lock:
            self._users = max(0, self._users - 1)

    def drop(self) -> None:
        with self._lock:
            self._close()

    def close(self) -> None:
        self.drop()

    def _close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            with contextlib.suppress(Exception):
                con.close()

    def _open(self, writable: bool) -> None:
        import duckdb

        self._close()
        options = [] if writable else ["READ_ONLY"]
        if self.url.data_path:
            options.append(f"DATA_PATH {_literal(self.url.data_path)}")
        attach = (f"ATTACH {_literal('ducklake:postgres:' + self.url.conninfo())} AS {ALIAS}"
                  + (f" ({', '.join(options)})" if options else ""))
        files = extension_files()
        for attempt in range(CREATE_ATTEMPTS):
            con = duckdb.connect()
            try:
                quiet_progress(con)
                for path in files:
                    con.execute(f"LOAD {_literal(str(path))}")
                con.execute(attach)
                con.execute(f"USE {ALIAS}")
            except Exception as exc:
                con.close()
                if _creation_race(exc) and attempt + 1 < CREATE_ATTEMPTS:
                    time.sleep(0.05 * (attempt + 1) * (0.5 + random.random()))
                    continue  # another client is creating the catalog right now: attach to theirs
                raise lake_error(exc, self.url) from None
            self._con, self._writable = con, writable
            return


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _creation_race(exc: BaseException) -> bool:
    """Two clients creating a new catalog at once: PostgreSQL refuses the slower one's tables."""
    low = str(exc).lower()
    return "failed to initialize ducklake" in low and ("duplicate key" in low or "already exists" in low)


def lake_error(exc: BaseException, url: LakeUrl) -> StoreError:
    """A failure to reach or attach the team store as one line, the password redacted."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    first = re.sub(r"^.*Unable to connect to Postgres(?: at \"[^\"]*\")?:\s*", "", first)  # libpq's own words
    text = redact(first, [url.password])
    low = text.lower()
    if "creating a new ducklake is explicitly disabled" in low:
        return StoreError(f"{url.label}: no store here yet; run `evalkit run` first or pass --store")
    if _is_disconnect(exc):
        return StoreError(f"{url.label}: cannot reach the team store's catalog ({text})")
    if "authentication failed" in low or "password" in low:
        return StoreError(f"{url.label}: the catalog refused the login ({text})")
    if "data_path" in low or "data path" in low:
        return StoreError(f"{url.label}: a new team store needs ?data_path=DIR (where its Parquet files go) "
                          f"on first use ({text})")
    return StoreError(f"{url.label}: cannot open the team store ({text})")


_leases: dict[str, LakeLease] = {}
_leases_lock = threading.Lock()


def lease_for(url: LakeUrl) -> LakeLease:
    """The process's one lease on a team store (every :class:`~evalkit.store.db.Store` on the URL shares it)."""
    with _leases_lock:
        lease = _leases.get(url.text)
        if lease is None:
            lease = _leases[url.text] = LakeLease(url)
        return lease


_inherited: list[LakeLease] = []  # a forked child's copies of its parent's leases: never used, never freed


def _forget_in_child() -> None:
    """A forked child opens its own connections. The parent's are not its to use, nor to close: freeing one
    here would run DuckDB's destructor against locks the parent's threads held at the fork (a hang)."""
    global _leases, _leases_lock
    _inherited.extend(_leases.values())
    _leases = {}
    _leases_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
