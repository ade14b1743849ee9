"""One store, many processes: how long a reader waits while a run writes, and what two runs side by
side cost against one after the other. Last line: JSON.

A run of N cases (in-process agent, 1 ms a case, spans on) writes the store in a subprocess while
this process opens the store read-only and counts its cases, again and again: each read's time to
its first row is the reader's wait plus the query. The same read on an idle store is the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = "name: {name}\ndataset: cases.jsonl\ntarget: agent:answer\nscorers:\n  - exact_match\n"
AGENT = "import time\n\n\ndef answer(q):\n    time.sleep(0.001)\n    return q\n"


def workspace(root: Path, n: int) -> None:
    (root / "agent.py").write_text(AGENT)
    (root / "cases.jsonl").write_text("".join(json.dumps({"id": f"c{i:06d}", "input": f"q{i}", "expected": f"q{i}"})
                                              + "\n" for i in range(n)))
    for name in ("one", "two"):
        (root / f"{name}.yaml").write_text(SUITE.format(name=name))


def start_run(root: Path, suite: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{root}", "EVALKIT_STORE": str(root / "s.duckdb")}
    return subprocess.Popen([sys.executable, "-m", "evalkit", "run", suite, "--no-mlflow", "--concurrency", "8",
                             "--json"], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def read_once(store: Path) -> tuple[float, int]:
    from evalkit.store.db import Store

    t0 = time.perf_counter()
    with Store(store, read_only=True) as st:
        n = int(st.execute("SELECT count(*) FROM case_results")[0][0])
    return (time.perf_counter() - t0) * 1000, n


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=5000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace(root, args.cases)
        store = root / "s.duckdb"
        t0 = time.perf_counter()
        p = start_run(root, "one.yaml")
        assert p.wait() == 0, p.stderr.read() if p.stderr else ""
        alone_s = time.perf_counter() - t0
        idle = [read_once(store)[0] for _ in range(20)]
        p = start_run(root, "one.yaml")
        busy: list[float] = []
        seen: list[int] = []
        while p.poll() is None:
            ms, n = read_once(store)
            busy.append(ms)
            seen.append(n)
            time.sleep(0.05)
        assert p.returncode == 0, p.stderr.read() if p.stderr else ""
        t0 = time.perf_counter()
        pair = [start_run(root, "one.yaml"), start_run(root, "two.yaml")]
        assert all(q.wait() == 0 for q in pair)
        pair_s = time.perf_counter() - t0
        from evalkit.store.db import Store

        with Store(store, read_only=True) as st:
            per_run = [int(r[0]) for r in st.execute("SELECT count(*) FROM case_results GROUP BY run_id")]
    return {
        "bench": "store_concurrency", "cores": os.cpu_count(), "cases": args.cases,
        "run_alone_s": round(alone_s, 2), "two_runs_at_once_s": round(pair_s, 2),
        "two_runs_vs_twice_alone": round(pair_s / (2 * alone_s), 2),
        "every_run_whole": per_run == [args.cases] * 4,
        "read_idle_ms_median": round(statistics.median(idle), 1),
        "reads_during_run": len(busy), "read_during_run_ms_median": round(statistics.median(busy), 1) if busy else None,
        "read_during_run_ms_max": round(max(busy), 1) if busy else None,
        "reads_saw_progress": len(set(seen)) > 1,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
