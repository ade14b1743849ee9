"""Report size: a 20,000-case run (3 scorers, an LLM judge with rationales, 6 spans per case) rendered to HTML.

Reports the file size (gzipped data block, as written by default, and plain JSON), the generation
time, and, when Chromium and chromedriver are installed, how long the page takes to open, filter to
failed cases and open one case. Last line: JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_SYLLABLES = ["ba", "ker", "lo", "mi", "net", "pas", "vor", "di", "sen", "tra", "ul", "quo", "rek", "fi", "gan", "hu",
              "ja", "ple", "zu", "wor", "cli", "ent", "print", "ac", "cess", "re", "set", "log", "in", "out"]
_GEN = random.Random(42)
WORDS = ["".join(_GEN.choice(_SYLLABLES) for _ in range(_GEN.randint(1, 4))) for _ in range(3000)]
_CUM = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(WORDS))))  # Zipf-like, as in natural text


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(WORDS, cum_weights=_CUM, k=n)).capitalize() + "."


def build(store: Any, run_id: str, n: int, seed: int = 0) -> None:
    """Write a synthetic run of ``n`` cases with scores and spans into ``store``."""
    import polars as pl

    from evalkit.schema import CaseResult, Score, ToolCall, Usage

    rng = random.Random(seed)
    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    store.create_run({"run_id": run_id, "suite": "bench", "status": "completed", "started_at": t0,
                      "ended_at": t0 + timedelta(minutes=5), "target": "bench-agent", "cases_total": n,
                      "dataset_sha256": "0" * 64, "git_commit": "1" * 40, "config": {}})
    results, inputs, spans = [], {}, []
    ms = timedelta(milliseconds=1)
    for i in range(n):
        cid, tid = f"case-{i:05d}", f"{run_id}-{i:05d}"
        q = _text(rng, rng.randint(12, 30))
        inputs[cid] = {"input": q, "expected": _text(rng, rng.randint(15, 30)), "metadata": {}}
        good = rng.random() < 0.8
        score = rng.choice([4.0, 5.0]) if good else rng.choice([1.0, 2.0, 3.0])
        start = t0 + i * 10 * ms
        lat = rng.uniform(200, 2500)
        results.append(CaseResult(
            run_id=run_id, case_id=cid, output=_text(rng, rng.randint(30, 70)),
            scores=[
                Score(name="correctness", value=score, passed=score >= 4, rationale=_text(rng, rng.randint(15, 35)),
                      metadata={"judge": "correctness@1.0", "model": "mock/judge", "prompt_sha256": "a" * 64}),
                Score(name="key_facts", value=good, passed=good, rationale="all found" if good else "missing: portal"),
                Score(name="latency", value=lat < 2000, passed=lat < 2000, rationale=f"latency {lat:.0f} ms"),
            ],
            tool_calls=[ToolCall(name="search_kb", arguments={"query": q[:40]})], latency_ms=lat,
            usage=Usage(input_tokens=600, output_tokens=120, cost_usd=0.0004, llm_calls=3), trace_id=tid,
            started_at=start, ended_at=start + lat * ms, tags=[rng.choice(WORDS), "bench"],
        ))
        layout = [("root", None, "evalkit.case", 0.0, lat, None, None), ("agent", "root", "answer", 1.0, lat * 0.8, None, None),
                  ("l1", "agent", "chat mock/agent", 2.0, lat * 0.3, "mock/agent", None),
                  ("t1", "agent", "execute_tool search_kb", lat * 0.32, lat * 0.1, None, "search_kb"),
                  ("l2", "agent", "chat mock/agent", lat * 0.45, lat * 0.3, "mock/agent", None),
                  ("j", "root", "chat mock/judge", lat * 0.82, lat * 0.15, "mock/judge", None)]
        for sid, parent, name, off, dur, model, tool in layout:
            spans.append({"trace_id": tid, "span_id": f"{tid}-{sid}", "parent_span_id": f"{tid}-{parent}" if parent else None,
                          "name": name, "start_time": start + off * ms, "end_time": start + (off + dur) * ms,
                          "duration_ms": dur, "request_model": model, "input_tokens": 200 if model else None,
                          "output_tokens": 40 if model else None, "tool_name": tool, "status_code": "OK",
                          "attributes": json.dumps({"gen_ai.prompt": _text(rng, 40)})})
    for k in range(0, n, 5000):
        store.write_results(results[k:k + 5000], inputs)
    ts = pl.Datetime("us", "UTC")
    schema = {"trace_id": pl.String, "span_id": pl.String, "parent_span_id": pl.String, "name": pl.String,
              "start_time": ts, "end_time": ts, "duration_ms": pl.Float64, "request_model": pl.String,
              "input_tokens": pl.Int64, "output_tokens": pl.Int64, "tool_name": pl.String, "status_code": pl.String,
              "attributes": pl.String}
    store.insert_frame("spans", pl.DataFrame(spans, schema=schema))
    from evalkit.pipeline.finalise import finalise
    from evalkit.runner import RunOutcome

    finalise(store, run_id, "bench", planned=n, engine=RunOutcome())


def _browser_timings(path: Path, tmp: Path) -> dict[str, float] | None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        from tests.report.browser import Browser, chromium_paths
    except ImportError:
        return None
    paths = chromium_paths()
    if paths is None:
        return None
    b = Browser(paths[0], paths[1], tmp / "profile")
    try:
        t0 = time.perf_counter()
        b.get(path.as_uri())
        b.wait("return document.body.getAttribute('data-ready')")
        opened = time.perf_counter() - t0
        t1 = time.perf_counter()
        b.click("#f-failed")
        b.text(".count")
        filtered = time.perf_counter() - t1
        before = b.text(".count")
        t2 = time.perf_counter()
        b.type("#f-search", WORDS[500])
        b.wait(f"return document.querySelector('.count').textContent !== {json.dumps(before)}")
        searched = time.perf_counter() - t2  # includes the 120 ms typing debounce
        t3 = time.perf_counter()
        b.click("#case-rows tr")
        b.wait("return document.querySelectorAll('#waterfall .wf-bar').length > 0")
        case = time.perf_counter() - t3
    finally:
        b.close()
    return {"open_s": round(opened, 2), "filter_failed_s": round(filtered, 3), "search_s": round(searched, 3),
            "open_case_s": round(case, 3)}


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    from evalkit.report import render_run
    from evalkit.store.db import Store

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        store = Store(d / "bench.duckdb")
        t0 = time.perf_counter()
        build(store, "bench-run", args.cases)
        build_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        page = render_run(store, "bench-run")
        render_s = time.perf_counter() - t1
        out = d / "report.html"
        out.write_text(page, encoding="utf-8")
        plain = render_run(store, "bench-run", compress=False)
        spans = store.execute("SELECT count(*) FROM spans")[0][0]
        store.close()
        result: dict[str, Any] = {
            "cases": args.cases, "spans": spans, "build_s": round(build_s, 2), "render_s": round(render_s, 2),
            "html_bytes": len(page.encode()), "html_mib": round(len(page.encode()) / 2**20, 2),
            "plain_json_html_mib": round(len(plain.encode()) / 2**20, 2),
        }
        if not args.no_browser:
            timings = _browser_timings(out, d)
            if timings:
                result["browser"] = timings
    return result


if __name__ == "__main__":
    print(json.dumps(main()))
