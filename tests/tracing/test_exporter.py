"""The DuckDB span sink: nothing dropped under load, everything written by flush()."""

from __future__ import annotations

import threading
from pathlib import Path

from opentelemetry import trace as otel

from evalkit.context import CaseContext
from evalkit.schema import Case
from evalkit.store.db import open_store
from evalkit.tracing.setup import StoreTracer


def _produce(tracer: StoreTracer, worker: int, traces: int, per_trace: int) -> None:
    api = otel.get_tracer("load")
    for t in range(traces):
        ctx = CaseContext(run_id="load", case_id=f"w{worker}-{t}")
        with tracer.case_span(ctx, Case(id=ctx.case_id, input="x")):
            for i in range(per_trace - 1):
                with api.start_as_current_span("work", attributes={"i": i, "gen_ai.operation.name": "chat",
                                                                    "gen_ai.request.model": f"m{i % 3}",
                                                                    "gen_ai.usage.input_tokens": 10}):
                    pass


def test_no_span_dropped_with_a_small_queue_and_concurrent_producers(workspace: Path) -> None:
    store = open_store(workspace / "load.duckdb")
    # A tiny queue forces backpressure: producers wait for the writer instead of dropping.
    tracer = StoreTracer(store, batch_size=500, max_pending=1_000)
    threads = [threading.Thread(target=_produce, args=(tracer, w, 100, 50)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tracer.flush()
    n, traces, chat, tokens = store.execute(
        "SELECT count(*), count(DISTINCT trace_id), count(*) FILTER (WHERE operation = 'chat'), sum(input_tokens)"
        " FROM spans"
    )[0]
    store.close()
    assert (n, traces, chat, tokens) == (20_000, 400, 19_600, 196_000)
    assert tracer.dropped == 0 and tracer.sink.written == 20_000 and tracer.sink.pending == 0


def test_case_spans_and_finished_cases_are_forgotten(workspace: Path) -> None:
    from evalkit.tracing import state

    store = open_store(workspace / "s.duckdb")
    tracer = StoreTracer(store)
    ctx = CaseContext(run_id="r", case_id="c")
    with tracer.case_span(ctx, Case(id="c", input="x")):
        with tracer.step_span("evalkit.target", {"evalkit.target": "t"}):
            pass
        spans = tracer.case_spans(ctx)
    assert [s["name"] for s in spans] == ["evalkit.target"] and spans[0]["trace_id"] == ctx.trace_id
    assert int(ctx.trace_id or "0", 16) not in state.ROUTES  # dropped as the case ends: flat memory
    tracer.flush()
    assert store.execute("SELECT count(*) FROM spans")[0][0] == 2
    store.close()
