"""Short-held access to a DuckDB file that several processes share.

DuckDB lets one process write a file, or any number read it, never both at once; a connection holds
its lock until it closes. So no process keeps the store open: a :class:`Lease` opens the file for an
operation and lets go of it again, and the processes that want it take turns.

- **Idle release.** The connection closes when no operation has used it for :data:`IDLE_S`
  (a run waiting on its agent, a finished run logging to MLflow, an idle ``collect``).
- **Knocking.** A process that finds the file locked creates ``<store>.knock`` and retries. The holder
  checks for the knock after each operation (one ``stat``) and closes at once, then stands back for
  :data:`STAND_BACK_S` so the knocker gets in. A busy writer thus hands over within one operation.
- **Bounded waits.** A process waits at most ``$EVALKIT_STORE_WAIT`` seconds (default 120) for its turn,
  says so on stderr after :data:`NOTICE_S`, and then fails with :class:`~evalkit.errors.StoreLocked`
  naming the holder, never silently.
- **One lease per file per process.** DuckDB refuses a read-only and a writable connection to one
  file in one process, so every :class:`~evalkit.store.db.Store` on a path shares its lease: readers
  in a process that writes use the writable connection.

Reopening costs ~20 ms (a 200k-case store); it happens only when another process asked for the
file or the holder was idle.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import StoreLocked, UserError

if TYPE_CHECKING:
    import duckdb

IDLE_S = 0.1  # an unused connection is closed after this long
STAND_BACK_S = 0.25  # after handing over on a knock, wait this long (or until the knock is gone)
NOTICE_S = 2.0  # a wait longer than this is reported once on stderr
DEFAULT_WAIT_S = 120.0
_LOCK_WORDS = ("could not set lock", "conflicting lock")


def wait_limit() -> float:
    """Seconds a process waits for its turn at the store (``$EVALKIT_STORE_WAIT``)."""
    raw = os.environ.get("EVALKIT_STORE_WAIT", "").strip()
    if not raw:
        return DEFAULT_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"EVALKIT_STORE_WAIT '{raw}': give seconds, e.g. 120") from None
    if value < 0:
        raise UserError(f"EVALKIT_STORE_WAIT '{raw}': give zero or more seconds")
    return value


def is_lock_conflict(exc: BaseException) -> bool:
    """DuckDB's answer when another process holds the file."""
    return any(w in str(exc).lower() for w in _LOCK_WORDS)


def _holder(exc: BaseException) -> str:
    text = str(exc)
    at = text.lower().find("conflicting lock is held in")
    return text[at + len("conflicting lock is held in"):].strip().split("\n")[0].rstrip(".") if at >= 0 else "another process"


class Lease:
    """Access to one DuckDB file: opened per operation, closed when idle or when another process knocks."""

    def __init__(self, path: Path, opener: Callable[[bool], duckdb.DuckDBPyConnection]) -> None:
        self.path = path
        self._open_fn = opener  # opener(writable) -> connection; raises DuckDB's lock error when busy
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._writable = False
        self._depth = 0  # operations in progress (nested uses count once)
        self._pins = 0  # holders that keep the connection open across operations (transactions, `sql`)
        self._users = 0  # open stores sharing this lease
        self._last_use = 0.0
        self._stand_back_until = 0.0
        self._reaper: threading.Thread | None = None
        self._closed_event = threading.Event()
        self.knock_path = Path(f"{path}.knock")
        self.waited_s = 0.0  # total time spent waiting for other processes (for reports and tests)
        self.handovers = 0  # times this process closed because another one knocked

    # -- use --------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def use(self, *, writable: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection for one operation (opened, or reopened writable, as needed)."""
        with self._lock:
            if self._con is None or (writable and not self._writable):
                if self._depth:
                    raise RuntimeError(f"{self.path}: a write inside a read of the same store")
                self._reopen(writable)
            assert self._con is not None
            self._depth += 1
            try:
                yield self._con
            finally:
                self._depth -= 1
                self._last_use = time.monotonic()
                if self._depth == 0:
                    self._after_use()

    @contextlib.contextmanager
    def pinned(self, *, writable: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """Keep the connection open for a block of operations (a transaction)."""
        with self._lock, self.use(writable=writable) as con:
            self._pins += 1
            try:
                yield con
            finally:
                self._pins -= 1

    def pin(self, *, writable: bool) -> duckdb.DuckDBPyConnection:
        """Open and keep open until :meth:`close` (ad-hoc SQL holds the file for its whole session)."""
        with self._lock, self.use(writable=writable) as con:
            self._pins += 1
            return con

    def attach(self) -> None:
        """A :class:`~evalkit.store.db.Store` starts using this lease."""
        with self._lock:
            self._users += 1

    def detach(self) -> None:
        """A store closed; when it was the last, the file is let go now (not after :data:`IDLE_S`)."""
        with self._lock:
            self._users = max(0, self._users - 1)
            if not self._users:
                self._pins = 0
                if not self._depth:
                    self._release()

    def unpin(self) -> None:
        """Undo one :meth:`pin`; the connection closes as usual once idle."""
        with self._lock:
            self._pins = max(0, self._pins - 1)
            if not self._pins and not self._depth:
                self._after_use()

    def drop(self) -> None:
        """Close the connection now (after a FATAL error); the next operation reopens it."""
        with self._lock:
            self._release()

    def close(self) -> None:
        with self._lock:
            self._pins = 0
            self._release()
            self._closed_event.set()

    # -- internals --------------------------------------------------------------------------------
    def _after_use(self) -> None:
        if self._pins:
            return
        if self.knock_path.exists():  # another process is waiting: hand over now
            self.handovers += 1
            self._release()
            self._stand_back_until = time.monotonic() + STAND_BACK_S
            return
        self._start_reaper()

    def _release(self) -> None:
        if self._con is not None:
            con, self._con = self._con, None
            with contextlib.suppress(Exception):
                con.close()

    def _reopen(self, writable: bool) -> None:
        self._release()
        self._stand_back()
        deadline = time.monotonic() + wait_limit()
        started = time.monotonic()
        noticed = False
        delay = 0.005
        while True:
            try:
                self._con = self._open_fn(writable)
                self._writable = writable
                break
            except Exception as exc:
                if not is_lock_conflict(exc):
                    raise
                now = time.monotonic()
                if now >= deadline:
                    self.waited_s += now - started
                    raise StoreLocked(
                        f"{self.path}: the store is locked by another process ({_holder(exc)}) and stayed so "
                        f"for {now - started:.0f} s (EVALKIT_STORE_WAIT); nothing was written: retry, or wait "
                        "longer") from None
                with contextlib.suppress(OSError):
                    self.knock_path.touch()
                if not noticed and now - started >= NOTICE_S:
                    noticed = True
                    print(f"evalkit: waiting for the store {self.path} (held by {_holder(exc)})",
                          file=sys.stderr, flush=True)
                time.sleep(min(delay, max(0.0, deadline - now)) * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.1)
        waited = time.monotonic() - started
        self.waited_s += waited
        if waited > 0.001:
            with contextlib.suppress(OSError):
                self.knock_path.unlink()  # this process got its turn; other waiters knock again

    def _stand_back(self) -> None:
        """After handing over, give the knocker a moment before taking the file back."""
        while time.monotonic() < self._stand_back_until and self.knock_path.exists():
            time.sleep(0.01)
        self._stand_back_until = 0.0

    def _start_reaper(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._closed_event.clear()
            self._reaper = threading.Thread(target=self._reap, name=f"evalkit-store-lease {self.path.name}",
                                            daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        """Close the connection once it has been idle for IDLE_S (or another process knocked)."""
        while not self._closed_event.wait(IDLE_S / 2):
            with self._lock:
                if self._con is None:
                    return
                if self._depth or self._pins:
                    continue
                idle = time.monotonic() - self._last_use
                if idle >= IDLE_S or self.knock_path.exists():
                    self._release()
                    return


_LEASES: dict[str, Lease] = {}
_LEASES_LOCK = threading.Lock()


def lease_for(path: Path, opener: Callable[[bool], Any]) -> Lease:
    """The process's one lease on ``path`` (created on first use); each in-memory store has its own."""
    if str(path) == ":memory:":
        return Lease(path, opener)
    key = str(path.resolve())
    with _LEASES_LOCK:
        lease = _LEASES.get(key)
        if lease is None:
            lease = _LEASES[key] = Lease(path, opener)
        return lease


_INHERITED: list[Lease] = []  # a forked child's copies of its parent's leases: kept, so never freed here


def _forget_in_child() -> None:
    """A forked child must not use (or close) the parent's connections: it starts with no leases (freeing
    the old ones would run DuckDB's destructor against locks the parent's threads held at the fork)."""
    global _LEASES, _LEASES_LOCK
    _INHERITED.extend(_LEASES.values())
    _LEASES = {}
    _LEASES_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
