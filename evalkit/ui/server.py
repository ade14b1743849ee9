"""``evalkit ui``'s HTTP server: the dashboard shell, its JSON API, and the run and diff reports.

Read-only: every request opens the observability store read-only and reads MLflow; nothing is
written. On loopback it needs no token (the ``Host`` header must name the loopback address, so a
web page elsewhere cannot reach it by DNS rebinding). Beyond loopback it needs a token: a request
carries ``Authorization: Bearer <token>``, or opens ``/?token=<token>`` once, which sets an
HttpOnly, SameSite=Strict cookie and redirects to the page without the token in its address.
Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from evalkit.errors import UserError
from evalkit.ui import views
from evalkit.ui.page import api_csp, report_csp, shell, shell_csp

_log = logging.getLogger("evalkit.ui")
TOKEN_ENV = "EVALKIT_UI_TOKEN"
COOKIE = "evalkit_ui"
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                    "Cache-Control": "no-store", "Cross-Origin-Opener-Policy": "same-origin",
                    "Cross-Origin-Resource-Policy": "same-origin"}


class HttpError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Dashboard:
    """What the server reads: the observability store and the MLflow tracking store."""

    def __init__(self, store: Path | str, tracking: views.Tracking, team: str | None = None) -> None:
        self.store = store
        self.tracking = tracking
        self.team = team

    def api(self, route: str, q: dict[str, str]) -> Any:
        since = _since(q.get("since"))
        if route == "leaderboard":
            return views.leaderboard_view(self.tracking, team=q.get("team") or self.team, suite=q.get("suite"),
                                          branch=q.get("branch"), since=since, pick=q.get("pick") or "latest")
        if route == "trend":
            return views.trend_view(self.tracking, self.store, suite=_need(q, "suite"), metric=q.get("metric"),
                                    branch=q.get("branch"), since=since)
        with views.store_of(self.store) as st:
            if route == "runs":
                return views.runs_view(st, suite=q.get("suite"))
            if route == "cases":
                return views.cases_view(st, _need(q, "run"), failed_only=q.get("failed") == "1")
            if route == "case":
                return views.case_view(st, _need(q, "run"), _need(q, "case"), _int(q.get("repeat") or "0"))
            if route == "judges":
                return views.judges_view(st)
        raise HttpError(404, f"no API '{route}'")

    def report(self, run_id: str) -> str:
        from evalkit.report.html import render_run

        with views.store_of(self.store) as st:
            return render_run(st, run_id)

    def diff(self, base: str, candidate: str) -> str:
        from evalkit.report.html import render_compare

        with views.store_of(self.store) as st:
            return render_compare(st, base, candidate)


def _since(text: str | None) -> Any:
    from evalkit.tracking.leaderboard import parse_since

    return parse_since(text) if text else None


def _need(q: dict[str, str], key: str) -> str:
    if not q.get(key):
        raise HttpError(400, f"missing query parameter '{key}'")
    return q[key]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise HttpError(400, f"not a number: {text[:40]!r}") from None


def _handler(app: Dashboard, token: bytes | None, loopback_hosts: set[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "evalkit-ui"
        timeout = 30

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("ui: " + format, *args)

        def _send(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in {**SECURITY_HEADERS, **(headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, code: int, data: Any) -> None:
            from evalkit.safe_text import displayable, json_dumps

            body = json_dumps(displayable(data), ensure_ascii=False, separators=(",", ":"), default=str).encode()
            self._send(code, body, "application/json; charset=utf-8", {"Content-Security-Policy": api_csp()})

        def _authorized(self, query: dict[str, str]) -> bool | str:
            """True, False, or the query token to turn into a cookie."""
            if token is None:
                return True
            scheme, _, cred = (self.headers.get("Authorization") or "").strip().partition(" ")
            if scheme.lower() == "bearer" and _same(cred.strip(), token):
                return True
            for part in (self.headers.get("Cookie") or "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == COOKIE and _same(value, token):
                    return True
            given = query.get("token")
            return given if given and _same(given, token) else False

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                if loopback_hosts and (self.headers.get("Host") or "").lower() not in loopback_hosts:
                    raise HttpError(421, "this dashboard answers only to its loopback address")
                auth = self._authorized(query)
                if auth is False:
                    raise HttpError(401, "missing or wrong token: open the address printed by `evalkit ui`")
                if isinstance(auth, str):  # ?token=: remember it in a cookie, drop it from the address bar
                    self._send(303, b"", "text/plain", {"Location": url.path or "/", "Set-Cookie":
                               f"{COOKIE}={auth}; HttpOnly; SameSite=Strict; Path=/"})
                    return
                self._route(url.path, query)
            except HttpError as exc:
                self._json(exc.code, {"error": str(exc)})
            except UserError as exc:
                self._json(404 if "no run" in str(exc) or "no case" in str(exc) else 400, {"error": str(exc)})
            except Exception as exc:  # a bug or an unreachable store: one redacted line, the server lives on
                from evalkit.redact import redact

                _log.warning("ui: %s failed: %s", url.path, redact(f"{type(exc).__name__}: {exc}"))
                self._json(500, {"error": redact(f"{type(exc).__name__}: {exc}")[:500]})

        def _route(self, path: str, query: dict[str, str]) -> None:
            parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
            if not parts:
                self._send(200, shell().encode(), "text/html; charset=utf-8", {"Content-Security-Policy": shell_csp()})
            elif parts[0] == "api" and len(parts) == 2:
                self._json(200, app.api(parts[1], query))
            elif parts[0] == "report" and len(parts) == 2:
                self._html(app.report(parts[1]))
            elif parts[0] == "diff" and len(parts) == 3:
                self._html(app.diff(parts[1], parts[2]))
            elif parts == ["healthz"]:
                self._send(200, b"ok\n", "text/plain; charset=utf-8")
            else:
                raise HttpError(404, "not found")

        def _html(self, page: str) -> None:
            self._send(200, page.encode(), "text/html; charset=utf-8", {"Content-Security-Policy": report_csp()})

    return Handler


def _same(given: str, token: bytes) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), token)


class UiServer:
    """A running dashboard (``with`` closes it)."""

    def __init__(self, httpd: ThreadingHTTPServer, thread: threading.Thread, token: bool) -> None:
        self.httpd, self.thread, self.token_required = httpd, thread, token

    @property
    def url(self) -> str:
        host, port = str(self.httpd.server_address[0]), self.httpd.server_address[1]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> UiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_bind(host: str, token: str | None) -> str | None:
    """The token to require (``token`` or ``$EVALKIT_UI_TOKEN``); a non-loopback host without one is refused."""
    from evalkit.tracing.receiver import is_loopback

    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise UserError(f"refusing to serve the dashboard on non-loopback {host or 'all interfaces'} without a token: "
                        f"set {TOKEN_ENV} (or --token), or put it behind an authenticating proxy on 127.0.0.1")
    return token


def start_ui(app: Dashboard, host: str = "127.0.0.1", port: int = 8765, *, token: str | None = None) -> UiServer:
    """Serve the dashboard on ``host:port`` (0 picks a free port) from a background thread."""
    from evalkit.tracing.receiver import is_loopback

    token = check_bind(host, token)
    httpd = ThreadingHTTPServer((host, port), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    bound = httpd.server_address[1]
    loopback = {f"{h}:{bound}" for h in ("127.0.0.1", "localhost", "[::1]")} if is_loopback(host) else set()
    httpd.RequestHandlerClass = _handler(app, token.encode() if token else None, loopback)
    thread = threading.Thread(target=httpd.serve_forever, name="evalkit-ui", daemon=True)
    thread.start()
    return UiServer(httpd, thread, token is not None)
