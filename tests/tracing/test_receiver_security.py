"""The OTLP receiver's limits and security: framing, caps, back-pressure, timeouts, the token, attribution."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import evalkit
from evalkit.errors import UserError
from evalkit.schema import Case
from evalkit.store.db import Store, open_store
from evalkit.tracing.intake import Limits
from evalkit.tracing.queries import case_traces
from evalkit.tracing.receiver import Receiver, check_bind, is_loopback, start_receiver
from tests.conftest import evalkit_cli

TRACE = "5b8efff798038103d269b633813fc60c"


def _spans(n: int, trace: str = TRACE, status: int = 0) -> bytes:
    spans = [{"traceId": trace, "spanId": f"{i + 1:016x}", "name": f"s{i}", "startTimeUnixNano": "1",
              "endTimeUnixNano": "2", "status": {"code": status}} for i in range(n)]
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()


def _request(port: int, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes, bool]:
    """Send raw bytes; (status, headers, body, whether the server then closed the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + head
                     + b"\r\n\r\n" + body)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        data = resp.read()
        if resp.status == 200:  # kept alive: the server would close only after its idle timeout
            return resp.status, dict(resp.getheaders()), data, False
        try:
            closed = sock.recv(1) == b""
        except OSError:
            closed = True
        return resp.status, dict(resp.getheaders()), data, closed


def _post(rx: Receiver, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(rx.host, rx.port, timeout=20)
    try:
        conn.request("POST", "/v1/traces", body, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


@pytest.fixture
def store(workspace: Path) -> Iterator[Store]:
    st = open_store(workspace / "rx.duckdb")
    yield st
    st.close()


def test_bad_or_oversized_framing_is_refused_and_closed(store: Store) -> None:
    with start_receiver(store, port=0, limits=Limits(max_body=64 * 1024)) as rx:
        body = _spans(1)
        # before: Content-Length -1 read until the client closed, past any cap
        for head in (b"Content-Length: -1", b"Content-Length: 12abc", b"Content-Length: +5",
                     b"Content-Length: 5\r\nContent-Length: 6", b"Transfer-Encoding: gzip"):
            status, _, _, closed = _request(rx.port, head, body)
            assert (status, closed) == (400, True), head
        for size in (b"-10", b"zz", b"0x10"):
            status, _, _, closed = _request(rx.port, b"Transfer-Encoding: chunked", size + b"\r\n" + body + b"\r\n0\r\n\r\n")
            assert (status, closed) == (400, True), size
        assert _request(rx.port, b"Content-Length: 70000")[0] == 413  # refused before a byte of body is read
        # the cap counts the bytes actually read: chunks adding up to more than it are refused
        chunk = b"a000\r\n" + b" " * 0xA000 + b"\r\n"
        status, _, _, closed = _request(rx.port, b"Transfer-Encoding: chunked", chunk * 3 + b"0\r\n\r\n")
        assert (status, closed) == (413, True)
        ok = f"{len(body):x}".encode() + b"\r\n" + body + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
        assert _request(rx.port, b"Transfer-Encoding: chunked", ok)[0] == 200
        assert rx.received == 1


def test_spans_items_and_decoded_bytes_are_capped(store: Store) -> None:
    limits = Limits(max_spans=50, max_items=5_000, max_decoded=256 * 1024)
    with start_receiver(store, port=0, limits=limits) as rx:
        assert _post(rx, _spans(51))[0] == 413
        assert _post(rx, _spans(50))[0] == 200
        bomb = gzip.compress(b" " * (8 * 1024 * 1024))  # 8 KiB on the wire, 8 MiB decoded
        status, _, text = _post(rx, bomb, {"Content-Encoding": "gzip"})
        assert status == 413 and b"decompressed" in text
        many: dict[str, Any] = {"resourceSpans": [{} for _ in range(6_000)]}  # many tiny objects, no spans at all
        assert _post(rx, json.dumps(many).encode())[0] == 413

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        req = ExportTraceServiceRequest()
        sp = req.resource_spans.add().scope_spans.add().spans.add()
        sp.trace_id, sp.span_id = bytes.fromhex(TRACE), b"\x01" * 8
        for i in range(3_000):  # 6000 messages (KeyValue + AnyValue) in one span
            kv = sp.attributes.add()
            kv.key, kv.value.int_value = f"k{i}", i
        assert _post(rx, req.SerializeToString(), {"Content-Type": "application/x-protobuf"})[0] == 413
        assert rx.received == 50


def test_nesting_too_deep_is_a_400(store: Store) -> None:
    with start_receiver(store, port=0) as rx:
        deep = b'{"resourceSpans":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        assert _post(rx, deep)[0] == 400
        value: dict[str, Any] = {"intValue": "1"}
        for _ in range(40):
            value = {"arrayValue": {"values": [value]}}
        body = json.loads(_spans(1))
        body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = [{"key": "deep", "value": value}]
        status, _, text = _post(rx, json.dumps(body).encode())
        assert status == 400 and b"nested" in text
        assert _post(rx, _spans(1))[0] == 200  # the receiver is fine afterwards


def test_busy_receiver_answers_429_with_retry_after(store: Store) -> None:
    with start_receiver(store, port=0, limits=Limits(queue_wait=0.05, retry_after=3)) as rx:
        assert rx.budget.take(rx.budget.capacity, time.monotonic())  # everything in flight
        status, headers, _ = _post(rx, _spans(5))
        assert (status, headers.get("Retry-After")) == (429, "3")
        rx.budget.give(rx.budget.capacity)
        assert _post(rx, _spans(5))[0] == 200
        assert rx.received == 5 and rx.budget.used == 0


def test_idle_connections_time_out_and_connections_are_capped(store: Store) -> None:
    limits = Limits(idle_timeout=1.5, max_connections=2, queue_wait=0.1)
    with start_receiver(store, port=0, limits=limits) as rx:
        idle = [socket.create_connection(("127.0.0.1", rx.port), timeout=30) for _ in range(2)]
        try:
            status, headers, _, closed = _request(rx.port, f"Content-Length: {len(_spans(1))}".encode(), _spans(1))
            assert (status, headers.get("Retry-After"), closed) == (503, "1", True)
            for s in idle:  # the server hangs up on connections that send nothing
                assert s.recv(1) == b""
        finally:
            for s in idle:
                s.close()
        assert _post(rx, _spans(1))[0] == 200
        assert rx.server.refused == 1


def test_bearer_token(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "tok-5f2a9c81e7d34b06"
    with start_receiver(store, port=0, token=secret) as rx:
        for auth in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {secret}"}):
            status, headers, text = _post(rx, _spans(1), auth)
            assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer") and secret.encode() not in text
        assert _post(rx, _spans(1), {"Authorization": f"Bearer {secret}"})[0] == 200
        assert _post(rx, _spans(1), {"Authorization": f"bearer  {secret}"})[0] == 200
    monkeypatch.setenv("EVALKIT_COLLECT_TOKEN", secret)  # what `evalkit run --collect` honours
    with start_receiver(store, port=0) as rx:
        assert rx.token_required and _post(rx, _spans(1))[0] == 401


def test_non_loopback_bind_needs_a_token(store: Store, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALKIT_COLLECT_TOKEN", raising=False)
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("")
    with pytest.raises(UserError, match="--insecure"):
        start_receiver(store, "0.0.0.0", 0)
    assert check_bind("0.0.0.0", None, True) is None and check_bind("0.0.0.0", "t", False) == "t"
    out = evalkit_cli(workspace, "collect", "--host", "0.0.0.0", "--port", "0", "--store", str(workspace / "c.duckdb"),
                      env={"EVALKIT_COLLECT_TOKEN": ""})
    assert out.returncode == 2 and "--insecure" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_spans_for_a_finished_case_never_change_it(store: Store) -> None:
    res = evalkit.evaluate([Case(id="c1", input="hi")], target=lambda q: "ok", scorers=["no_error_spans"],
                           store=store, cache=False, mlflow=False)
    trace_id = store.query("SELECT trace_id FROM case_results WHERE run_id = ?", [res.run_id])[0]["trace_id"]
    before = case_traces(store, res.run_id)
    assert before[0]["failed"] is False
    with start_receiver(store, port=0) as rx:  # e.g. `evalkit collect` after the run, or a late exporter
        assert _post(rx, _spans(3, trace=trace_id, status=2))[0] == 200
        assert rx.ingest.unattributed == 3
    assert case_traces(store, res.run_id) == before
    assert case_traces(store, res.run_id, failed_only=True) == []
    rows = store.query("SELECT reason, run_id, case_id, status_code FROM unattributed_spans WHERE trace_id = ?", [trace_id])
    assert rows == [{"reason": "finished_case", "run_id": None, "case_id": None, "status_code": "ERROR"}] * 3
    assert store.query("SELECT count(*) AS n FROM spans WHERE status_code = 'ERROR'") == [{"n": 0}]


def test_counting_json_values_is_linear_on_hostile_strings() -> None:
    from evalkit.tracing.otlp import TooLarge, count_items

    assert count_items(b'{"a":"x,y:z{[","b":"q\\"z"}', "application/json", 100) == 9  # an upper bound
    assert count_items(b'{"a":"x,y:z{[","b":"q\\"z"}', "application/json", 5) == 5  # exact when it matters
    with pytest.raises(TooLarge):
        count_items(b"[" + b"1," * 100 + b"1]", "application/json", 10)
    # millions of escaped quotes in one unterminated string: stripped in one pass, not n^2
    assert count_items(b'"' + b'\\",' * 2_000_000, "application/json", 10) == 1
    assert count_items(b'"' + b'\\",' * 2_000_000 + b"\\", "application/json", 10) == 1
