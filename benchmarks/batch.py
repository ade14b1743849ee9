"""Batch scale: 100,000 cases streamed from a JSONL suite through an in-process agent, two
deterministic scorers, tracing on, results and spans in DuckDB. Last line: JSON with wall_s,
cases_per_s and peak_rss_mb (this process, from getrusage); with ``--workers N`` also
worker_peak_rss_mb (the largest worker process)."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

AGENT = '''
import evalkit

@evalkit.trace(kind="tool")
def lookup(q):
    return "42"

async def answer(question):
    return f"The answer to {question} is {lookup(question)}."
'''


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--no-trace", action="store_true")
    ap.add_argument("--workers", default="1", help="worker processes (1: this process; 'auto' as `evalkit run`)")
    args = ap.parse_args()
    import evalkit

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "bench_agent.py").write_text(AGENT)
        with (d / "cases.jsonl").open("w") as fh:
            for i in range(args.cases):
                fh.write(json.dumps({"id": f"c{i}", "input": f"question {i}", "expected": "42",
                                     "metadata": {"must_include": ["42"]}}) + "\n")
        (d / "suite.yaml").write_text(
            "name: batch-bench\ndataset: cases.jsonl\ntarget: bench_agent:answer\n"
            "scorers:\n  - contains: {key: must_include}\n  - regex: {pattern: '\\d+'}\n")
        sys.path.insert(0, str(d))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        res = evalkit.evaluate(d / "suite.yaml", concurrency=args.concurrency, store=d / "bench.duckdb",
                               tracing=not args.no_trace, mlflow=False,
                               workers=args.workers)
        wall = time.perf_counter() - t0
        assert res.summary.cases == args.cases, res.summary
        import duckdb

        con = duckdb.connect(str(d / "bench.duckdb"), read_only=True)
        spans = con.execute("SELECT count(*) FROM spans").fetchone()[0]  # type: ignore[index]
        con.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest worker's, if any
    return {"bench": "batch", "cases": args.cases, "tracing": not args.no_trace, "spans": spans,
            "wall_s": round(wall, 2), "cases_per_s": round(args.cases / wall, 1),
            "peak_rss_mb": round(peak, 1), "rss_before_run_mb": round(rss_before, 1), "workers": args.workers,
            "worker_peak_rss_mb": round(workers_peak, 1)}


if __name__ == "__main__":
    print(json.dumps(main()))
