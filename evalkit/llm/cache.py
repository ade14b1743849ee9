"""Response cache: one SQLite file in the workspace, keyed by the request, never holding errors or keys.

Path: ``EVALKIT_CACHE`` or ``.evalkit/llm_cache.sqlite`` under the current directory.
"""

from __future__ import annotations

import hashlib
import json
import os
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


def _conn() -> sqlite3.Connection:
    """A connection per thread and path (SQLite connections are not shared across threads)."""
    path = cache_path().resolve()
    conns: dict[Path, sqlite3.Connection] = getattr(_local, "conns", None) or {}
    _local.conns = conns
    conn = conns.get(path)
    if conn is None:
        with _lock:
            conn = conns[path] = _connect(path)
    return conn


def get(key: str) -> dict[str, Any] | None:
    """The cached value for ``key``, if any."""
    row = _conn().execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def put(key: str, model: str, value: dict[str, Any]) -> None:
    """Store a successful response (callers never pass errors or credentials)."""
    blob = json.dumps(value, ensure_ascii=False, default=str)
    _conn().execute(
        "INSERT OR REPLACE INTO responses (key, model, value, created) VALUES (?, ?, ?, ?)",
        (key, model, blob, time.time()),
    )


def stats() -> dict[str, Any]:
    """Entry count, size and per-model counts of the cache file (empty when it does not exist)."""
    path = cache_path()
    if not path.exists():
        return {"path": str(path), "entries": 0, "bytes": 0, "models": {}}
    conn = _conn()
    n = conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    models = dict(
        conn.execute("SELECT model, COUNT(*) FROM responses GROUP BY model ORDER BY 2 DESC").fetchall()
    )
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
    return {"path": str(path), "entries": int(n), "bytes": size, "models": models}


def clear(model: str | None = None) -> int:
    """Delete all entries (or one model's); returns how many were removed."""
    if not cache_path().exists():
        return 0
    conn = _conn()
    if model is None:
        cur = conn.execute("DELETE FROM responses")
    else:
        cur = conn.execute("DELETE FROM responses WHERE model = ?", (model,))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if model is None:
        conn.execute("VACUUM")
    return int(cur.rowcount)


def close() -> None:
    """Close this thread's connections (tests switching ``EVALKIT_CACHE``)."""
    conns: dict[Path, sqlite3.Connection] = getattr(_local, "conns", None) or {}
    for conn in conns.values():
        conn.close()
    conns.clear()
