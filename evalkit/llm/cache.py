"""Response cache: one SQLite file in the workspace, keyed by the request, never holding errors or keys.

Path: ``EVALKIT_CACHE`` or ``.evalkit/llm_cache.sqlite`` under the current directory. Writes go
through a background thread in batches (the event loop never waits on a commit); the set of
stored keys is loaded once, so a miss costs no query. Pending writes are visible to reads at
once and are flushed at exit, by :func:`flush`, and before ``stats``/``clear``.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(".evalkit") / "llm_cache.sqlite"

_enabled = True
_lock = threading.Lock()
_local = threading.local()


def set_enabled(enabled: bool) -> None:
    """Turn the cache on or off for the whole process (``--no-cache``)."""
    global _enabled
    _enabled = bool(enabled)


def is_enabled() -> bool:
    return _enabled


def cache_path() -> Path:
    return Path(os.environ.get("EVALKIT_CACHE") or DEFAULT_PATH)


def make_key(
    model: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any] | None,
    response_format: dict[str, Any] | None,
    repeat: int,
    extra: str | None = None,
) -> str:
    """SHA-256 of the request: model, messages, parameters, response format, repeat index (and ``extra``)."""
    body = [model, messages, params or {}, response_format, repeat, extra]
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
        "value TEXT NOT NULL, created REAL NOT NULL)"
    )
    return conn


class _Store:
    """One cache file: known keys, pending writes and the writer thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer = _connect(path)
        self.keys: set[str] = {r[0] for r in self.writer.execute("SELECT key FROM responses")}
        self.pending: dict[str, tuple[str, str, str, float]] = {}
        self.queue: queue.Queue[tuple[str, str, str, float] | None] = queue.Queue()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="evalkit-llm-cache", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            batch = [item]
            while True:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            rows = [b for b in batch if b is not None]
            if rows:
                try:
                    self.writer.execute("BEGIN")
                    self.writer.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)", rows)
                    self.writer.execute("COMMIT")
                except sqlite3.Error:
                    if self.writer.in_transaction:
                        self.writer.execute("ROLLBACK")
                with self.lock:
                    for r in rows:
                        self.pending.pop(r[0], None)
            for _ in batch:
                self.queue.task_done()
            if None in batch:
                return

    def put(self, key: str, model: str, blob: str) -> None:
        row = (key, model, blob, time.time())
        with self.lock:
            self.pending[key] = row
            self.keys.add(key)
        self.queue.put(row)

    def get(self, key: str) -> str | None:
        if key not in self.keys:
            return None
        with self.lock:
            row = self.pending.get(key)
        if row is not None:
            return row[2]
        found = _reader(self.path).execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return None if found is None else str(found[0])

    def flush(self) -> None:
        self.queue.join()

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=10)
        self.writer.close()


_stores: dict[Path, _Store] = {}


_default_path: Path | None = None


@functools.lru_cache(maxsize=64)
def _resolved(env: str) -> Path:
    global _default_path
    if env:
        return Path(env).resolve()
    if _default_path is None:  # pinned to the workspace at first use (getcwd is slow on some filesystems)
        _default_path = DEFAULT_PATH.resolve()
    return _default_path


def _store() -> _Store:
    path = _resolved(os.environ.get("EVALKIT_CACHE") or "")
    st = _stores.get(path)
    if st is None:
        with _lock:
            st = _stores.get(path)
            if st is None:
                st = _stores[path] = _Store(path)
    return st


def _reader(path: Path) -> sqlite3.Connection:
    """A read connection per thread (SQLite connections are not shared across threads)."""
    conns: dict[Path, sqlite3.Connection] | None = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    conn = conns.get(path)
    if conn is None:
        conn = conns[path] = _connect(path)
    return conn


def get(key: str) -> dict[str, Any] | None:
    """The cached value for ``key``, if any."""
    blob = _store().get(key)
    return None if blob is None else dict(json.loads(blob))


def put(key: str, model: str, value: dict[str, Any]) -> None:
    """Store a successful response (callers never pass errors or credentials)."""
    _store().put(key, model, json.dumps(value, ensure_ascii=False, default=str))


def flush() -> None:
    """Wait until every pending write is in the file."""
    for st in list(_stores.values()):
        st.flush()


def stats() -> dict[str, Any]:
    """Entry count, size and per-model counts of the cache file (empty when it does not exist)."""
    path = cache_path()
    if not path.exists():
        return {"path": str(path), "entries": 0, "bytes": 0, "models": {}}
    st = _store()
    st.flush()
    conn = _reader(st.path)
    n = conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    models = dict(conn.execute("SELECT model, COUNT(*) FROM responses GROUP BY model ORDER BY 2 DESC").fetchall())
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
    return {"path": str(path), "entries": int(n), "bytes": size, "models": models}


def clear(model: str | None = None) -> int:
    """Delete all entries (or one model's); returns how many were removed."""
    if not cache_path().exists():
        return 0
    st = _store()
    st.flush()
    with st.lock:
        if model is None:
            cur = st.writer.execute("DELETE FROM responses")
        else:
            cur = st.writer.execute("DELETE FROM responses WHERE model = ?", (model,))
        st.keys = {r[0] for r in st.writer.execute("SELECT key FROM responses")}
    st.writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if model is None:
        st.writer.execute("VACUUM")
    return int(cur.rowcount)


def close() -> None:
    """Flush and close every cache file (tests switching ``EVALKIT_CACHE``; also run at exit)."""
    global _default_path
    _default_path = None
    _resolved.cache_clear()
    with _lock:
        stores = list(_stores.values())
        _stores.clear()
    for st in stores:
        st.close()
    conns: dict[Path, sqlite3.Connection] = getattr(_local, "conns", None) or {}
    for conn in conns.values():
        conn.close()
    conns.clear()


atexit.register(close)
