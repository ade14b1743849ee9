"""LLM-call overhead of the harness: target + judge calls through the facade vs bare litellm.

    python benchmarks/llm_calls.py                                  # 0 ms server: prints ratio
    python benchmarks/llm_calls.py --latency-ms 200 --concurrency 100   # prints ratio_to_ideal

Each case makes one target call (model target) and one judge call (``correctness`` judge), both
through litellm's real HTTP path; the bare rate sends the same two requests per case (same
messages, parameters and response format) straight to ``litellm.acompletion``, so the ratio is
the harness's own overhead to a loopback OpenAI-compatible server running in another
process. Tracing is off; the response cache is on (a fresh file, so every call misses and writes).
The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = "openai/gpt-4o-mini"
VERDICT = json.dumps({"rationale": "matches the reference", "score": 4})


def start_server(latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fakes" / "openai_server.py"), "--latency-ms", str(latency_ms),
         "--content", VERDICT],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("URL "):
        proc.kill()
        raise SystemExit(f"fake server did not start: {line!r}")
    return proc, line.split(" ", 1)[1] + "/v1"


async def bounded(n: int, concurrency: int, job: Any) -> float:
    """Run ``job(i)`` for i in range(n) with ``concurrency`` workers; returns wall seconds."""
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            await job(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0


def workload(cases: int) -> list[Any]:
    from evalkit.schema import Case

    return [Case(id=f"b{i}", input=f"question number {i}?", expected=f"answer {i}") for i in range(cases)]


async def bare_rate(api_base: str, cases: int, concurrency: int) -> float:
    """Cases per second for the same two requests per case, sent with bare ``litellm.acompletion``."""
    from evalkit.judging import find_judge
    from evalkit.judging.model import json_schema
    from evalkit.judging.render import render
    from evalkit.llm.facade import _litellm

    litellm = _litellm()  # same configuration as the harness (offline cost map, no callbacks)
    judge = find_judge("correctness")
    assert judge is not None
    rf = {"type": "json_schema", "json_schema": {"name": "scale_1_5_verdict", "schema": json_schema("scale_1_5"),
                                                 "strict": True}}
    requests = []
    for case in workload(cases):
        target_msgs = [{"role": "user", "content": f"Answer briefly: {case.input}"}]
        fields = {"input": case.input, "expected": case.expected, "output": VERDICT}
        requests.append((target_msgs, render(judge, fields)))

    async def job(i: int) -> None:
        target_msgs, judge_msgs = requests[i]
        await litellm.acompletion(model=MODEL, messages=target_msgs, api_base=api_base, api_key="sk-bench",
                                  num_retries=0, max_retries=0, timeout=60)
        await litellm.acompletion(model=MODEL, messages=judge_msgs, api_base=api_base, api_key="sk-bench",
                                  num_retries=0, max_retries=0, timeout=60, temperature=0, response_format=rf)

    wall = await bounded(cases, concurrency, job)
    return cases / wall


async def harness(api_base: str, cases: int, concurrency: int) -> float:
    from evalkit.context import CaseContext, case_scope
    from evalkit.judging import judge_scorer
    from evalkit.targets import build_target

    target = build_target({"model": MODEL, "prompt": "Answer briefly: {input}", "api_base": api_base})
    judge = judge_scorer("correctness", model=MODEL)
    all_cases = workload(cases)

    async def job(i: int) -> None:
        case = all_cases[i]
        with case_scope(CaseContext(run_id="bench", case_id=case.id)):
            output = await target(case)
            score = await judge(case, output, None)
        if score.error or score.value != 4.0:
            raise RuntimeError(f"unexpected score: {score}")

    wall = await bounded(cases, concurrency, job)
    return cases / wall


async def main_async(args: argparse.Namespace, api_base: str) -> dict[str, Any]:
    os.environ["EVALKIT_API_KEY"] = "sk-bench"
    os.environ["EVALKIT_API_BASE"] = api_base  # the judge reaches the loopback server too
    os.environ.setdefault("EVALKIT_MODEL_CONCURRENCY", str(max(64, args.concurrency * 2)))
    await bare_rate(api_base, 25, min(args.concurrency, 10))  # warm up: import, clients, connections
    if args.latency_ms > 0:
        wall_cases = args.cases / await harness(api_base, args.cases, args.concurrency)
        waves = -(-args.cases // args.concurrency)
        ideal = waves * 2 * args.latency_ms / 1000
        bare_wall = args.cases / await bare_rate(api_base, args.cases, args.concurrency)
        return {"bench": "llm_calls", "mode": "latency", "cases": args.cases, "latency_ms": args.latency_ms,
                "concurrency": args.concurrency, "wall_s": round(wall_cases, 3), "ideal_s": round(ideal, 3),
                "bare_litellm_wall_s": round(bare_wall, 3), "bare_ratio_to_ideal": round(bare_wall / ideal, 3),
                "cases_per_s": round(args.cases / wall_cases, 2), "ratio_to_ideal": round(wall_cases / ideal, 3)}
    bare1 = await bare_rate(api_base, args.cases, args.concurrency)
    cases_per_s = await harness(api_base, args.cases, args.concurrency)
    bare2 = await bare_rate(api_base, args.cases, args.concurrency)
    bare = 2 * (bare1 + bare2) / 2  # calls/s, measured before and after the harness to even out drift
    return {"bench": "llm_calls", "mode": "throughput", "cases": args.cases, "concurrency": args.concurrency,
            "cases_per_s": round(cases_per_s, 2), "harness_calls_per_s": round(2 * cases_per_s, 2),
            "bare_litellm_calls_per_s": round(bare, 2), "bare_runs_calls_per_s": [round(2 * bare1, 1), round(2 * bare2, 1)],
            "ratio": round(2 * cases_per_s / bare, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EVALKIT_CACHE"] = str(Path(tmp) / "llm_cache.sqlite")
        proc, api_base = start_server(args.latency_ms)
        try:
            result = asyncio.run(main_async(args, api_base))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
