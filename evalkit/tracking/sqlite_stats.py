"""Keep the embedded SQLite store's query planner informed: a cheap, occasional ``ANALYZE``.

Without statistics SQLite re-scans ``latest_metrics`` for every run when ordering by a metric
(29 s at 20,000 runs); after ``ANALYZE`` the same search takes 0.15 s. ANALYZE is re-run only
when the number of runs has grown by half since the last one, so its cost (0.2 s at 20,000
runs) is paid rarely.
"""

from __future__ import annotations

import sqlite3

from evalkit.tracking.uri import sqlite_path

MIN_RUNS = 500
GROWTH = 1.5


def analysed_runs(con: sqlite3.Connection) -> int:
    """The run count SQLite's statistics were gathered at (0: never analysed)."""
    try:
        row = con.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = 'runs' LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        return 0
    try:
        return int(str(row[0]).split()[0]) if row else 0
    except ValueError:
        return 0


def maybe_analyze(uri: str, *, min_runs: int = MIN_RUNS, growth: float = GROWTH, force: bool = False) -> bool:
    """Run ``ANALYZE`` on an embedded store when it has grown enough; True when it ran."""
    db = sqlite_path(uri)
    if db is None or not db.exists():
        return False
    try:
        con = sqlite3.connect(str(db), timeout=5)
    except sqlite3.Error:
        return False
    try:
        try:
            n = int(con.execute("SELECT count(*) FROM runs").fetchone()[0])
        except sqlite3.OperationalError:
            return False
        done = analysed_runs(con)
        if not force and (n < min_runs or (done and n <= done * growth)):
            return False
        con.execute("ANALYZE")
        con.commit()
        return True
    except sqlite3.Error:
        return False  # busy or read-only: the query still works, only slower
    finally:
        con.close()
