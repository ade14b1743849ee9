"""Harness throughput: 20,000 cases through an in-process async agent, two deterministic scorers,
results stored in DuckDB. Last line: JSON with cases_per_s and ms_per_case."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import evalkit


async def agent(question: str) -> str:
    return f"The answer to {question} is 42."


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--trace", action="store_true", help="record spans too")
    args = ap.parse_args()
    cases = [evalkit.Case(id=f"c{i}", input=f"q{i}", expected="42") for i in range(args.cases)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = evalkit.evaluate(
            cases, target=agent, scorers=[{"contains": {"values": ["42"]}}, {"regex": {"pattern": r"\d+"}}],
            concurrency=args.concurrency, store=Path(tmp) / "bench.duckdb", tracing=args.trace, mlflow=False,
        )
        wall = time.perf_counter() - t0
    assert res.summary.cases == args.cases, res.summary
    return {"bench": "harness", "cases": args.cases, "wall_s": round(wall, 3),
            "cases_per_s": round(args.cases / wall, 1), "ms_per_case": round(wall * 1000 / args.cases, 4),
            "tracing": args.trace}


if __name__ == "__main__":
    print(json.dumps(main()))
