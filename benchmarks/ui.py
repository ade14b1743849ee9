"""`evalkit ui` at scale: the leaderboard and a trend over 50,000 MLflow runs, a case page from a 1M-span store.

Set-up: one real traced run is logged to the embedded MLflow store; 49,999 more are bulk-inserted
into MLflow's tables (``benchmarks/leaderboard.py``'s ``bulk_insert``: 50 agents, 90 days); the
observability store is topped up to 1,000,000 spans with ``benchmarks/spans.py``'s synthetic rows.
Then ``evalkit ui`` runs as its own process and each figure is the median of ``--repeats`` HTTP
requests after one warm-up (the first, cold request is printed too): ``/api/leaderboard``,
``/api/trend``, ``/api/case`` and the page shell. With Chromium installed, ``*_render_ms`` is the
browser's time from navigation to the page drawn (``data-ready``), fetches included.

Last line: one JSON object; ``goals`` holds the 1 s the issue asks for.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

SUITE = "bench"


def real_run(store: Path) -> tuple[str, str]:
    """One traced run logged to MLflow; returns (evalkit run id, a failed case id)."""
    from evalkit import evaluate
    from evalkit.targets.python_callable import from_callable

    cases = [{"id": f"c{i:03d}", "input": f"q {i}", "expected": f"a {i}"} for i in range(50)]

    def answer(text: str) -> str:
        i = int(text.split()[-1])
        return f"a {i}" if i % 5 else "?"

    target = from_callable(answer)
    target.name, target.version = "agent-0", "1.0"
    res = evaluate(cases, target=target, scorers=[{"exact_match": {"as": "quality"}}], suite_name=SUITE, store=store,
                   tracing=True, mlflow=True)
    return res.run_id, "c000"


def top_up_spans(store: Path, total: int) -> float:
    from spans import PER_TRACE, synthetic

    from evalkit.store.db import open_store

    t0 = time.perf_counter()
    with open_store(store) as st:
        left = total - st.execute("SELECT count(*) FROM spans")[0][0]
        seed = 1
        while left > 0:
            n = min(250_000, left)
            n -= n % PER_TRACE
            st.insert_frame("spans", synthetic(n or left, "bench-synthetic", seed))
            left -= n or left
            seed += 1
    return time.perf_counter() - t0


def get_ms(url: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read()
    return (time.perf_counter() - t0) * 1000, body


def timed(url: str, repeats: int) -> tuple[float, float]:
    """(cold ms, median warm ms)."""
    cold, _ = get_ms(url)
    return cold, statistics.median(get_ms(url)[0] for _ in range(repeats))


def render_ms(url: str, repeats: int) -> float | None:
    """Median browser time from navigation to ``data-ready`` (None without Chromium)."""
    from tests.report.browser import Browser, chromium_paths

    paths = chromium_paths()
    if paths is None:
        return None
    with tempfile.TemporaryDirectory() as profile:
        b = Browser(paths[0], paths[1], Path(profile))
        try:
            out = []
            for _ in range(repeats + 1):
                b.get("about:blank")
                t0 = time.perf_counter()
                b.get(url)
                state = b.wait("return document.body && document.body.getAttribute('data-ready')", tries=2000)
                assert state == "1", b.js("return document.body.innerText")
                out.append((time.perf_counter() - t0) * 1000)
            return statistics.median(out[1:])
        finally:
            b.close()


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50_000)
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from leaderboard import bulk_insert

    ws = Path(tempfile.mkdtemp(prefix="evalkit-bench-ui-"))
    os.chdir(ws)
    store = ws / ".evalkit" / "evalkit.duckdb"
    os.environ["EVALKIT_STORE"] = str(store)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["EVALKIT_MLFLOW_TRACES"] = "none"  # per-case MLflow traces are benchmarks/mlflow_traces.py's
    from evalkit.tracking.uri import resolve_tracking_uri, sqlite_path

    out: dict[str, Any] = {"bench": "ui", "cores": os.cpu_count()}
    run_id, case_id = real_run(store)
    db = sqlite_path(resolve_tracking_uri(store))
    assert db is not None
    con = __import__("sqlite3").connect(db)
    template = con.execute("SELECT run_uuid FROM runs").fetchone()[0]
    con.close()
    out["bulk_insert_s"] = round(bulk_insert(db, template, args.runs - 1), 1)
    out["span_topup_s"] = round(top_up_spans(store, args.spans), 1)
    from evalkit.store.db import open_store

    with open_store(store, read_only=True) as st:
        out["store_spans"] = st.execute("SELECT count(*) FROM spans")[0][0]
    out["mlflow_runs"] = args.runs

    proc = subprocess.Popen([sys.executable, "-m", "evalkit.cli.app", "ui", "--port", "0"], cwd=ws,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert m, line
        url = m.group(1)
        board_url = url + "api/leaderboard"
        for key, path in (("leaderboard", "api/leaderboard"), ("leaderboard_30d", "api/leaderboard?since=30d"),
                          ("trend", f"api/trend?suite={SUITE}"),
                          ("case", f"api/case?run={run_id}&case={case_id}&repeat=0"), ("shell", "")):
            cold, warm = timed(url + path, args.repeats)
            out[f"{key}_cold_ms"], out[f"{key}_ms"] = round(cold, 1), round(warm, 1)
        board = json.loads(get_ms(board_url)[1])
        out["leaderboard_rows"] = len(board["suites"][0]["rows"])
        trend = json.loads(get_ms(url + f"api/trend?suite={SUITE}")[1])
        out["trend_points"] = sum(len(s["points"]) for s in trend["series"])
        case = json.loads(get_ms(url + f"api/case?run={run_id}&case={case_id}&repeat=0")[1])
        out["case_spans"] = len(case["trace"]["spans"]) if case["trace"] else 0
        for key, page in (("leaderboard", ""), ("trend", f"#/trend/{SUITE}"),
                          ("case", f"#/case/{run_id}/{case_id}/0")):
            r = render_ms(url + page, args.repeats)
            if r is not None:
                out[f"{key}_render_ms"] = round(r, 1)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        os.chdir(tempfile.gettempdir())
        shutil.rmtree(ws, ignore_errors=True)
    out["goals"] = {"leaderboard_ms": 1000, "trend_ms": 1000, "case_ms": 1000, "render_ms": 1000}
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
