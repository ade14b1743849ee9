"""evalkit's own spans skip the SDK (EvalSpan records): same rows, same trace, same redaction, nothing dropped."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from opentelemetry import trace as otel
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

import evalkit
from evalkit.context import CaseContext
from evalkit.llm import complete
from evalkit.llm.types import CallRecord
from evalkit.redact import MASK
from evalkit.schema import Case
from evalkit.store.db import open_store
from evalkit.tracing import state
from evalkit.tracing.columns import COLUMNS, SpanColumns, sdk_row
from evalkit.tracing.decorators import trace
from evalkit.tracing.genai import on_call
from evalkit.tracing.hub import hub
from evalkit.tracing.record import EvalSpan
from evalkit.tracing.setup import StoreTracer
from evalkit.tracing.spans import function_span, set_result

SECRET_ENV = "fastpath-token-7c6b5a4d3e2f"
API_KEY = "sk-proj-FASTPATHABCDEFGHIJKLMNOP"

seen: dict[str, Any] = {}


@trace(kind="tool")
def fetch(topic: str, api_key: str) -> str:
    return f"facts about {topic}"


@trace(kind="agent")
async def nested_agent(question: str) -> str:
    here = otel.get_current_span()
    seen.setdefault("current", []).append((type(here).__name__, f"{here.get_span_context().trace_id:032x}"))
    here.set_attribute("agent.note", f"called with key {API_KEY}")  # user code on evalkit's span
    tracer = otel.get_tracer("user-agent")
    with tracer.start_as_current_span("user.plan", attributes={"plan.steps": 2}), \
            tracer.start_as_current_span("user.step"):
        facts = fetch(question, api_key=API_KEY)
    comp = await complete("mock/echo", [{"role": "user", "content": f"{question} (token {SECRET_ENV})"}])
    return f"{facts}. {comp.text}"


def _rows(res: Any) -> list[dict[str, Any]]:
    with open_store(res.store_path, read_only=True) as st:
        return st.query("SELECT * FROM spans WHERE run_id = ? ORDER BY start_time, span_id", [res.run_id])


def test_user_spans_nest_under_evalkit_spans_in_the_case_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    seen.clear()
    monkeypatch.setenv("MY_SERVICE_TOKEN", SECRET_ENV)
    res = evalkit.evaluate([Case(id="a", input="vpn"), Case(id="b", input="printer")], target=nested_agent,
                           scorers=["no_error_spans"], cache=False, concurrency=2)
    with open_store(res.store_path, read_only=True) as st:
        traces = dict(st.execute("SELECT case_id, trace_id FROM case_results WHERE run_id = ?", [res.run_id]))
    rows = _rows(res)
    assert len(traces) == 2 and {t for _, t in seen["current"]} == set(traces.values())
    assert {name for name, _ in seen["current"]} == {"EvalSpan"}
    for case_id, trace_id in traces.items():
        spans = [r for r in rows if r["trace_id"] == trace_id]
        assert {r["case_id"] for r in spans} == {case_id}
        by_id = {r["span_id"]: r for r in spans}
        by_name = {r["name"]: r for r in spans}

        def chain(name: str, by_id: dict[str, Any] = by_id, by_name: dict[str, Any] = by_name) -> list[str]:
            out, p = [], by_name[name]["parent_span_id"]
            while p:
                out.append(by_id[p]["name"])
                p = by_id[p]["parent_span_id"]
            return out

        assert chain("execute_tool fetch") == ["user.step", "user.plan", "invoke_agent nested_agent",
                                               "evalkit.target", "evalkit.case"]
        assert chain("chat echo") == ["invoke_agent nested_agent", "evalkit.target", "evalkit.case"]
        assert chain("evalkit.scorer") == ["evalkit.case"]
        assert by_name["user.plan"]["service_name"] == by_name["evalkit.case"]["service_name"] == "evalkit"
        attrs = json.loads(by_name["invoke_agent nested_agent"]["attributes"])
        assert attrs["agent.note"].startswith("called with key ")  # set through trace.get_current_span()
    # W3C ids: hex of the right length, never all zeros, unique
    assert all(re.fullmatch(r"[0-9a-f]{32}", r["trace_id"]) and int(r["trace_id"], 16) for r in rows)
    assert all(re.fullmatch(r"[0-9a-f]{16}", r["span_id"]) and int(r["span_id"], 16) for r in rows)
    assert len({r["span_id"] for r in rows}) == len(rows) == 2 * 8  # case, target, agent, 2 user spans, tool, chat, scorer


def test_secrets_are_masked_in_evalkit_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", SECRET_ENV)
    res = evalkit.evaluate([Case(id="s", input=f"my key is {API_KEY}")], target=nested_agent,
                           scorers=["no_error_spans"], cache=False)
    rows = _rows(res)
    dump = json.dumps(rows, default=str)
    assert SECRET_ENV not in dump and API_KEY not in dump and MASK in dump
    by_name = {r["name"]: r for r in rows}
    tool_args = json.loads(json.loads(by_name["execute_tool fetch"]["attributes"])["gen_ai.tool.call.arguments"])
    assert tool_args["api_key"] == MASK and tool_args["topic"] == f"my key is {MASK}"
    assert MASK in json.loads(by_name["chat echo"]["attributes"])["gen_ai.input.messages"]
    assert MASK in json.loads(by_name["evalkit.case"]["attributes"])["evalkit.input"]
    assert json.loads(by_name["invoke_agent nested_agent"]["attributes"])["agent.note"] == f"called with key {MASK}"


def _burst(tracer: StoreTracer, worker: int, cases: int) -> None:
    for i in range(cases):
        ctx = CaseContext(run_id="burst", case_id=f"w{worker}-{i}")
        with tracer.case_span(ctx, Case(id=ctx.case_id, input="x")), \
                tracer.step_span("evalkit.target", {"evalkit.target": "t"}), function_span("agent", "agent", {"q": i}):
            now = time.time_ns()
            on_call(CallRecord(model="mock/echo", provider="mock", request_model="echo", response_model="echo",
                               input_tokens=3, output_tokens=2, cost_usd=0.0, latency_ms=0.1, messages=[],
                               completion="ok", error_type=None, start_time_ns=now, end_time_ns=now))
            with function_span("lookup", "tool", {"topic": "vpn"}) as sp:
                set_result(sp, "ok")
            with otel.get_tracer("burst").start_as_current_span("user.span"):
                pass


def test_no_span_dropped_in_a_bounded_burst(workspace: Path) -> None:
    store = open_store(workspace / "burst.duckdb")
    # a queue far smaller than the burst: producers wait for the writer (backpressure) instead of dropping
    tracer = StoreTracer(store, batch_size=100, max_pending=300)
    threads = [threading.Thread(target=_burst, args=(tracer, w, 150)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tracer.flush()
    n, traces, chats, tools, user = store.execute(
        "SELECT count(*), count(DISTINCT trace_id), count(*) FILTER (WHERE operation = 'chat'),"
        " count(*) FILTER (WHERE tool_name = 'lookup'), count(*) FILTER (WHERE name = 'user.span') FROM spans")[0]
    orphans = store.execute("SELECT count(*) FROM spans c WHERE parent_span_id IS NOT NULL AND NOT EXISTS"
                            " (SELECT 1 FROM spans p WHERE p.span_id = c.parent_span_id AND p.trace_id = c.trace_id)")
    store.close()
    assert (n, traces, chats, tools, user) == (600 * 6, 600, 600, 600, 600)
    assert orphans[0][0] == 0
    assert tracer.dropped == 0 and tracer.sink.written == 3600 and tracer.sink.pending == 0
    assert not state.ROUTES


def _same_span_both_ways(tracer: StoreTracer, exc: BaseException) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """One span with every feature, once as an EvalSpan and once through the SDK, inside one case."""
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
             "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 3, "ratio": 0.5, "flag": True,
             "tags": ["a", "b"], "nested": {"k": [1, 2]}, "none": None}
    ctx = CaseContext(run_id="shape", case_id="c")
    with tracer.case_span(ctx, Case(id="c", input="x")):
        route, case = ctx.extras["evalkit.route"], ctx.extras["evalkit.span"]
        fast = EvalSpan(route, "chat gpt-4o", attrs, case.span_id, kind="CLIENT")
        sdk = tracer.tracer.start_span("chat gpt-4o", kind=otel.SpanKind.CLIENT, attributes=attrs)
        for s in (fast, sdk):
            s.set_attribute("later", ("x", "y"))
            s.set_attribute("ratio", 0.75)  # set again: moves to the end in both
            s.add_event("note", {"n": 1, "list": [1, 2]})
            s.record_exception(exc, escaped=True)
            s.set_status(Status(StatusCode.ERROR, "bad thing"))
            s.end()
        rows = list(route.finished)
    fast_row = next(r for r in rows if r[1] == f"{fast.span_id:016x}")
    sdk_row_ = next(r for r in rows if r[1] == f"{sdk.get_span_context().span_id:016x}")
    assert sdk_row_ == sdk_row(sdk, route)  # type: ignore[arg-type]
    return fast_row, sdk_row_


def test_fast_path_rows_have_the_sdk_rows_columns_types_and_values(workspace: Path) -> None:
    store = open_store(workspace / "shape.duckdb")
    tracer = StoreTracer(store)
    try:
        raise ValueError("boom")
    except ValueError as e:
        exc = e
    fast, sdk = _same_span_both_ways(tracer, exc)
    assert len(fast) == len(sdk) == len(COLUMNS)
    col = dict(zip(COLUMNS, range(len(COLUMNS)), strict=True))
    for name, i in col.items():
        assert type(fast[i]) is type(sdk[i]), name
        if name in ("span_id", "start_ns", "end_ns", "events"):
            continue
        assert fast[i] == sdk[i], name
    assert json.loads(fast[col["attributes"]]) == json.loads(sdk[col["attributes"]])
    assert list(json.loads(fast[col["attributes"]])) == list(json.loads(sdk[col["attributes"]]))  # same key order

    def events(row: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.items() if k != "time_ns"} for e in json.loads(row[col["events"]])]

    assert events(fast) == events(sdk) and events(fast)[1]["attributes"]["exception.type"] == "ValueError"
    fa, fb = (SpanColumns(tracer.redactor, [r]).to_frame() for r in (fast, sdk))
    assert fa.schema == fb.schema
    assert fa.drop("span_id", "start_time", "end_time", "duration_ms", "events").equals(
        fb.drop("span_id", "start_time", "end_time", "duration_ms", "events"))
    tracer.flush()
    stored = store.query("SELECT * FROM spans WHERE run_id = 'shape' AND name = 'chat gpt-4o'")
    store.close()
    assert len(stored) == 2 and {r["error_type"] for r in stored} == {"ValueError"}
    assert pl.DataFrame(stored).select(pl.all().exclude("span_id", "start_time", "end_time", "duration_ms",
                                                        "events")).unique().height == 1


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """An exporter on evalkit's provider, as an application exporting to an OTLP endpoint would add one."""
    h = hub()
    multi = h.provider._active_span_processor
    before = multi._span_processors
    memory = InMemorySpanExporter()
    h.provider.add_span_processor(SimpleSpanProcessor(memory))
    try:
        yield memory
    finally:
        multi._span_processors = before


def test_processors_on_evalkit_provider_still_get_every_span(exported: InMemorySpanExporter) -> None:
    res = evalkit.evaluate([Case(id="x", input="vpn")], target=nested_agent, scorers=["no_error_spans"], cache=False)
    rows = _rows(res)
    spans = exported.get_finished_spans()
    got = {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in spans}  # type: ignore[union-attr]
    assert got == {(r["trace_id"], r["span_id"]) for r in rows} and len(rows) == 8
    parents = {f"{s.context.span_id:016x}": f"{s.parent.span_id:016x}" if s.parent else None  # type: ignore[union-attr]
               for s in spans}
    assert parents == {r["span_id"]: r["parent_span_id"] for r in rows}
    case = next(s for s in spans if s.name == "evalkit.case")
    assert case.resource.attributes["service.name"] == "evalkit" and case.attributes["evalkit.case_id"] == "x"
    assert [e.name for e in case.events] == ["gen_ai.evaluation.result"]


class _BrokenStore:
    """A store that refuses every span write (a full disk, say); its error names a credential."""

    label = "broken"

    def insert_frame(self, table: str, data: Any) -> None:
        raise OSError(f"No space left on device (store url with {API_KEY})")


def test_spans_that_could_not_be_written_are_said_never_silent() -> None:
    tracer = StoreTracer(_BrokenStore())  # type: ignore[arg-type]
    ctx = CaseContext(run_id="lost", case_id="c")
    with tracer.case_span(ctx, Case(id="c", input="x")), tracer.step_span("evalkit.target", {}):
        pass
    tracer.flush()
    note = tracer.loss_note()
    assert tracer.dropped == 2 and note is not None
    assert note.startswith("2 span(s) could not be written") and "No space left" in note
    assert API_KEY not in note and MASK in note
    assert StoreTracer(open_store(":memory:")).loss_note() is None


def test_chat_span_keeps_the_named_request_parameters_cleaned() -> None:
    from evalkit.tracing.genai import attributes

    rec = CallRecord(model="openai/m", provider="openai", request_model="m", response_model=None, input_tokens=1,
                     output_tokens=1, cost_usd=0.0, latency_ms=1.0, messages=[], completion=None, error_type=None,
                     start_time_ns=0, end_time_ns=1, params={"temperature": 0.2, "stop": ["x", "y"], "tools": [{}],
                                                             "max_completion_tokens": 7, "seed": None})
    got = {k: v for k, v in attributes(rec, False, None).items() if k.startswith("gen_ai.request.")}
    assert got == {"gen_ai.request.model": "m", "gen_ai.request.temperature": 0.2,
                   "gen_ai.request.stop_sequences": ("x", "y"), "gen_ai.request.max_tokens": 7}
