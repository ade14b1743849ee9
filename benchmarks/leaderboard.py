"""Leaderboard and logging speed on the embedded MLflow store with 50,000 runs in one experiment.

How the runs are made: one real evalkit run is logged with ``log_run``; the other 49,999 are
bulk-inserted with ``sqlite3.executemany`` into MLflow's own tables (runs, latest_metrics, metrics,
tags, params), copying the rows MLflow wrote for the real run (same keys, new ids, varied values
and agents, start times over 90 days). Logging 50,000 runs through ``MlflowClient`` (create_run,
log_batch, set_terminated: ~25 ms a run here) would take ~20 minutes; the bulk insert takes well
under a minute and yields the same rows.

Prints one JSON object on its last line: ``leaderboard_s`` (top-20 by a metric, filtered, as
``evalkit leaderboard`` computes it, mlflow already imported), ``log_run_s`` (logging one run into
the 50,000-run experiment), and the cold figures (first query with its one-off ANALYZE, the CLI
as a fresh process including ``import mlflow``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

N_RUNS = int(os.environ.get("EVALKIT_BENCH_RUNS", "50000"))
SUITE = "bench"
METRIC = "quality/mean"


def make_run(store: Path, quality: float, agent: str) -> str:
    from evalkit import evaluate
    from evalkit.targets.python_callable import from_callable

    n = 20
    cases = [{"id": f"c{i}", "input": f"q {i}", "expected": f"a {i}"} for i in range(n)]

    def answer(text: str) -> str:
        i = int(text.split()[-1])
        return f"a {i}" if i < quality * n else "?"

    target = from_callable(answer)
    target.name = agent
    res = evaluate(cases, target=target, scorers=[{"exact_match": {"as": "quality"}}, {"latency": {"max_ms": 1000}}], suite_name=SUITE,
                   store=store, tracing=False, mlflow=False)  # logged below with log_run, timed
    return res.run_id


def bulk_insert(db: Path, template_uuid: str, n: int) -> float:
    """Copy the template run's rows ``n`` times with new ids and values; returns seconds taken."""
    t0 = time.perf_counter()
    con = sqlite3.connect(str(db))
    cur = con.cursor()
    run = cur.execute("SELECT * FROM runs WHERE run_uuid = ?", [template_uuid]).fetchone()
    run_cols = [d[0] for d in cur.description]
    metrics = cur.execute("SELECT key, value FROM latest_metrics WHERE run_uuid = ?", [template_uuid]).fetchall()
    tags = cur.execute("SELECT key, value FROM tags WHERE run_uuid = ?", [template_uuid]).fetchall()
    params = cur.execute("SELECT key, value FROM params WHERE run_uuid = ?", [template_uuid]).fetchall()
    rng = random.Random(7)
    now_ms = int(time.time() * 1000)
    i_uuid, i_name, i_start, i_end, i_art = (run_cols.index(c) for c in
                                               ("run_uuid", "name", "start_time", "end_time", "artifact_uri"))
    con.execute("BEGIN")
    batch = 5000
    for lo in range(0, n, batch):
        runs, latest, hist, tag_rows, param_rows = [], [], [], [], []
        for k in range(lo, min(n, lo + batch)):
            rid = uuid.uuid4().hex
            start = now_ms - rng.randrange(90 * 86400 * 1000)
            name = f"bulk-{k:06d}"
            row = list(run)
            row[i_uuid], row[i_name], row[i_start], row[i_end] = rid, name, start, start + 60_000
            row[i_art] = str(run[i_art]).replace(template_uuid, rid)
            runs.append(row)
            q = rng.random()
            for key, value in metrics:
                v = q if key == METRIC else (max(0.0, q - 0.1) if key.endswith("ci_low") else
                                             min(1.0, q + 0.1) if key.endswith("ci_high") else value * rng.uniform(0.5, 1.5))
                latest.append((key, v, start + 60_000, 0, 0, rid))
                hist.append((key, v, start + 60_000, rid, 0, 0))
            for key, value in tags:
                if key in ("evalkit.run_id", "mlflow.runName"):
                    value = name
                elif key in ("evalkit.agent", "evalkit.agent_ref"):
                    value = f"agent-{rng.randrange(50)}"
                tag_rows.append((key, value, rid))
            param_rows += [(key, value, rid) for key, value in params]
        marks = ", ".join("?" for _ in run_cols)
        cur.executemany(f"INSERT INTO runs ({', '.join(run_cols)}) VALUES ({marks})", runs)
        cur.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
                        " VALUES (?, ?, ?, ?, ?, ?)", latest)
        cur.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
                        hist)
        cur.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tag_rows)
        cur.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", param_rows)
    con.commit()
    con.close()
    return time.perf_counter() - t0


def main() -> None:
    ws = Path(tempfile.mkdtemp(prefix="evalkit-bench-lb-"))
    os.chdir(ws)
    store = ws / ".evalkit" / "evalkit.duckdb"
    os.environ["EVALKIT_STORE"] = str(store)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from evalkit.store.db import open_store
    from evalkit.tracking import log_run
    from evalkit.tracking.uri import client, resolve_tracking_uri, sqlite_path

    uri = resolve_tracking_uri(store)
    db = sqlite_path(uri)
    assert db is not None
    first = make_run(store, 0.8, "agent-0")
    t = time.perf_counter()
    with open_store(store) as st:
        template = log_run(st, first)
    first_log_s = time.perf_counter() - t  # includes import mlflow and creating the SQLite store
    insert_s = bulk_insert(db, template, N_RUNS - 1)

    from evalkit.tracking.leaderboard import leaderboard, parse_since
    from evalkit.tracking.render import render_board

    c = client(uri)

    def board(**kw: object) -> float:
        t0 = time.perf_counter()
        b = leaderboard(c, uri=uri, suite=SUITE, metric=METRIC, top=20, **kw)  # type: ignore[arg-type]
        render_board(b, "table")
        assert len(b.entries) == 20, len(b.entries)
        return time.perf_counter() - t0

    since = parse_since("30d")
    leaderboard_first_s = board(since=since)  # pays the one-off ANALYZE of the freshly filled store
    leaderboard_s = min(board(since=since) for _ in range(3))
    tag_filter_s = min(board(where="tags.`evalkit.agent` = 'agent-7'") for _ in range(3))
    by_agent_s = board(by="agent")
    from evalkit.tracking.sqlite_reader import SqliteRunReader

    reader = SqliteRunReader(db)
    t0 = time.perf_counter()
    for _ in range(3):
        fast = leaderboard(reader, uri=uri, suite=SUITE, metric=METRIC, top=20, since=since)  # type: ignore[arg-type]
    direct_sql_s = (time.perf_counter() - t0) / 3
    assert [e.run_id for e in fast.entries] == [e.run_id for e in leaderboard(c, uri=uri, suite=SUITE, metric=METRIC,
                                                                             top=20, since=since).entries]
    reader.close()

    second = make_run(store, 0.6, "agent-1")
    t = time.perf_counter()
    with open_store(store) as st:
        log_run(st, second)
    log_run_s = time.perf_counter() - t

    evalkit = Path(sys.executable).with_name("evalkit")
    t = time.perf_counter()
    proc = subprocess.run([str(evalkit), "leaderboard", "--suite", SUITE, "--metric", METRIC, "--since", "30d",
                           "--top", "20", "-f", "csv"], capture_output=True, text=True, check=False)
    cli_s = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mlflow.tracking"], check=True)
    import_s = time.perf_counter() - t

    result = {
        "runs": N_RUNS,
        "leaderboard_s": round(leaderboard_s, 3),
        "log_run_s": round(log_run_s, 3),
        "leaderboard_first_s": round(leaderboard_first_s, 3),
        "leaderboard_tag_filter_s": round(tag_filter_s, 3),
        "leaderboard_by_agent_s": round(by_agent_s, 3),
        "leaderboard_cli_process_s": round(cli_s, 3),
        "leaderboard_direct_sql_s": round(direct_sql_s, 3),
        "python_import_mlflow_s": round(import_s, 3),
        "first_log_run_cold_s": round(first_log_s, 3),
        "bulk_insert_s": round(insert_s, 1),
        "db_mb": round(db.stat().st_size / 1e6, 1),
        "goals": {"leaderboard_s": 2.0, "log_run_s": 0.5},
    }
    os.chdir(tempfile.gettempdir())
    if not os.environ.get("EVALKIT_BENCH_KEEP"):
        shutil.rmtree(ws, ignore_errors=True)  # ~600 MB at 50,000 runs
    print(json.dumps(result))


if __name__ == "__main__":
    main()
