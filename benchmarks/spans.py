"""Span throughput and trace queries.

1. ``--spans`` (default 500,000) spans made the way a run makes them (evalkit's own spans: the
   ``evalkit.case`` root, the ``evalkit.target`` step, an ``@trace`` agent with three tool calls and
   four ``chat`` spans from the model facade's call records, content captured) into the DuckDB store;
   ``spans_per_s`` is spans / (first span start → flush done), ``dropped`` is spans made minus rows
   stored. For reference (``--reference`` spans each) it also times the same tree with content capture
   off (``no_content_spans_per_s``), the same tree made by agent
   code through the OpenTelemetry API under evalkit's case span (the SDK path user spans take,
   ``otel_api_spans_per_s``, end to end), making the rows alone with nothing written
   (``producer_only_spans_per_s``) and the exporter alone on rows already made
   (``exporter_only_spans_per_s``). ``--prefill N`` puts N synthetic spans in the store first: span
   intake into a store that already holds many.
2. The store is topped up to ``--total`` (default 1,000,000) spans with synthetic rows of the same
   shape, then three queries run ``--repeats`` times each (medians): token totals by model, p95
   duration by span name, one whole trace by id.

``--team`` runs both parts on a team store (DuckLake on a throwaway PostgreSQL server on loopback,
started from the Debian packages as the tests do; data files on local disk), then runs
``evalkit compact`` once and times the queries again (``*_compacted_ms``).

Last line: JSON with spans_per_s, dropped, tokens_by_model_ms, p95_by_name_ms, trace_by_id_ms.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "llama-3.1-8b"]
TOOLS = ["search_kb", "create_ticket", "check_status", "fetch_url"]
PER_TRACE = 10  # 1 case span + target + agent + 4 chat + 3 tools


MESSAGES = [{"role": "system", "content": "You are a helpdesk agent."},
            {"role": "user", "content": "the printer on floor 3 is jammed again"}]


def produce(tracer: Any, n_spans: int, run_id: str) -> int:
    """``n_spans`` spans in traces of PER_TRACE, made as evalkit makes them in a run; returns spans made."""
    from evalkit.context import CaseContext
    from evalkit.llm.types import CallRecord
    from evalkit.schema import Case
    from evalkit.tracing.genai import on_call
    from evalkit.tracing.spans import function_span, set_result

    case = Case(id="bench", input="q")
    made = 0
    i = 0
    while made < n_spans:
        ctx = CaseContext(run_id=run_id, case_id=f"c{i}")
        with tracer.case_span(ctx, case), tracer.step_span("evalkit.target", {"evalkit.target": "agent"}), \
                function_span("agent", "agent", {"question": "printer jammed"}):
            for k in range(4):
                m = MODELS[(i + k) % 4]
                now = time.time_ns()
                on_call(CallRecord(
                    model=f"openai/{m}", provider="openai", request_model=m, response_model=m, input_tokens=100 + k,
                    output_tokens=20 + k, cost_usd=0.0001, latency_ms=1.0, messages=MESSAGES, completion="Open tray 2.",
                    error_type=None, start_time_ns=now - 1_000_000, end_time_ns=now, finish_reason="stop"))
            for k in range(3):
                with function_span(TOOLS[(i + k) % 4], "tool", {"query": "printer on floor 3"}) as sp:
                    set_result(sp, {"status": "ok"})
        made += PER_TRACE
        i += 1
    return made


def produce_otel_api(tracer: Any, n_spans: int, run_id: str) -> int:
    """The same tree under evalkit's case span, made by agent code through the OpenTelemetry API (the SDK)."""
    from opentelemetry import trace as otel

    from evalkit.context import CaseContext
    from evalkit.schema import Case

    sdk = otel.get_tracer("bench-agent")
    case = Case(id="bench", input="q")
    made = 0
    i = 0
    while made < n_spans:
        ctx = CaseContext(run_id=run_id, case_id=f"c{i}")
        with tracer.case_span(ctx, case), \
                sdk.start_as_current_span("evalkit.target", attributes={"evalkit.target": "agent"}), \
                sdk.start_as_current_span("invoke_agent agent", attributes={
                    "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "agent"}):
            for k in range(4):
                m = MODELS[(i + k) % 4]
                sdk.start_span(f"chat {m}", kind=otel.SpanKind.CLIENT, attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": m,
                    "gen_ai.response.model": m, "gen_ai.usage.input_tokens": 100 + k,
                    "gen_ai.usage.output_tokens": 20 + k, "gen_ai.response.finish_reasons": ("stop",)}).end()
            for k in range(3):
                t = TOOLS[(i + k) % 4]
                sdk.start_span(f"execute_tool {t}", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": t,
                    "gen_ai.tool.call.arguments": '{"query": "printer on floor 3"}'}).end()
        made += PER_TRACE
        i += 1
    return made


def synthetic(n: int, run_id: str, seed: int = 7) -> Any:
    """``n`` span rows (an Arrow table, built through polars) shaped like ``produce``'s."""
    import polars as pl

    rng = random.Random(seed)
    names = ["evalkit.case", "evalkit.target", "invoke_agent agent",
             *[f"chat {m}" for m in MODELS], *[f"execute_tool {t}" for t in TOOLS[:3]]]
    ops = [None, None, "invoke_agent", "chat", "chat", "chat", "chat", "execute_tool", "execute_tool", "execute_tool"]
    models = [None, None, None, *MODELS, None, None, None]
    tools = [None] * 7 + TOOLS[:3]
    traces = n // PER_TRACE
    trace_ids = [f"{rng.getrandbits(128):032x}" for _ in range(traces)]
    idx = pl.DataFrame({"t": pl.int_range(0, traces, eager=True)}).join(
        pl.DataFrame({"k": pl.int_range(0, PER_TRACE, eager=True)}), how="cross")
    lut = pl.DataFrame({"k": list(range(PER_TRACE)), "name": names, "operation": ops, "request_model": models,
                        "tool_name": tools}, schema_overrides={"k": pl.Int64})
    base = time.time_ns() - 86_400 * 10**9
    ts = pl.Datetime("us", "UTC")
    df = idx.join(lut, on="k", how="left").with_columns(
        pl.Series("trace_id", trace_ids).gather(idx["t"]).alias("trace_id"),
        (pl.lit(base) + pl.col("t") * 1_000_000 + pl.col("k") * 10_000).alias("start_ns"),
        ((pl.col("t") * 7919 + pl.col("k") * 104729) % 50_000 * 1000 + 50_000).alias("dur_ns"),
    )
    chat = pl.col("operation") == "chat"
    return df.select(
        "trace_id",
        pl.format("{}", pl.col("t") * PER_TRACE + pl.col("k")).str.pad_start(16, "0").alias("span_id"),
        pl.when(pl.col("k") > 0).then(pl.format("{}", pl.col("t") * PER_TRACE).str.pad_start(16, "0"))
        .alias("parent_span_id"),
        "name",
        pl.when(chat).then(pl.lit("CLIENT")).otherwise(pl.lit("INTERNAL")).alias("kind"),
        (pl.col("start_ns") // 1000).cast(ts).alias("start_time"),
        ((pl.col("start_ns") + pl.col("dur_ns")) // 1000).cast(ts).alias("end_time"),
        (pl.col("dur_ns") / 1e6).alias("duration_ms"),
        pl.lit("UNSET").alias("status_code"),
        pl.lit("evalkit").alias("service_name"),
        pl.lit(run_id).alias("run_id"),
        pl.format("s{}-{}", pl.lit(seed), pl.col("t")).alias("case_id"),
        "operation",
        pl.when(chat).then(pl.lit("openai")).alias("provider"),
        "request_model",
        pl.col("request_model").alias("response_model"),
        pl.when(chat).then(100 + pl.col("k")).alias("input_tokens"),
        pl.when(chat).then(20 + pl.col("k")).alias("output_tokens"),
        "tool_name",
        pl.when(pl.col("operation").is_not_null())
        .then(pl.format('{{"gen_ai.operation.name":"{}"}}', pl.col("operation"))).alias("attributes"),
    )


def timed(fn: Any, repeats: int) -> float:
    fn()  # warm
    xs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(xs), 2)


def top_up(store: Any, total: int, *, seed: int) -> None:
    """Synthetic span rows (:func:`synthetic`) into ``store`` until it holds ``total``, 250k at a time."""
    left = total - store.execute("SELECT count(*) FROM spans")[0][0]
    while left > 0:
        n = min(250_000, left)
        n -= n % PER_TRACE or 0
        if n <= 0:
            n = left
        store.insert_frame("spans", synthetic(n, "bench-synthetic", seed))
        left -= n
        seed += 1


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spans", type=int, default=500_000)
    ap.add_argument("--total", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--reference", type=int, default=100_000, help="spans for the SDK-only / exporter-only figures")
    ap.add_argument("--prefill", type=int, default=0, help="synthetic spans in the store before the end-to-end part")
    ap.add_argument("--team", action="store_true", help="on a team store (a throwaway PostgreSQL server)")
    args = ap.parse_args()
    if not args.team:
        return measure(args, None)
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.fakes.postgres import PostgresServer

    server = PostgresServer().start()
    try:
        with tempfile.TemporaryDirectory() as lake:
            url = "ducklake+" + server.create_database() + f"?data_path={lake}"
            return measure(args, url)
    finally:
        server.stop()


def measure(args: argparse.Namespace, url: str | None) -> dict[str, Any]:

    from evalkit.store.db import open_store
    from evalkit.tracing import state
    from evalkit.tracing.exporter import DuckDBSpanSink
    from evalkit.tracing.setup import StoreTracer

    out: dict[str, Any] = {"bench": "spans", "store": "team (DuckLake on PostgreSQL)" if url else "file"}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(url or Path(tmp) / "spans.duckdb")

        if args.prefill:  # a store that already holds spans (a team's store after months of runs)
            top_up(store, args.prefill, seed=1_000)
            out["prefilled_spans"] = store.execute("SELECT count(*) FROM spans")[0][0]

        # -- end to end: evalkit's spans → rows → DuckDB -------------------------------------
        tracer = StoreTracer(store)
        gc.collect()
        t0 = time.perf_counter()
        c0 = time.process_time()
        made = produce(tracer, args.spans, "bench-e2e")
        tracer.flush()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        stored = store.execute("SELECT count(*) FROM spans WHERE run_id = 'bench-e2e'")[0][0]
        out.update(spans=made, wall_s=round(wall, 2), cpu_s=round(cpu, 2), spans_per_s=round(made / wall),
                   dropped=made - stored, sink_dropped=tracer.dropped)

        if args.reference:
            # -- reference: the same tree with content capture off (--no-content), end to end
            bare = StoreTracer(store, capture_content=False)
            gc.collect()
            t0 = time.perf_counter()
            n = produce(bare, args.reference, "bench-no-content")
            bare.flush()
            out["no_content_spans_per_s"] = round(n / (time.perf_counter() - t0))

            # -- reference: the same tree through the OpenTelemetry API (agent code's path), end to end
            api = StoreTracer(store)
            gc.collect()
            t0 = time.perf_counter()
            n = produce_otel_api(api, args.reference, "bench-otel-api")
            api.flush()
            out["otel_api_spans_per_s"] = round(n / (time.perf_counter() - t0))
            out["otel_api_dropped"] = n - store.execute(
                "SELECT count(*) FROM spans WHERE run_id = 'bench-otel-api'")[0][0]

            # -- reference: the exporter alone, on rows already made (a file store only: small batches
            # on a team store are one commit each)
            if not url:
                rows: list[Any] = []
                grab = StoreTracer(store)
                grab.sink.add_row = rows.append  # type: ignore[method-assign]
                gc.collect()
                t0 = time.perf_counter()
                produce(grab, args.reference, "bench-exporter")
                out["producer_only_spans_per_s"] = round(len(rows) / (time.perf_counter() - t0))
                sink = DuckDBSpanSink(store, redactor=grab.redactor, batch_size=10_000, max_pending=200_000)
                gc.collect()
                t0 = time.perf_counter()
                for row in rows:
                    sink.add_row(row)
                sink.close()
                out["exporter_only_spans_per_s"] = round(len(rows) / (time.perf_counter() - t0))
            store.execute("DELETE FROM spans WHERE run_id IN ('bench-exporter', 'bench-otel-api', 'bench-no-content')")

        # -- queries on a store of --total spans --------------------------------------------
        if args.total > store.execute("SELECT count(*) FROM spans")[0][0]:
            t1 = time.perf_counter()
            top_up(store, args.total, seed=1)
            out["topup_s"] = round(time.perf_counter() - t1, 2)
        out["store_spans"] = store.execute("SELECT count(*) FROM spans")[0][0]
        con = store.con
        trace_ids = [r[0] for r in con.execute(
            "SELECT trace_id FROM spans USING SAMPLE 200 ROWS").fetchall()]
        rng = random.Random(3)
        out["tokens_by_model_ms"] = timed(lambda: store.query(
            "SELECT request_model, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,"
            " count(*) AS calls FROM spans WHERE operation = 'chat' GROUP BY request_model ORDER BY 2 DESC"), args.repeats)
        out["p95_by_name_ms"] = timed(lambda: store.query(
            "SELECT name, quantile_cont(duration_ms, 0.95) AS p95_ms, count(*) AS n FROM spans GROUP BY name"
            " ORDER BY p95_ms DESC"), args.repeats)
        out["trace_by_id_ms"] = timed(lambda: store.query(
            "SELECT * FROM spans WHERE trace_id = ? ORDER BY start_time", [rng.choice(trace_ids)]), args.repeats)
        if url:
            t1 = time.perf_counter()
            out["compact"] = store.compact()
            out["compact_s"] = round(time.perf_counter() - t1, 2)
            for key, sql in (("tokens_by_model", "SELECT request_model, sum(input_tokens), sum(output_tokens), count(*)"
                                                 " FROM spans WHERE operation = 'chat' GROUP BY 1 ORDER BY 2 DESC"),
                             ("p95_by_name", "SELECT name, quantile_cont(duration_ms, 0.95) AS p, count(*) FROM spans"
                                             " GROUP BY name ORDER BY p DESC")):
                out[f"{key}_compacted_ms"] = timed(lambda sql=sql: store.query(sql), args.repeats)
            out["trace_by_id_compacted_ms"] = timed(lambda: store.query(
                "SELECT * FROM spans WHERE trace_id = ? ORDER BY start_time", [rng.choice(trace_ids)]), args.repeats)
        store.close()
        state.ROUTES.clear()
    out["goals"] = {"spans_per_s": 50_000, "dropped": 0, "tokens_by_model_ms": 50, "p95_by_name_ms": 100,
                    "trace_by_id_ms": 20}
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
