"""Reading one OTLP/HTTP request body within limits: framing, size caps, streaming gunzip, a memory budget.

Every byte read off the wire and every byte decompressed is counted against the request's caps
and reserved from a :class:`MemoryBudget` shared by all requests in flight, so concurrent
requests cannot together grow the receiver past the budget: a request that cannot reserve in time
is answered ``429`` with ``Retry-After`` (OTLP/HTTP's back-pressure contract) instead.
"""

from __future__ import annotations

import io
import re
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

from evalkit.tracing.otlp import OTLPError, TooLarge, UnsupportedMedia

MiB = 1024 * 1024
MAX_SPANS_PER_REQUEST = 10_000  # 20x the OpenTelemetry SDKs' default export batch of 512
ITEM_COST = 160  # bytes reserved per decoded message / JSON value (upb message + Python row share)
_CHUNK = 64 * 1024
_DIGITS = re.compile(rb"[0-9]{1,18}")
_HEXDIGITS = re.compile(rb"[0-9a-fA-F]{1,15}")


@dataclass(frozen=True)
class Limits:
    """What one request, and all requests together, may cost the receiver."""

    max_body: int = 16 * MiB  # bytes read off the wire per request (compressed or not)
    max_decoded: int = 16 * MiB  # bytes after decompression
    max_spans: int = MAX_SPANS_PER_REQUEST
    max_items: int = 250_000  # protobuf messages / JSON values per request
    memory_budget: int = 128 * MiB  # estimated bytes of every request in flight together
    max_connections: int = 64  # concurrent connection handler threads
    idle_timeout: float = 15.0  # seconds a kept-alive connection may wait for its next request
    read_timeout: float = 10.0  # seconds any one read of a request may block
    request_deadline: float = 60.0  # seconds a whole request body may take to arrive
    queue_wait: float = 1.0  # seconds a connection or request waits for a slot or budget
    retry_after: int = 1  # seconds, sent with 429 / 503


class RequestError(Exception):
    """A request refused with ``status``; ``close`` when the connection cannot be reused."""

    def __init__(self, status: int, message: str, *, close: bool = False, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.close, self.retry_after = status, close, retry_after


class MemoryBudget:
    """A byte semaphore shared by the requests in flight."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    def take(self, n: int, deadline: float) -> bool:
        """Reserve ``n`` bytes, waiting until ``deadline`` (monotonic); False if they never came free."""
        n = min(n, self.capacity)
        with self._cond:
            while self.used + n > self.capacity:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            self.used += n
            self.peak = max(self.peak, self.used)
            return True

    def give(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


class Reservation:
    """One request's share of the budget; ``release()`` when the request is done."""

    def __init__(self, budget: MemoryBudget, limits: Limits) -> None:
        self.budget, self.limits = budget, limits
        self.held = 0
        self.deadline = time.monotonic() + limits.queue_wait

    def grow(self, n: int) -> None:
        if n <= 0:
            return
        if not self.budget.take(n, self.deadline):
            raise RequestError(429, "receiver busy: too much data in flight, retry later",
                               retry_after=self.limits.retry_after)
        self.held += min(n, self.budget.capacity)

    def release(self) -> None:
        self.budget.give(self.held)
        self.held = 0


def framing(headers: Any, limits: Limits) -> int | None:
    """The body's Content-Length, or None when chunked; :class:`RequestError` for bad or oversized framing."""
    te = headers.get("Transfer-Encoding")
    cl = headers.get_all("Content-Length") or []
    if te is not None:
        if te.strip().lower() != "chunked" or cl:
            raise RequestError(400, "only Transfer-Encoding: chunked without Content-Length is accepted", close=True)
        return None
    if not cl:
        return 0
    if len(set(cl)) != 1 or not _DIGITS.fullmatch(cl[0].strip().encode("latin-1", "replace")):
        raise RequestError(400, "invalid Content-Length", close=True)
    n = int(cl[0])
    if n > limits.max_body:
        raise RequestError(413, f"request body over {limits.max_body} bytes", close=True)
    return n


class BodyReader:
    """Reads a request body in pieces, enforcing the caps on bytes actually read."""

    def __init__(self, rfile: io.BufferedIOBase, length: int | None, limits: Limits) -> None:
        self.rfile, self.length, self.limits = rfile, length, limits
        self.read = 0
        self.done = length == 0
        self.deadline = time.monotonic() + limits.request_deadline
        self._left = length or 0  # of the current chunk (chunked) or of the body

    def _need(self, n: int) -> bytes:
        if time.monotonic() > self.deadline:
            raise RequestError(408, "request body too slow", close=True)
        data = self.rfile.read(n)
        if len(data) < n:
            raise RequestError(400, "request body ended early", close=True)
        return data

    def _line(self) -> bytes:
        line = self.rfile.readline(1024)
        if not line.endswith(b"\n"):
            raise RequestError(400, "bad chunk framing", close=True)
        return line

    def _next_chunk(self) -> None:
        if self.read and self._line().strip():  # the CRLF after the previous chunk's data
            raise RequestError(400, "bad chunk framing", close=True)
        size = self._line().split(b";", 1)[0].strip()
        if not _HEXDIGITS.fullmatch(size):
            raise RequestError(400, "invalid chunk size", close=True)
        self._left = int(size, 16)
        if self._left == 0:
            for _ in range(64):  # trailers, up to the blank line
                if not self._line().strip():
                    self.done = True
                    return
            raise RequestError(400, "too many trailer lines", close=True)

    def piece(self) -> bytes:
        """The next piece of the body (b"" at the end)."""
        if self.done:
            return b""
        if self.length is None and self._left == 0:
            self._next_chunk()
            if self.done:
                return b""
        n = min(self._left, _CHUNK)
        if self.read + n > self.limits.max_body:
            raise RequestError(413, f"request body over {self.limits.max_body} bytes", close=True)
        data = self._need(n)
        self.read += n
        self._left -= n
        if self.length is not None and self._left == 0:
            self.done = True
        return data

    def discard(self, limit: int) -> bool:
        """Read and drop the rest of the body if at most ``limit`` bytes; True when the connection can be reused."""
        try:
            while not self.done:
                if self.read > limit:
                    return False
                self.piece()
        except (RequestError, OSError):
            return False
        return True


def _decompressor(encoding: str) -> Any:
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return None
    if enc in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if enc == "deflate":
        return zlib.decompressobj()
    raise UnsupportedMedia(f"unsupported Content-Encoding {encoding!r} (use gzip)")


def read_body(reader: BodyReader, encoding: str, reservation: Reservation) -> bytearray:
    """The decoded body: read, decompressed as it streams, each piece reserved from the budget first."""
    d = _decompressor(encoding)
    cap = reservation.limits.max_decoded
    out = bytearray()
    while True:
        data = reader.piece()
        if not data:
            break
        if d is None:
            reservation.grow(len(data))
            out += data
            if len(out) > cap:
                raise TooLarge(f"body over {cap} bytes")
            continue
        while data:
            room = cap - len(out) + 1
            try:
                piece = d.decompress(data, min(room, _CHUNK * 4))
            except zlib.error as exc:
                raise OTLPError(f"body is not valid {encoding.strip().lower()}: {exc}") from None
            reservation.grow(len(piece))
            out += piece
            if len(out) > cap:
                raise TooLarge(f"decompressed body over {cap} bytes")
            data = d.unconsumed_tail
    if d is not None and not d.eof:
        raise OTLPError(f"body is not valid {encoding.strip().lower()}: truncated")
    return out
