"""A real HTTP server on loopback speaking OpenAI's ``POST /v1/chat/completions``, scriptable per request.

    server = FakeOpenAIServer().start()
    server.script(Reply.rate_limit(retry_after=0.05), Reply.ok("hello"))   # next requests, in order
    server.responder = lambda req: Reply.ok(f"echo {req.last_user}")      # afterwards / by default
    ... litellm call with model="openai/gpt-4o-mini", api_base=server.url + "/v1", api_key="sk-test"
    server.requests  # every request: path, headers, body
    server.stop()

Run standalone (for benchmarks in another process): ``python tests/fakes/openai_server.py --latency-ms 0``
prints ``URL http://127.0.0.1:PORT`` and serves until killed. ``--fast`` serves the same answers from one
asyncio loop (keep-alive HTTP/1.1, no thread per connection): several thousand requests a second, so
a benchmark measures the client, not this server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    """One request as received."""

    path: str
    headers: dict[str, str]
    body: Any

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def last_user(self) -> str:
        users = [m for m in self.messages if m.get("role") == "user"]
        content = users[-1].get("content", "") if users else ""
        return content if isinstance(content, str) else json.dumps(content)

    @property
    def prompt(self) -> str:
        """All message contents joined (for asserting exact prompts)."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


@dataclass
class Reply:
    """How to answer one request. ``kind``: ok | status | hang | drop | malformed."""

    kind: str = "ok"
    content: str = "ok"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    latency_ms: float = 0.0
    hang_s: float = 30.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @classmethod
    def ok(cls, content: str, latency_ms: float = 0.0) -> Reply:
        return cls(kind="ok", content=content, latency_ms=latency_ms)

    @classmethod
    def rate_limit(cls, retry_after: float | None = None) -> Reply:
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return cls(kind="status", status=429, headers=headers, content="Rate limit reached")

    @classmethod
    def error(cls, status: int = 500, message: str = "internal error") -> Reply:
        return cls(kind="status", status=status, content=message)

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Reply:
        return cls(kind="hang", hang_s=seconds)

    @classmethod
    def drop(cls) -> Reply:
        """Send headers and part of the body, then close the connection."""
        return cls(kind="drop")

    @classmethod
    def malformed(cls) -> Reply:
        """HTTP 200 with a body that is not JSON."""
        return cls(kind="malformed")


Responder = Callable[[Request], "Reply | str"]


def _words(text: str) -> int:
    return max(1, len(text.split()))


class FakeOpenAIServer:
    """A threaded loopback server; thread-safe scripting and request recording."""

    def __init__(self, latency_ms: float = 0.0, record: bool = True) -> None:
        self.latency_ms = latency_ms
        self.record = record
        self.requests: list[Request] = []
        self.responder: Responder = lambda req: Reply.ok(f"echo: {req.last_user}")
        self._queue: deque[Reply | str] = deque()
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting -------------------------------------------------------
    def script(self, *replies: Reply | str) -> FakeOpenAIServer:
        """Answer the next requests with these replies, in order, then fall back to ``responder``."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def reset(self) -> None:
        """Forget recorded requests, scripted replies and the custom responder."""
        with self._lock:
            self.requests.clear()
            self._queue.clear()
        self.responder = lambda req: Reply.ok(f"echo: {req.last_user}")

    @property
    def count(self) -> int:
        return len(self.requests)

    def _next(self, req: Request) -> Reply:
        with self._lock:
            if self.record:
                self.requests.append(req)
            item = self._queue.popleft() if self._queue else None
        if item is None:
            item = self.responder(req)
        return Reply.ok(item) if isinstance(item, str) else item

    # -- lifecycle -------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, port: int = 0) -> FakeOpenAIServer:
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = _Server(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop_event.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the listen() backlog: a class attribute, read when the socket starts listening


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeOpenAIServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw or b"{}")
        except ValueError:
            body = raw.decode("utf-8", "replace")
        req = Request(path=self.path, headers={k.lower(): v for k, v in self.headers.items()}, body=body)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        try:
            reply = self.fake._next(req)
        except Exception as exc:  # a failing responder is a 500, not a dead server
            reply = Reply.error(500, f"responder failed: {exc}")
        delay = (reply.latency_ms or self.fake.latency_ms) / 1000
        if delay:
            time.sleep(delay)
        if reply.kind == "hang":
            self.fake._stop_event.wait(reply.hang_s)
            self.close_connection = True
            return
        if reply.kind == "drop":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "500")
            self.end_headers()
            self.wfile.write(b'{"id": "chatcmpl-drop", "choices": [{"mess')
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.kind == "malformed":
            data = b"<html>this is not json"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if reply.kind == "status":
            err_type = "rate_limit_error" if reply.status == 429 else "server_error"
            self._json(reply.status, {"error": {"message": reply.content, "type": err_type, "code": None}}, reply.headers)
            return
        model = body.get("model", "fake-model") if isinstance(body, dict) else "fake-model"
        prompt_tokens = reply.prompt_tokens or sum(_words(str(m.get("content", ""))) for m in req.messages)
        completion_tokens = reply.completion_tokens or _words(reply.content)
        self._json(
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            reply.headers,
        )

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def completion(model: str, content: str, prompt_tokens: int) -> bytes:
    """A chat-completions response body."""
    return json.dumps({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": _words(content),
                  "total_tokens": prompt_tokens + _words(content)},
    }).encode()


async def serve_fast(port: int, latency_ms: float, content: str | None) -> None:
    """Answer every ``POST .../chat/completions`` from one event loop until cancelled."""
    import asyncio

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = json.loads(await reader.readexactly(length)) if length else {}
                if latency_ms:
                    await asyncio.sleep(latency_ms / 1000)
                msgs = body.get("messages") or [{}]
                text = content if content is not None else str(msgs[-1].get("content", ""))
                data = completion(body.get("model", "fake-model"), text,
                                  sum(_words(str(m.get("content", ""))) for m in msgs))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(data)).encode() + b"\r\n\r\n" + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(f"URL http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--content", default=None, help="fixed answer (default: echo the last user message)")
    ap.add_argument("--fast", action="store_true", help="one asyncio loop instead of a thread per connection")
    args = ap.parse_args()
    if args.fast:
        import asyncio

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_fast(args.port, args.latency_ms, args.content))
        return
    server = FakeOpenAIServer(latency_ms=args.latency_ms, record=False)
    if args.content is not None:
        fixed = args.content
        server.responder = lambda req: Reply.ok(fixed)
    server.start(args.port)
    print(f"URL {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
