"""Headless Chromium through the dashboard: leaderboard → trend → run → case and its trace, a filter, the
judge view; what a user reads, screenshots, no console errors and no request outside the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.report.browser import Browser, chromium_paths, save_screenshot, session
from tests.ui._dash import HOSTILE, Workspace, serve

PATHS = chromium_paths()
pytestmark = pytest.mark.skipif(
    PATHS is None, reason="chromium and chromedriver not installed (apt-get install -y chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    yield from session(tmp_path_factory.mktemp("chromium-profile"))


def _go(b: Browser, url: str) -> None:
    b.get(url)
    _ready(b)


def _ready(b: Browser) -> None:
    state = b.wait("return document.body && document.body.getAttribute('data-ready')")
    assert state == "1", b.js("return document.body.innerText")


def _click(b: Browser, css: str) -> None:
    b.js("document.body.removeAttribute('data-ready')")
    b.click(css)
    _ready(b)


def _cells(b: Browser, css: str) -> list[list[str]]:
    return list(b.js(f"return [...document.querySelectorAll({css!r})].map(r => [...r.cells].map(c => c.innerText))"))


def test_click_through_leaderboard_trend_run_case(browser: Browser, dash: Workspace, tmp_path: Path) -> None:
    b = browser
    with serve(dash) as url:
        b.log("performance")
        b.log("browser")
        _go(b, url)
        qa = _cells(b, "section[data-suite='qa'] tr.entry")
        assert [(r[0], r[1], r[2], r[4]) for r in qa] == [("1", "bot", "3.0", "1.000"), ("=2", "bot", "1.0", "0.600"),
                                                         ("=2", "bot", "2.0", "0.300")]
        assert qa[1][5].startswith("[0.") and qa[1][11] == "main" and qa[0][11] == "feature/x"
        assert "intervals overlap" in b.text("section[data-suite='qa']")
        assert _cells(b, "section[data-suite='support'] tr.entry")[0][1] == HOSTILE  # shown as text, never run
        save_screenshot(b, tmp_path, "ui-leaderboard.png")

        b.js("const s = document.getElementById('f-branch'); s.value = 'main';"
             "document.body.removeAttribute('data-ready'); s.dispatchEvent(new Event('change'));")
        _ready(b)
        assert [(r[0], r[2]) for r in _cells(b, "section[data-suite='qa'] tr.entry")] == [("=1", "1.0"), ("=1", "2.0")]
        b.js("const s = document.getElementById('f-branch'); s.value = '';"
             "document.body.removeAttribute('data-ready'); s.dispatchEvent(new Event('change'));")
        _ready(b)

        _click(b, "section[data-suite='qa'] a.trend-link")
        assert b.js("return document.querySelectorAll('svg.trend .regression').length") == 1
        flagged = _cells(b, "#points tr.flag-regression")
        assert len(flagged) == 1 and flagged[0][2] == "2.0" and flagged[0][3] == "0.300" and flagged[0][5] == "regression"
        assert flagged[0][6] == "< 0.0001" or float(flagged[0][6]) < 0.05
        save_screenshot(b, tmp_path, "ui-trend.png")

        b.get(url)
        _ready(b)
        _click(b, f"section[data-suite='qa'] tr[data-run='{dash.runs['v2-bad']}'] a.run-link")
        cases = _cells(b, "#run tr.case")
        assert len(cases) == 30 and cases[0][2] == "fail" and "exact_match" in cases[0][3]
        assert b.js("return document.querySelector('a.diff-link').getAttribute('href')") == \
            f"diff/{dash.runs['v2-good']}/{dash.runs['v2-bad']}"

        _click(b, "#run tr[data-case='c29'] a")
        assert "no idea" in b.text("#case .texts") and "answer 29" in b.text("#case .texts")
        scores = _cells(b, "#score-table tbody tr")
        assert ["helpful", "2.000", "fail", "judged", "helpful@2 · mock/judge"] in scores
        bars = b.js("return [...document.querySelectorAll('#waterfall .wf-row .wf-label')].map(e => e.innerText)")
        assert bars[0].startswith("evalkit.case") and len(bars) >= 3
        save_screenshot(b, tmp_path, "ui-case.png")

        _click(b, "nav a[href='#/judges']")
        judge = _cells(b, "#judges tr.judge")
        assert judge[0][:4] == ["helpful@2", "mock/judge", "150", "5"] and judge[0][4] == "0.0 %"
        assert judge[0][9] == "not calibrated"

        b.get(url + f"report/{dash.runs['v2-bad']}")
        _ready(b)

        origin = url.rstrip("/")
        requests = [u for u, _ in b.requests()]
        assert requests and all(u.startswith((origin, "data:")) for u in requests), requests
        console = [e["message"] for e in b.log("browser")]
        assert not [m for m in console if e_level(m)], console
        assert b.js("return typeof window.__pwned") == "undefined"


def e_level(message: str) -> bool:
    """A console line that is an error: CSP refusals, script errors, failed fetches."""
    return any(k in message for k in ("Content Security Policy", "Refused", "Uncaught", "Failed to load", "error"))
