"""`evalkit ui` over HTTP: the API, the reports, headers, tokens beyond loopback, and DNS-rebinding refusal."""

from __future__ import annotations

import http.client
import json
import subprocess
from urllib.parse import urlsplit

from evalkit.ui.page import shell_csp
from tests.conftest import EVALKIT, evalkit_cli
from tests.ui._dash import Workspace, serve


def _get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    u = urlsplit(url)
    con = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=60)
    con.request("GET", path, headers=headers or {})
    r = con.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    con.close()
    return out


def test_api_reports_and_headers(dash: Workspace) -> None:
    with serve(dash) as url:
        code, head, body = _get(url, "/")
        assert code == 200 and head["content-security-policy"] == shell_csp()
        assert "connect-src 'self'" in shell_csp() and "frame-ancestors 'none'" in shell_csp()
        assert head["x-frame-options"] == "DENY" and head["x-content-type-options"] == "nosniff"
        assert b"https://" not in body and b"http://" not in body.replace(b"http://www.w3.org/2000/svg", b"")
        code, _, body = _get(url, "/api/leaderboard?branch=main")
        rows = next(b for b in json.loads(body)["suites"] if b["suite"] == "qa")["rows"]
        assert code == 200 and [r["agent"] for r in rows] == ["bot@1.0", "bot@2.0"]
        code, head, body = _get(url, f"/report/{dash.runs['v2-bad']}")
        assert code == 200 and dash.runs["v2-bad"].encode() in body and "frame-ancestors" in head["content-security-policy"]
        code, _, body = _get(url, f"/diff/{dash.runs['v2-good']}/{dash.runs['v2-bad']}")
        assert code == 200 and b"evalkit diff" in body
        code, _, body = _get(url, "/api/case?run=nope&case=c00")
        assert code == 404 and "no run 'nope'" in json.loads(body)["error"]
        assert _get(url, "/api/case?run=x")[0] == 400
        assert _get(url, "/api/nothing")[0] == 404
        assert _get(url, "/etc/passwd")[0] == 404
        code, _, body = _get(url, "/api/trend?suite=qa&since=yesterday")
        assert code == 400 and "--since 'yesterday'" in json.loads(body)["error"]
        # a page elsewhere that rebinds its name to 127.0.0.1 is refused
        assert _get(url, "/api/runs", {"Host": f"evil.example:{urlsplit(url).port}"})[0] == 421


def test_token_bearer_cookie_and_query(dash: Workspace) -> None:
    with serve(dash, env={"EVALKIT_UI_TOKEN": "s3cret-token"}) as url:
        assert _get(url, "/api/runs")[0] == 401
        assert _get(url, "/api/runs", {"Authorization": "Bearer wrong"})[0] == 401
        assert _get(url, "/api/runs", {"Authorization": "Bearer s3cret-token"})[0] == 200
        code, head, _ = _get(url, "/?token=s3cret-token")
        assert code == 303 and head["location"] == "/"
        cookie = head["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert _get(url, "/api/runs", {"Cookie": cookie.split(";")[0]})[0] == 200
        assert _get(url, "/?token=nope")[0] == 401


def test_non_loopback_without_token_is_refused(dash: Workspace) -> None:
    r = evalkit_cli(dash.root, "ui", "--host", "0.0.0.0", "--port", "0", env={"EVALKIT_UI_TOKEN": ""})
    assert r.returncode == 2, r.stderr
    assert "without a token" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_help_names_the_token_and_loopback() -> None:
    r = subprocess.run([*EVALKIT, "ui", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "EVALKIT_UI_TOKEN" in r.stdout and "loopback" in r.stdout
