"""LLM-call overhead of the harness: a whole run (target + judge calls, tracing and store on) vs bare clients.

    python benchmarks/llm_calls.py                                  # 0 ms server: ratio_litellm, ratio_openai
    python benchmarks/llm_calls.py --latency-ms 200 --concurrency 100   # prints ratio_to_ideal

Each case makes one target call (model target) and one judge call (``correctness`` judge). The
harness figure is ``evalkit.evaluate`` end to end (plan, engine, spans into DuckDB, the store
written; MLflow off); the bare rates send the same two requests per case (same messages,
parameters and response format) with bare ``litellm.acompletion`` and with a bare
``openai.AsyncOpenAI`` loop, at the same concurrency, to the same loopback OpenAI-compatible server
(another process). Rates are calls per second; ``ratio_litellm`` / ``ratio_openai`` = harness ÷ bare.
The response cache is on (a fresh file, so every call misses and writes). The last line is JSON.
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
         "--content", VERDICT, "--fast"],
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


def _requests(cases: int) -> tuple[list[tuple[Any, Any]], dict[str, Any]]:
    """(target messages, judge messages) per case, and the judge's response format: what the harness sends."""
    from evalkit.judging import find_judge
    from evalkit.judging.model import json_schema
    from evalkit.judging.render import render

    judge = find_judge("correctness")
    assert judge is not None
    rf = {"type": "json_schema", "json_schema": {"name": "scale_1_5_verdict", "schema": json_schema("scale_1_5"),
                                                 "strict": True}}
    out = []
    for case in workload(cases):
        fields = {"input": case.input, "expected": case.expected, "output": VERDICT}
        out.append(([{"role": "user", "content": f"Answer briefly: {case.input}"}], render(judge, fields)))
    return out, rf


async def bare_rate(api_base: str, cases: int, concurrency: int) -> float:
    """Calls per second for the same two requests per case, sent with bare ``litellm.acompletion``."""
    from evalkit.llm.facade import _litellm

    litellm = _litellm()  # same configuration as the harness's litellm path (offline cost map, no callbacks)
    requests, rf = _requests(cases)

    async def job(i: int) -> None:
        target_msgs, judge_msgs = requests[i]
        await litellm.acompletion(model=MODEL, messages=target_msgs, api_base=api_base, api_key="sk-bench",
                                  num_retries=0, max_retries=0, timeout=60)
        await litellm.acompletion(model=MODEL, messages=judge_msgs, api_base=api_base, api_key="sk-bench",
                                  num_retries=0, max_retries=0, timeout=60, temperature=0, response_format=rf)

    return 2 * cases / await bounded(cases, concurrency, job)


async def bare_openai_rate(api_base: str, cases: int, concurrency: int) -> float:
    """Calls per second for the same two requests per case, with a bare ``openai.AsyncOpenAI`` loop."""
    import openai

    client = openai.AsyncOpenAI(base_url=api_base, api_key="sk-bench", max_retries=0, timeout=60)
    requests, rf = _requests(cases)
    name = MODEL.split("/", 1)[1]

    async def job(i: int) -> None:
        target_msgs, judge_msgs = requests[i]
        await client.chat.completions.create(model=name, messages=target_msgs)
        await client.chat.completions.create(model=name, messages=judge_msgs, temperature=0, response_format=rf)

    try:
        return 2 * cases / await bounded(cases, concurrency, job)
    finally:
        await client.close()


def harness(api_base: str, cases: int, concurrency: int, store: Path) -> float:
    """Calls per second of a whole ``evaluate`` run: tracing on, results and spans into a DuckDB file."""
    from evalkit import evaluate
    from evalkit.judging import judge_scorer

    target = {"model": MODEL, "prompt": "Answer briefly: {input}", "api_base": api_base}
    t0 = time.perf_counter()
    res = evaluate(workload(cases), target=target, scorers=[judge_scorer("correctness", model=MODEL)],
                   suite_name="llm-bench", store=store, tracing=True, mlflow=False, concurrency=concurrency)
    wall = time.perf_counter() - t0
    if res.summary.errors:
        raise RuntimeError(f"{res.summary.errors} errors in the benchmark run")
    return 2 * cases / wall


async def _bare(args: argparse.Namespace, api_base: str) -> tuple[float, float]:
    return (await bare_rate(api_base, args.cases, args.concurrency),
            await bare_openai_rate(api_base, args.cases, args.concurrency))


def measure(args: argparse.Namespace, api_base: str, tmp: Path) -> dict[str, Any]:
    os.environ["EVALKIT_API_KEY"] = "sk-bench"
    os.environ["EVALKIT_API_BASE"] = api_base  # the judge reaches the loopback server too
    os.environ.setdefault("EVALKIT_MODEL_CONCURRENCY", str(max(64, args.concurrency * 2)))
    asyncio.run(bare_rate(api_base, 25, min(args.concurrency, 10)))  # warm up: import, clients, connections
    harness(api_base, 25, min(args.concurrency, 10), tmp / "warm.duckdb")
    out: dict[str, Any] = {"bench": "llm_calls", "cases": args.cases, "concurrency": args.concurrency,
                           "client": os.environ.get("EVALKIT_LLM_CLIENT", "auto"), "cores": os.cpu_count()}
    if args.latency_ms > 0:
        calls_per_s = harness(api_base, args.cases, args.concurrency, tmp / "run.duckdb")
        wall = 2 * args.cases / calls_per_s
        ideal = -(-args.cases // args.concurrency) * 2 * args.latency_ms / 1000
        bare_litellm, bare_openai = asyncio.run(_bare(args, api_base))
        out.update(mode="latency", latency_ms=args.latency_ms, wall_s=round(wall, 3), ideal_s=round(ideal, 3),
                   ratio_to_ideal=round(wall / ideal, 3),
                   bare_litellm_ratio_to_ideal=round(2 * args.cases / bare_litellm / ideal, 3),
                   bare_openai_ratio_to_ideal=round(2 * args.cases / bare_openai / ideal, 3),
                   cases_per_s=round(calls_per_s / 2, 2), goal_ratio_to_ideal=1.5)
        return out
    litellm1, openai1 = asyncio.run(_bare(args, api_base))
    calls_per_s = harness(api_base, args.cases, args.concurrency, tmp / "run.duckdb")
    litellm2, openai2 = asyncio.run(_bare(args, api_base))
    bare_litellm, bare_openai = (litellm1 + litellm2) / 2, (openai1 + openai2) / 2  # before and after: drift evens out
    out.update(mode="throughput", cases_per_s=round(calls_per_s / 2, 2), harness_calls_per_s=round(calls_per_s, 1),
               bare_litellm_calls_per_s=round(bare_litellm, 1), bare_openai_calls_per_s=round(bare_openai, 1),
               bare_runs=[[round(litellm1, 1), round(openai1, 1)], [round(litellm2, 1), round(openai2, 1)]],
               ratio_litellm=round(calls_per_s / bare_litellm, 3), ratio_openai=round(calls_per_s / bare_openai, 3),
               goals={"ratio_litellm": 2.5, "ratio_openai": 0.9})
    return out


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
            result = measure(args, api_base, Path(tmp))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
