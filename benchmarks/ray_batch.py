"""Ray engine: start-up time and throughput against the local engine on the same suite.

20,000 cases (in-process async agent, two deterministic scorers, tracing on) run once with the
local engine and once on a local Ray (``--workers`` CPUs). Last line: JSON with the Ray import
and start-up times, the first (warm-up) chunk's latency, and both engines' wall time and cases/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

AGENT = '''
async def answer(question: str) -> str:
    return f"The answer to {question} is 42."
'''


def _write_suite(root: Path, n: int) -> Path:
    (root / "bench_ray_agent.py").write_text(AGENT)
    with (root / "cases.jsonl").open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"c{i:06d}", "input": f"q{i}", "expected": "42"}) + "\n")
    suite = root / "suite.yaml"
    suite.write_text("name: ray-bench\ndataset: cases.jsonl\ntarget: bench_ray_agent:answer\nscorers:\n"
                     "  - contains:\n      values: ['42']\n  - regex:\n      pattern: '\\d+'\n")
    return suite


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    import dataclasses

    from evalkit.pipeline import RunSettings, run_suite
    from evalkit.store.db import open_store
    from evalkit.suite import load_suite

    out: dict[str, object] = {"bench": "ray_batch", "cases": args.cases, "workers": args.workers}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.chdir(root)
        sys.path.insert(0, str(root))
        suite_file = _write_suite(root, args.cases)
        s = load_suite(suite_file)
        assert s.target is not None

        local_settings = RunSettings(concurrency=args.concurrency, mlflow=False)
        ray_settings = local_settings.model_copy(update={"engine": "ray"})
        store = open_store(root / "bench.duckdb")
        t0 = time.perf_counter()
        local = run_suite(s, local_settings, door="api", store=store, handle_signals=False)
        local_wall = time.perf_counter() - t0
        assert local.summary.cases == args.cases

        t0 = time.perf_counter()
        import ray

        out["ray_import_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        out["ray_init_s"] = round(time.perf_counter() - t0, 3)
        try:
            # Warm-up: one tiny run starts the worker processes and imports evalkit in them.
            warm = dataclasses.replace(s, cases=list(s.cases[: args.workers]))
            t0 = time.perf_counter()
            run_suite(warm, ray_settings, door="api", store=store, handle_signals=False)
            out["ray_warmup_s"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
            rec = run_suite(s, ray_settings, door="api", store=store, handle_signals=False)
            ray_wall = time.perf_counter() - t0
        finally:
            t0 = time.perf_counter()
            ray.shutdown()
            out["ray_shutdown_s"] = round(time.perf_counter() - t0, 3)
        assert rec.summary.cases == args.cases and rec.summary.errors == 0
        spans = store.execute("SELECT count(*) FROM spans WHERE run_id = ?", [rec.run_id])[0][0]
        store.close()
    out.update({
        "local_wall_s": round(local_wall, 3), "local_cases_per_s": round(args.cases / local_wall, 1),
        "ray_wall_s": round(ray_wall, 3), "ray_cases_per_s": round(args.cases / ray_wall, 1),
        "ray_spans": spans, "tracing": True,
    })
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
