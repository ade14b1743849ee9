"""The OTLP/HTTP receiver: protobuf and JSON (hex ids), gzip, and a remote agent joining the case's trace."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import evalkit
from evalkit.schema import Case
from evalkit.store.db import open_store
from evalkit.tracing.decorators import trace
from evalkit.tracing.propagation import inject_traceparent
from evalkit.tracing.receiver import start_receiver

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"
PARENT = "eee19b7ec3c1b173"


def _post(url: str, body: bytes, ctype: str, encoding: str | None = None, auth: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": ctype}
    if encoding:
        headers["Content-Encoding"] = encoding
    if auth:
        headers["Authorization"] = auth
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _json_request(trace_id: str, span_id: str, parent: str = "") -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js-agent"}}]},
        "scopeSpans": [{"scope": {"name": "x"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "parentSpanId": parent, "name": "chat gpt-4o", "kind": 3,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000250000000",
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
                {"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}},
                {"key": "http.request.header.authorization", "value": {"stringValue": "Bearer abcdefghijklmnop"}},
            ],
            "events": [{"timeUnixNano": "1700000000100000000", "name": "exception",
                        "attributes": [{"key": "exception.type", "value": {"stringValue": "TimeoutError"}}]}],
            "status": {"code": 2, "message": "upstream timed out"},
        }]}],
    }]}


def test_json_hex_ids_gzip_and_base64_ids(workspace: Path) -> None:
    store = open_store(workspace / "rx.duckdb")
    with start_receiver(store, port=0) as rx:
        body = gzip.compress(json.dumps(_json_request(TRACE, SPAN, PARENT)).encode())
        assert _post(rx.url, body, "application/json", "gzip") == (200, b"{}")
        # protobuf-JSON mapping (base64 ids) is accepted too
        b64 = _json_request(base64.b64encode(bytes.fromhex(TRACE)).decode(), base64.b64encode(bytes.fromhex("00000000000000aa")).decode())
        assert _post(rx.url, json.dumps(b64).encode(), "application/json; charset=utf-8")[0] == 200
        assert _post(rx.url, b"{not json", "application/json")[0] == 400
        assert _post(rx.url, b"x", "text/plain")[0] == 415
        assert _post(rx.url.replace("/v1/traces", "/v1/metrics"), b"{}", "application/json")[0] == 404
        bad_id = _json_request("xyz", SPAN)
        assert _post(rx.url, json.dumps(bad_id).encode(), "application/json")[0] == 400
        assert rx.received == 2
    # no case of this process owns the trace: the spans are kept apart, labelled, without run or case
    assert store.query("SELECT count(*) AS n FROM spans") == [{"n": 0}]
    rows = store.query("SELECT * FROM unattributed_spans ORDER BY span_id DESC")
    store.close()
    assert [r["span_id"] for r in rows] == [SPAN, "00000000000000aa"]
    r = rows[0]
    assert (r["reason"], r["run_id"], r["case_id"]) == ("unknown_trace", None, None) and r["received_at"] is not None
    assert (r["trace_id"], r["parent_span_id"], r["kind"], r["service_name"]) == (TRACE, PARENT, "CLIENT", "js-agent")
    assert (r["operation"], r["request_model"], r["input_tokens"], r["duration_ms"]) == ("chat", "gpt-4o", 42, 250.0)
    assert (r["status_code"], r["status_message"], r["error_type"]) == ("ERROR", "upstream timed out", "TimeoutError")
    assert "abcdefghijklmnop" not in r["attributes"] and json.loads(r["attributes"])["gen_ai.response.finish_reasons"] == ["stop"]


def test_protobuf_request(workspace: Path) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "go-agent"
    sp = rs.scope_spans.add().spans.add()
    sp.trace_id, sp.span_id, sp.name = bytes.fromhex(TRACE), bytes.fromhex(SPAN), "execute_tool search"
    sp.start_time_unix_nano, sp.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_000_010_000_000
    a = sp.attributes.add()
    a.key, a.value.string_value = "gen_ai.tool.name", "search"
    store = open_store(workspace / "rx.duckdb")
    with start_receiver(store, port=0) as rx:
        status, body = _post(rx.url, gzip.compress(req.SerializeToString()), "application/x-protobuf", "gzip")
        assert status == 200
        ExportTraceServiceResponse().ParseFromString(body)
        assert _post(rx.url, b"\xff\xff garbage", "application/x-protobuf")[0] == 400
    row = store.query("SELECT trace_id, span_id, parent_span_id, tool_name, service_name, duration_ms"
                      " FROM unattributed_spans")[0]
    store.close()
    assert row == {"trace_id": TRACE, "span_id": SPAN, "parent_span_id": None, "tool_name": "search",
                   "service_name": "go-agent", "duration_ms": 10.0}


REMOTE = """
import sys
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

provider = TracerProvider(resource=Resource.create({"service.name": "remote-agent"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1])))
tracer = provider.get_tracer("remote")
parent = TraceContextTextMapPropagator().extract({"traceparent": sys.argv[2]})
with tracer.start_as_current_span("remote.handle", context=parent, kind=SpanKind.SERVER):
    with tracer.start_as_current_span("execute_tool remote_search",
                                      attributes={"gen_ai.operation.name": "execute_tool",
                                                  "gen_ai.tool.name": "remote_search"}):
        pass
provider.shutdown()
print("remote answer")
"""


def test_remote_agent_spans_land_in_the_case_trace(workspace: Path) -> None:
    store = open_store(workspace / "run.duckdb")
    rx = start_receiver(store, port=0)
    seen: dict[str, str] = {}

    @trace(kind="agent")
    def call_remote(question: str) -> str:
        headers = inject_traceparent({})
        seen["traceparent"] = headers["traceparent"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        out = subprocess.run([sys.executable, "-c", REMOTE, rx.url, headers["traceparent"]],
                             capture_output=True, text=True, env=env, check=True)
        return out.stdout.strip()

    try:
        res = evalkit.evaluate([Case(id="remote", input="hi")], target=call_remote, scorers=["no_error_spans"],
                               store=store, cache=False)
        trace_id = store.query("SELECT trace_id FROM case_results WHERE run_id = ?", [res.run_id])[0]["trace_id"]
        rows = store.query("SELECT span_id, parent_span_id, name, service_name, run_id, case_id FROM spans"
                           " WHERE trace_id = ?", [trace_id])
    finally:
        rx.close()
        store.close()
    by_name = {r["name"]: r for r in rows}
    assert seen["traceparent"].split("-")[1] == trace_id
    remote = by_name["remote.handle"]
    assert remote["service_name"] == "remote-agent" and (remote["run_id"], remote["case_id"]) == (res.run_id, "remote")
    # the remote span's parent is the local span that was current when the header was made
    assert remote["parent_span_id"] == by_name["invoke_agent call_remote"]["span_id"] == seen["traceparent"].split("-")[2]
    assert by_name["execute_tool remote_search"]["parent_span_id"] == remote["span_id"]
    assert {"evalkit.case", "evalkit.target"} <= set(by_name)


def test_inject_traceparent_outside_a_span_is_a_no_op() -> None:
    assert inject_traceparent({"a": "b"}) == {"a": "b"}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_collect_command_receives_into_the_store(workspace: Path) -> None:
    exe = str(Path(sys.executable).with_name("evalkit"))
    db = workspace / "collect.duckdb"
    secret = "collect-tok-83b1f0c2a9"
    proc = subprocess.Popen([exe, "collect", "--port", "0", "--store", str(db)], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "EVALKIT_COLLECT_TOKEN": secret})
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1/traces")
        body = json.dumps(_json_request(TRACE, SPAN)).encode()
        assert _post(url, body, "application/json")[0] == 401
        assert _post(url, body, "application/json", auth=f"Bearer {secret}")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    rest = proc.stderr.read()  # not communicate(): it would skip what readline() buffered
    assert secret not in line + rest and "token required" in " ".join((line + rest).split())
    assert "1 spans (1 unattributed)" in " ".join(rest.split())
    with open_store(db, read_only=True) as st:
        assert st.query("SELECT span_id, service_name, reason FROM unattributed_spans") == [
            {"span_id": SPAN, "service_name": "js-agent", "reason": "unknown_trace"}]
