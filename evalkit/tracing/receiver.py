"""An OTLP/HTTP trace receiver writing into the workspace store (``POST /v1/traces``).

Agents in other processes or languages export with the stock OTLP/HTTP exporter (protobuf or
JSON, optionally gzip) to ``http://127.0.0.1:4318/v1/traces``. Each request becomes one insert.

DuckDB allows one writer process per file, so the receiver runs inside the process that owns
the store: either in the run itself (:func:`start_receiver` on the run's store, a background
thread) or as ``evalkit collect`` when no run is active. Spans of a case that is running in this
process get its run and case ids in ``spans``; every other span (a finished case's trace, a trace
no run started) goes to ``unattributed_spans`` with a ``reason``, so it can never change a case.

Requests are bounded (:class:`~evalkit.tracing.intake.Limits`): body and decoded sizes, spans and
messages per request, a memory budget shared by the requests in flight, socket timeouts and a cap
on connection threads. Over a per-request limit the answer is 413; when the receiver is busy it is
429 or 503 with ``Retry-After``. With a token every request needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from evalkit.errors import UserError
from evalkit.redact import Redactor
from evalkit.tracing import state
from evalkit.tracing.columns import SpanColumns
from evalkit.tracing.intake import (
    ITEM_COST,
    BodyReader,
    Limits,
    MemoryBudget,
    RequestError,
    Reservation,
    framing,
    read_body,
)
from evalkit.tracing.otlp import OTLPError, body_kind, count_items, decode

if TYPE_CHECKING:
    from evalkit.store.db import Store

_log = logging.getLogger(__name__)
PATH = "/v1/traces"
TOKEN_ENV = "EVALKIT_COLLECT_TOKEN"
UNATTRIBUTED = "unattributed_spans"
_DISCARD_UNAUTHORIZED = 1024 * 1024  # bytes of an unauthorized body read (and dropped) to keep the connection


class SpanIngest:
    """Decoded OTLP spans → ``spans`` (a case running here) or ``unattributed_spans`` (anything else)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.redactor = Redactor()
        self.received = 0
        self.unattributed = 0
        self._lock = threading.Lock()

    def _reasons(self, trace_ids: list[str]) -> dict[str, str]:
        rows = self.store.query(
            "SELECT DISTINCT trace_id FROM case_results WHERE list_contains(?, trace_id)", [trace_ids])
        done = {r["trace_id"] for r in rows}
        return {t: "finished_case" if t in done else "unknown_trace" for t in trace_ids}

    def _columns(self, rows: list[dict[str, Any]]) -> SpanColumns:
        cols = SpanColumns(self.redactor)
        for r in rows:
            cols.add_plain(r)
        return cols

    def ingest(self, rows: list[dict[str, Any]]) -> int:
        """Store ``rows``; the number stored."""
        if not rows:
            return 0
        routes = {t: state.ROUTES.get(int(t, 16)) for t in {r["trace_id"] for r in rows}}
        mine, other = [], []
        for r in rows:
            route = routes[r["trace_id"]]
            if route is not None:
                r["run_id"], r["case_id"] = route.run_id, route.case_id
                mine.append(r)
            else:
                r["run_id"] = r["case_id"] = None
                other.append(r)
        if mine:
            self.store.insert_frame("spans", self._columns(mine).to_frame())
        if other:
            import polars as pl

            why = self._reasons(sorted({r["trace_id"] for r in other}))
            frame = self._columns(other).to_frame().with_columns(
                pl.Series("reason", [why[r["trace_id"]] for r in other], pl.String),
                pl.lit(datetime.now(UTC), pl.Datetime("us", "UTC")).alias("received_at"),
            )
            self.store.insert_frame(UNATTRIBUTED, frame)
        with self._lock:
            self.received += len(rows)
            self.unattributed += len(other)
        return len(rows)


def _handler(ingest: SpanIngest, limits: Limits, budget: MemoryBudget, token: bytes | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "evalkit-otlp"
        timeout = limits.idle_timeout
        server: _Server

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("otlp: " + format, *args)

        def handle_one_request(self) -> None:
            self.connection.settimeout(limits.idle_timeout)
            super().handle_one_request()

        def _reply(self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, exc: RequestError, reader: BodyReader | None, as_json: bool) -> None:
            if exc.close or reader is None:
                self.close_connection = True
            else:
                limit = _DISCARD_UNAUTHORIZED if exc.status == 401 else limits.max_body
                if not reader.discard(limit):
                    self.close_connection = True
            extra = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
            if exc.status == 401:
                extra["WWW-Authenticate"] = 'Bearer realm="evalkit"'
            message = str(exc)
            if as_json:
                self._reply(exc.status, json.dumps({"code": 3, "message": message}).encode(), "application/json", extra)
            else:
                self._reply(exc.status, message.encode(), "text/plain; charset=utf-8", extra)
            if self.close_connection:
                self._linger()

        def _linger(self) -> None:
            """Half-close, then drop what the client still sends (bounded), so it reads the answer, not a reset."""
            deadline = time.monotonic() + 2.0
            left = limits.max_body
            with contextlib.suppress(OSError, ValueError):
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(0.5)
                while left > 0 and time.monotonic() < deadline:
                    data = self.connection.recv(65536)
                    if not data:
                        break
                    left -= len(data)

        def _authorize(self) -> None:
            if token is None:
                return
            scheme, _, cred = (self.headers.get("Authorization") or "").strip().partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(cred.strip().encode("latin-1", "replace"), token):
                raise RequestError(401, "missing or wrong bearer token")

        def do_POST(self) -> None:
            self.connection.settimeout(limits.read_timeout)
            ctype = self.headers.get("Content-Type", "application/x-protobuf")
            as_json = ctype.split(";", 1)[0].strip().lower() == "application/json"
            reservation = Reservation(budget, limits)
            reader: BodyReader | None = None
            self.server.request_started()
            try:
                reader = BodyReader(self.rfile, framing(self.headers, limits), limits)
                self._authorize()
                if self.path.split("?", 1)[0] != PATH:
                    raise RequestError(404, f"not found: POST spans to {PATH}")
                body_kind(ctype)
                body = read_body(reader, self.headers.get("Content-Encoding", ""), reservation)
                reservation.grow(count_items(body, ctype, limits.max_items) * ITEM_COST)
                rows = decode(body, ctype, limits.max_spans)
                del body
                ingest.ingest(rows)
            except RequestError as exc:
                self._refuse(exc, reader, as_json)
            except OTLPError as exc:
                self._refuse(RequestError(exc.status, str(exc)), reader, as_json)
            except OSError as exc:  # the client went away or timed out mid-body
                _log.debug("otlp: connection lost: %s", exc)
                self.close_connection = True
            except Exception as exc:
                _log.warning("evalkit collect: spans not stored: %s", exc)
                self._refuse(RequestError(503, f"spans not stored: {exc}", retry_after=limits.retry_after), reader,
                             as_json)
            else:
                reservation.release()  # before the reply: a client that saw 200 sees the memory free
                self._ok(as_json)
            finally:
                reservation.release()
                self.server.request_ended()

        def _ok(self, as_json: bool) -> None:
            if as_json:
                self._reply(200, b"{}", "application/json")
                return
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

            self._reply(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

        def do_GET(self) -> None:
            self.connection.settimeout(limits.read_timeout)
            reader: BodyReader | None = None
            try:
                reader = BodyReader(self.rfile, framing(self.headers, limits), limits)
                self._authorize()
                raise RequestError(405, f"POST OTLP spans to {PATH}")
            except RequestError as exc:
                self._refuse(exc, reader, False)

    return Handler


_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nRetry-After: %d\r\n" \
        b"Connection: close\r\n\r\n%s"


class _Server(ThreadingHTTPServer):
    """A threading HTTP server with at most ``max_connections`` handler threads; beyond, a short wait, then 503."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], limits: Limits) -> None:
        self.limits = limits
        self.refused = 0
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self._busy = 0
        self._cond = threading.Condition()
        self._open: set[socket.socket] = set()
        super().__init__(addr, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(timeout=self.limits.queue_wait):
            self.refused += 1
            self._turn_away(request)
            return
        with self._cond:
            self._open.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done(request)

    def _done(self, request: Any) -> None:
        with self._cond:
            self._open.discard(request)
        self._slots.release()

    def _turn_away(self, sock: socket.socket) -> None:
        """503 + Retry-After on a connection no thread can take; read what the client sent so close does not reset."""
        msg = b"receiver busy: too many connections, retry later"
        try:
            sock.settimeout(0.25)
            sock.sendall(_BUSY % (len(msg), self.limits.retry_after, msg))
            sock.shutdown(socket.SHUT_WR)
            for _ in range(4):
                if not sock.recv(65536):
                    break
        except OSError:
            pass
        finally:
            sock.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("otlp: error on a connection from %s", client_address, exc_info=True)

    def request_started(self) -> None:
        with self._cond:
            self._busy += 1

    def request_ended(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout``) for requests in flight, then cut idle connections."""
        with self._cond:
            self._cond.wait_for(lambda: self._busy == 0, timeout)
            for s in list(self._open):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


class Receiver:
    """A running receiver; ``close()`` stops it."""

    def __init__(self, server: _Server, ingest: SpanIngest, budget: MemoryBudget, token: bool) -> None:
        self.server = server
        self.ingest = ingest
        self.budget = budget
        self.token_required = token
        addr = server.server_address
        self.host = addr[0].decode() if isinstance(addr[0], bytes) else str(addr[0])
        self.port = int(addr[1])
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="evalkit-otlp-receiver", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The traces endpoint, e.g. ``http://127.0.0.1:4318/v1/traces``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{PATH}"

    @property
    def received(self) -> int:
        return self.ingest.received

    def close(self) -> None:
        self.server.shutdown()
        self.server.drain(timeout=10.0)
        self.server.server_close()
        self._thread.join()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_loopback(host: str) -> bool:
    """True when ``host`` names only loopback addresses (``127.0.0.1``, ``::1``, ``localhost``)."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).split("%", 1)[0]).is_loopback for i in infos)


def check_bind(host: str, token: str | None, insecure: bool) -> str | None:
    """The token to require (``token`` or ``$EVALKIT_COLLECT_TOKEN``); refuses a non-loopback host without one."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None and not insecure and not is_loopback(host):
        raise UserError(f"refusing to receive spans on non-loopback {host or 'all interfaces'} without a token: "
                        f"set {TOKEN_ENV} (or --token), or pass --insecure")
    return token


def start_receiver(store: Store, host: str = "127.0.0.1", port: int = 4318, *, token: str | None = None,
                   insecure: bool = False, limits: Limits | None = None) -> Receiver:
    """Serve ``POST /v1/traces`` on ``host:port`` (0 picks a free port) from a background thread.

    ``token`` (default: ``$EVALKIT_COLLECT_TOKEN``) makes every request need ``Authorization: Bearer
    <token>``. A non-loopback ``host`` needs a token unless ``insecure``.
    """
    token = check_bind(host, token, insecure)
    limits = limits or Limits()
    ingest = SpanIngest(store)
    budget = MemoryBudget(limits.memory_budget)
    secret = token.encode() if token is not None else None
    server = _Server((host, port), _handler(ingest, limits, budget, secret), limits)
    return Receiver(server, ingest, budget, secret is not None)
