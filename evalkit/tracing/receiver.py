"""An OTLP/HTTP trace receiver writing into the workspace store (``POST /v1/traces``).

Agents in other processes or languages export with the stock OTLP/HTTP exporter (protobuf or
JSON, optionally gzip) to ``http://127.0.0.1:4318/v1/traces``. Each request becomes one insert.

DuckDB allows one writer process per file, so the receiver runs inside the process that owns
the store: either in the run itself (:func:`start_receiver` on the run's store, a background
thread) or as ``evalkit collect`` when no run is active. Spans of an active case get its run and
case ids; others get them from ``case_results`` by trace id when the case is already stored.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from evalkit.tracing import state
from evalkit.tracing.columns import SpanColumns
from evalkit.tracing.otlp import OTLPError, decode
from evalkit.tracing.redact import Redactor

if TYPE_CHECKING:
    from evalkit.store.db import Store

_log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024 * 1024
PATH = "/v1/traces"


class SpanIngest:
    """Decoded OTLP spans → one Arrow insert, with run and case ids filled in where known."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.redactor = Redactor()
        self.received = 0

    def _owners(self, trace_ids: set[str]) -> dict[str, tuple[str | None, str | None]]:
        owners: dict[str, tuple[str | None, str | None]] = {}
        missing = []
        for t in trace_ids:
            route = state.ROUTES.get(int(t, 16))
            if route is not None:
                owners[t] = (route.run_id, route.case_id)
            else:
                missing.append(t)
        if missing:
            rows = self.store.query(
                "SELECT trace_id, run_id, case_id FROM case_results WHERE list_contains(?, trace_id)", [missing]
            )
            for r in rows:
                owners[r["trace_id"]] = (r["run_id"], r["case_id"])
        return owners

    def ingest(self, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        owners = self._owners({r["trace_id"] for r in rows})
        cols = SpanColumns(self.redactor)
        for r in rows:
            run_id, case_id = owners.get(r["trace_id"], (None, None))
            r["run_id"], r["case_id"] = run_id, case_id
            r["resource"] = self.redactor.text(r["resource"]) if r.get("resource") else None
            cols.add_plain(r)
        self.store.insert_arrow("spans", cols.to_arrow())
        self.received += len(rows)
        return len(rows)


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks, total = [], 0
        while True:
            size = int(h.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                h.rfile.readline()
                break
            total += size
            if total > MAX_BODY:
                raise OTLPError("request body too large")
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
        return b"".join(chunks)
    n = int(h.headers.get("Content-Length") or 0)
    if n > MAX_BODY:
        raise OTLPError("request body too large")
    return h.rfile.read(n) if n else b""


def _decompress(body: bytes, encoding: str) -> bytes:
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return body
    try:
        if enc == "gzip":
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            d = zlib.decompressobj()
        else:
            raise OTLPError(f"unsupported Content-Encoding {encoding!r} (use gzip)")
        out = d.decompress(body, 4 * MAX_BODY)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise OTLPError(f"body is not valid {enc}: {exc}") from None
    if d.unconsumed_tail:
        raise OTLPError("decompressed body too large")
    return out


def _handler(ingest: SpanIngest) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "evalkit-otlp"

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("otlp: " + format, *args)

        def _reply(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, code: int, message: str, as_json: bool) -> None:
            if as_json:
                self._reply(code, json.dumps({"code": 3, "message": message}).encode(), "application/json")
            else:
                self._reply(code, message.encode(), "text/plain; charset=utf-8")

        def do_POST(self) -> None:
            ctype = self.headers.get("Content-Type", "application/x-protobuf")
            as_json = ctype.split(";", 1)[0].strip().lower() == "application/json"
            if self.path.split("?", 1)[0] != PATH:
                self._read_and_discard()
                self._error(404, f"not found: POST spans to {PATH}", as_json)
                return
            try:
                body = _decompress(_read_body(self), self.headers.get("Content-Encoding", ""))
                rows = decode(body, ctype)
            except OTLPError as exc:
                code = 415 if "content type" in str(exc) or "Content-Encoding" in str(exc) else 400
                self._error(code, str(exc), as_json)
                return
            try:
                ingest.ingest(rows)
            except Exception as exc:
                _log.warning("evalkit collect: spans not stored: %s", exc)
                self._error(503, f"spans not stored: {exc}", as_json)
                return
            if as_json:
                self._reply(200, b"{}", "application/json")
            else:
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                    ExportTraceServiceResponse,
                )

                self._reply(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

        def _read_and_discard(self) -> None:
            try:
                _read_body(self)
            except (OTLPError, ValueError):
                self.close_connection = True

        def do_GET(self) -> None:
            self._error(405, f"POST OTLP spans to {PATH}", False)

    return Handler


class Receiver:
    """A running receiver; ``close()`` stops it."""

    def __init__(self, server: ThreadingHTTPServer, ingest: SpanIngest) -> None:
        self.server = server
        self.ingest = ingest
        addr = server.server_address
        self.host = addr[0].decode() if isinstance(addr[0], bytes) else str(addr[0])
        self.port = int(addr[1])
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="evalkit-otlp-receiver", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The traces endpoint, e.g. ``http://127.0.0.1:4318/v1/traces``."""
        return f"http://{self.host}:{self.port}{PATH}"

    @property
    def received(self) -> int:
        return self.ingest.received

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_receiver(store: Store, host: str = "127.0.0.1", port: int = 4318) -> Receiver:
    """Serve ``POST /v1/traces`` on ``host:port`` (0 picks a free port) from a background thread."""
    ingest = SpanIngest(store)
    server = ThreadingHTTPServer((host, port), _handler(ingest))
    server.daemon_threads = True
    return Receiver(server, ingest)
