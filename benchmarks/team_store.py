"""The team store under load: several `evalkit run` processes writing one DuckLake store at once.

Starts a throwaway PostgreSQL server on loopback (the Debian packages, as the tests do; data files on
local disk), then ``--writers`` processes each run a ``--cases`` deterministic suite with tracing into
the same team store while one reader polls ``count(*)`` on cases and spans. For comparison the same
processes write one local DuckDB file (they take turns on it), and one process writes alone.

Last line: JSON with the wall time and aggregate cases/s of each, the reader's latency (median, max),
and whether every case and span landed exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SUITE = "name: {name}\ndataset: cases.jsonl\ntarget: agent:answer\nscorers:\n  - exact_match\n"


def workspace(ws: Path, n: int, names: list[str]) -> None:
    (ws / "agent.py").write_text("def answer(q):\n    return q\n")
    (ws / "cases.jsonl").write_text("".join(json.dumps({"id": f"c{i:06d}", "input": f"q{i}", "expected": f"q{i}"})
                                            + "\n" for i in range(n)))
    for name in names:
        (ws / f"{name}.yaml").write_text(SUITE.format(name=name))


def writers(ws: Path, names: list[str], store: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVALKIT_STORE": store}
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "evalkit.cli.app", "run", f"{n}.yaml", "--no-mlflow",
                               "--concurrency", "32"], cwd=ws, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for n in names]
    for p in procs:
        _, err = p.communicate(timeout=1800)
        if p.returncode not in (0, 1):
            raise SystemExit(f"a writer failed: {err[-2000:]}")
    return time.perf_counter() - t0


def poll(store: str, stop: threading.Event, out: list[float]) -> None:
    from evalkit.errors import StoreError
    from evalkit.store.db import Store

    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            with Store(store, read_only=True) as st:
                st.execute("SELECT count(*) FROM case_results")
                st.execute("SELECT count(*) FROM spans")
            out.append((time.perf_counter() - t0) * 1000)
        except StoreError:
            pass  # not created yet
        time.sleep(0.2)


def exactly_once(store: str, n: int) -> bool:
    from evalkit.store.db import Store

    with Store(store, read_only=True) as st:
        rows = st.execute("SELECT r.run_id, (SELECT count(*) FROM case_results c WHERE c.run_id = r.run_id),"
                          " (SELECT count(DISTINCT case_id) FROM case_results c WHERE c.run_id = r.run_id),"
                          " (SELECT count(*) - count(DISTINCT span_id) FROM spans s WHERE s.run_id = r.run_id)"
                          " FROM runs r")
    return all(r[1] == r[2] == n and r[3] == 0 for r in rows)


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--cases", type=int, default=5000)
    args = ap.parse_args()
    from tests.fakes.postgres import PostgresServer

    names = [f"w{i}" for i in range(args.writers)]
    out: dict[str, Any] = {"bench": "team_store", "writers": args.writers, "cases_each": args.cases,
                           "cores": os.cpu_count()}
    server = PostgresServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ws = Path(tmp)
            workspace(ws, args.cases, names)
            (ws / "lake").mkdir()
            url = "ducklake+" + server.create_database() + f"?data_path={ws / 'lake'}"
            latencies: list[float] = []
            stop = threading.Event()
            reader = threading.Thread(target=poll, args=(url, stop, latencies), daemon=True)
            reader.start()
            wall = writers(ws, names, url)
            stop.set()
            reader.join()
            total = args.writers * args.cases
            out["team_wall_s"] = round(wall, 2)
            out["team_cases_per_s"] = round(total / wall)
            out["team_exactly_once"] = exactly_once(url, args.cases)
            out["read_ms_median"] = round(statistics.median(latencies), 1) if latencies else None
            out["read_ms_max"] = round(max(latencies), 1) if latencies else None
            out["reads"] = len(latencies)
            local = str(ws / "local.duckdb")
            wall = writers(ws, names, local)
            out["file_wall_s"] = round(wall, 2)
            out["file_cases_per_s"] = round(total / wall)
            out["file_exactly_once"] = exactly_once(local, args.cases)
            wall = writers(ws, names[:1], str(ws / "alone.duckdb"))
            out["one_process_file_cases_per_s"] = round(args.cases / wall)
    finally:
        server.stop()
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
