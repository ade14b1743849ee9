"""Local worker processes (``--workers N``): throughput of one process vs two on a CPU-bound and an LLM-bound suite.

    python benchmarks/workers.py                       # 4,000 CPU-bound cases, 2,000 LLM-bound ones
    python benchmarks/workers.py --cpu-cases 8000 --llm-cases 4000 --latency-ms 50

- **cpu**: an in-process async agent and a deterministic scorer that burns ~2 ms of CPU per case
  (a chain of SHA-256 hashes, calibrated on this machine first), plus ``contains``.
- **llm**: a model target and the ``correctness`` judge, two calls per case, to the loopback
  OpenAI-compatible server of ``benchmarks/llm_calls.py`` (another process; response cache off, so
  every call reaches it).

Each suite runs with ``workers=1`` (the in-process engine) and ``workers=2`` through the pipeline
(plan, engine, the store written, tracing on, MLflow off), into a fresh DuckDB file each, after a
small warm-up run in this process. Wall time includes starting the worker processes. Prints per
mode cases/s and the speed-up; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

AGENT = '''
import hashlib, os

ITERS = int(os.environ.get("BENCH_BURN_ITERS", "4000"))

async def answer(question):
    return f"The answer to {question} is 42."

def burn(case, output):
    """~2 ms of CPU, the same value for the same case (a deterministic scorer)."""
    h = hashlib.sha256(case.id.encode()).digest()
    for _ in range(ITERS):
        h = hashlib.sha256(h).digest()
    return h[0] / 255
'''


def calibrate(target_ms: float) -> int:
    """Hash iterations that take ``target_ms`` of CPU here."""
    n = 20_000
    h = b"x" * 32
    t0 = time.process_time()
    for _ in range(n):
        h = hashlib.sha256(h).digest()
    per = (time.process_time() - t0) / n
    return max(100, int(target_ms / 1000 / per))


def write_cpu_suite(root: Path, n: int) -> Path:
    (root / "bench_workers_agent.py").write_text(AGENT)
    with (root / "cpu_cases.jsonl").open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"c{i:06d}", "input": f"q{i}", "expected": "42"}) + "\n")
    suite = root / "cpu.yaml"
    suite.write_text("name: workers-cpu\ndataset: cpu_cases.jsonl\ntarget: bench_workers_agent:answer\nscorers:\n"
                     "  - bench_workers_agent:burn\n  - contains:\n      values: ['42']\n"
                     "defaults:\n  concurrency: 16\n")
    return suite


def write_llm_suite(root: Path, n: int, api_base: str, concurrency: int) -> Path:
    with (root / "llm_cases.jsonl").open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"l{i:06d}", "input": f"question number {i}?", "expected": f"answer {i}"}) + "\n")
    suite = root / "llm.yaml"
    suite.write_text("name: workers-llm\ndataset: llm_cases.jsonl\n"
                     f"target: {{model: openai/gpt-4o-mini, prompt: 'Answer briefly: {{input}}', api_base: '{api_base}'}}\n"
                     f"scorers:\n  - correctness:\n      model: openai/gpt-4o-mini\ndefaults:\n  concurrency: {concurrency}\n")
    return suite


def run_mode(suite_file: Path, workers: int, store_path: Path, limit: int | None = None) -> dict[str, Any]:
    from evalkit.pipeline import RunSettings, run_suite
    from evalkit.store.db import open_store
    from evalkit.suite import load_suite

    suite = load_suite(suite_file)
    settings = RunSettings(workers=workers, mlflow=False, cache=False, tracing=True, limit=limit)
    with open_store(store_path) as store:
        t0 = time.perf_counter()
        run = run_suite(suite, settings, door="cli", store=store, handle_signals=False)
        wall = time.perf_counter() - t0
        workers_used = store.get_run(run.run_id)["config"]["workers"]
    if run.status != "completed" or run.summary.errors:
        raise RuntimeError(f"{suite_file.name} workers={workers}: {run.status}, {run.summary.errors} errors, "
                           f"notes {run.summary.notes}")
    assert workers_used == workers
    return {"cases": run.summary.cases, "wall_s": round(wall, 3), "cases_per_s": round(run.summary.cases / wall, 1),
            "metrics": {k: v for k, v in run.summary.metrics().items() if not k.startswith(("latency", "cost"))}}


def compare(name: str, suite_file: Path, tmp: Path) -> dict[str, Any]:
    run_mode(suite_file, 1, tmp / f"{name}-warm.duckdb", limit=20)  # imports, clients, connections
    one = run_mode(suite_file, 1, tmp / f"{name}-1.duckdb")
    two = run_mode(suite_file, 2, tmp / f"{name}-2.duckdb")
    same = one.pop("metrics") == two.pop("metrics")
    speedup = round(two["cases_per_s"] / one["cases_per_s"], 2)
    for w, r in ((1, one), (2, two)):
        print(f"{name:4s} workers={w}: {r['cases']} cases in {r['wall_s']:.2f} s = {r['cases_per_s']:.1f} cases/s",
              file=sys.stderr)
    print(f"{name:4s} speed-up with 2 workers: {speedup}x (same metrics: {same})", file=sys.stderr)
    return {"workers_1": one, "workers_2": two, "speedup": speedup, "same_metrics": same}


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-cases", type=int, default=4000)
    ap.add_argument("--burn-ms", type=float, default=2.0)
    ap.add_argument("--llm-cases", type=int, default=2000)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from benchmarks.llm_calls import start_server

    out: dict[str, Any] = {"bench": "workers", "cores": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.chdir(tmp)
        sys.path.insert(0, str(tmp))
        os.environ["EVALKIT_CACHE"] = str(tmp / "llm_cache.sqlite")
        iters = calibrate(args.burn_ms)
        os.environ["BENCH_BURN_ITERS"] = str(iters)  # the workers inherit it
        out["cpu"] = {"burn_ms": args.burn_ms, "burn_iters": iters,
                      **compare("cpu", write_cpu_suite(tmp, args.cpu_cases), tmp)}
        proc, api_base = start_server(args.latency_ms)
        try:
            os.environ["EVALKIT_API_KEY"] = "sk-bench"
            os.environ["EVALKIT_API_BASE"] = api_base  # the judge reaches the loopback server too
            os.environ.setdefault("EVALKIT_MODEL_CONCURRENCY", str(max(64, args.concurrency * 2)))
            out["llm"] = {"latency_ms": args.latency_ms, "concurrency": args.concurrency,
                          **compare("llm", write_llm_suite(tmp, args.llm_cases, api_base, args.concurrency), tmp)}
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        os.chdir(ROOT)
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
