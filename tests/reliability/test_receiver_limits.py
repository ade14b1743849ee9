"""The OTLP receiver under a client flood and a span bomb, run in a child process to measure its peak RSS.

Every test is bounded: a fixed number of clients and requests on loopback, and the child stops
when its stdin closes. Figures (requests, spans and bytes accepted/refused, peak RSS) go to the
reliability summary; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalkit.store.db import open_store
from tests.conftest import REPO

pytestmark = pytest.mark.reliability

CHILD = """
import json, sys
from evalkit.store.db import open_store
from evalkit.tracing.intake import Limits
from evalkit.tracing.receiver import start_receiver

def rss(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith(field))

import polars  # noqa: F401  (what the first insert imports: RSS growth below is the traffic's)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: F401

store = open_store(sys.argv[1])
rx = start_receiver(store, port=0, limits=Limits(**json.loads(sys.argv[2])))
print(json.dumps({"port": rx.port, "rss_start_mb": rss("VmRSS:")}), flush=True)
for _ in sys.stdin:  # a line asks for the peak RSS so far; end of input stops the receiver
    print(json.dumps({"rss_peak_mb": rss("VmHWM:")}), flush=True)
rx.close()
out = {"received": rx.received, "refused_connections": rx.server.refused, "budget_peak": rx.budget.peak,
       "rss_peak_mb": rss("VmHWM:")}
store.close()
print(json.dumps(out), flush=True)
"""


class Child:
    """A receiver in its own process (its peak RSS is the receiver's)."""

    def __init__(self, db: Path, limits: dict[str, Any]) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db), json.dumps(limits)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        self.start = json.loads(self.proc.stdout.readline())
        self.port = int(self.start["port"])

    def peak_rss(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("rss\n")
        self.proc.stdin.flush()
        return int(json.loads(self.proc.stdout.readline())["rss_peak_mb"])

    def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        line = self.proc.stdout.readline()
        self.proc.wait(timeout=60)
        return {**self.start, **json.loads(line)}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def child(workspace: Path) -> Iterator[Any]:
    made: list[Child] = []

    def start(limits: dict[str, Any]) -> Child:
        made.append(Child(workspace / "rx.duckdb", limits))
        return made[-1]

    yield start
    for c in made:
        c.kill()


def _protobuf(spans: list[tuple[bytes, bytes]]) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    scope = req.resource_spans.add().scope_spans.add()
    for trace_id, span_id in spans:
        sp = scope.spans.add()
        sp.trace_id, sp.span_id, sp.name = trace_id, span_id, "chat gpt-4o"
        sp.start_time_unix_nano, sp.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_000_001_000_000
        kv = sp.attributes.add()
        kv.key, kv.value.string_value = "gen_ai.operation.name", "chat"
    return req.SerializeToString()


def _stored(db: Path) -> int:
    with open_store(db, read_only=True) as st:
        return int(st.query("SELECT (SELECT count(*) FROM spans) + (SELECT count(*) FROM unattributed_spans) AS n")[0]["n"])


CLIENTS, REQUESTS, SPANS = 100, 3, 20


def test_flood_of_clients_backs_off_and_loses_nothing(child: Any, workspace: Path, figures: dict[str, Any]) -> None:
    # a small memory budget and few connection threads, so that a flood must be pushed back
    rx = child({"max_connections": 24, "memory_budget": 64 * 1024, "queue_wait": 0.05, "idle_timeout": 5.0})
    codes: Counter[int] = Counter()
    tally: Counter[str] = Counter()  # spans/bytes accepted and refused, tries, drops, refusals without Retry-After
    lock = threading.Lock()

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=30)
        for r in range(REQUESTS):
            body = _protobuf([(bytes([1 + n % 250]) * 16, (n * 1000 + r * SPANS + i + 1).to_bytes(8, "big"))
                              for i in range(SPANS)])
            for _ in range(500):  # retry what the receiver pushes back, as an OTLP exporter does
                try:
                    conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
                    resp = conn.getresponse()
                    resp.read()
                except (OSError, http.client.HTTPException):
                    with lock:
                        tally["tries"] += 1
                        tally["dropped"] += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=30)
                    continue
                ok = resp.status == 200
                with lock:
                    codes[resp.status] += 1
                    tally["tries"] += 1
                    tally["spans ok" if ok else "spans refused"] += SPANS
                    tally["bytes ok" if ok else "bytes refused"] += len(body)
                    tally["no retry-after"] += not ok and not resp.getheader("Retry-After")
                if ok or resp.status not in (429, 503):
                    break
                if resp.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=30)
                time.sleep(0.01 * (1 + n % 5))  # Retry-After says 1 s; a short pause keeps the test quick
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    out = rx.stop()
    stored = _stored(workspace / "rx.duckdb")
    figures.update({"requests tried": tally["tries"], "answered 200": codes[200], "429": codes[429], "503": codes[503],
                    "dropped connections": tally["dropped"], "spans accepted": tally["spans ok"], "spans stored": stored,
                    "spans refused (retried)": tally["spans refused"], "bytes accepted": tally["bytes ok"],
                    "bytes refused": tally["bytes refused"], "refused connections": out["refused_connections"],
                    "budget peak bytes": out["budget_peak"], "rss start MB": out["rss_start_mb"],
                    "peak RSS MB": out["rss_peak_mb"]})
    assert set(codes) <= {200, 429, 503} and tally["no retry-after"] == 0  # pushed back with Retry-After ...
    assert tally["dropped"] == 0  # ... never cut off
    assert stored == tally["spans ok"] == out["received"] == CLIENTS * REQUESTS * SPANS  # no span answered 200 is lost
    assert codes[429] + codes[503] > 0
    assert out["budget_peak"] <= 64 * 1024
    assert out["rss_peak_mb"] < out["rss_start_mb"] + 300


def _span_bomb(n: int) -> bytes:
    """An OTLP protobuf request of ``n`` minimal spans, written on the wire directly (fast to build)."""
    def ld(field: int, data: bytes) -> bytes:
        size, out = len(data), bytearray()
        while True:
            b, size = size & 0x7F, size >> 7
            out.append(b | 0x80 if size else b)
            if not size:
                break
        return bytes([field << 3 | 2]) + bytes(out) + data

    trace = b"\x0a\x10" + bytes(range(1, 17))
    spans = b"".join(ld(2, trace + b"\x12\x08" + (i + 1).to_bytes(8, "big") + b"\x2a\x01s") for i in range(n))
    return ld(1, ld(2, spans))


def test_span_bomb_is_refused_without_growing(child: Any, workspace: Path, figures: dict[str, Any]) -> None:
    rx = child({})  # the defaults `evalkit collect` runs with
    bomb = gzip.compress(_span_bomb(400_000))
    zeros = gzip.compress(bytes(64 * 1024 * 1024), 1)  # a 64 MiB decompression bomb (the cap is 16 MiB)
    ok = gzip.compress(_span_bomb(5_000))
    results, bombs_peak = {}, 0
    for name, body in (("span bomb", bomb), ("zero bomb", zeros), ("5000 spans", ok)):
        if name == "5000 spans":
            bombs_peak = rx.peak_rss()  # before the first insert (DuckDB's own working memory comes with it)
        conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=60)
        conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
        resp = conn.getresponse()
        results[name] = (resp.status, resp.read())
        conn.close()
    out = rx.stop()
    stored = _stored(workspace / "rx.duckdb")
    figures.update({"bytes refused": len(bomb) + len(zeros), "bytes accepted": len(ok),
                    "span bomb gzip bytes": len(bomb), "span bomb status": results["span bomb"][0],
                    "spans refused": 400_000, "zero bomb gzip bytes": len(zeros),
                    "zero bomb status": results["zero bomb"][0], "spans accepted": stored,
                    "rss start MB": out["rss_start_mb"], "peak RSS after the bombs MB": bombs_peak,
                    "peak RSS after 5000 spans stored MB": out["rss_peak_mb"]})
    assert results["span bomb"][0] == 413 and b"send smaller batches" in results["span bomb"][1]
    assert results["zero bomb"][0] == 413
    assert results["5000 spans"][0] == 200 and stored == out["received"] == 5_000
    assert bombs_peak < out["rss_start_mb"] + 64  # before: 1.15 GB for the span bomb
    assert out["rss_peak_mb"] < out["rss_start_mb"] + 200
