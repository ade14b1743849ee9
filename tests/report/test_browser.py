"""The report in headless Chromium: filter, open a case, see its rationale and waterfall, no network, no XSS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evalkit.report import render_run, write_compare, write_report
from evalkit.store.db import open_store
from tests.report.browser import Browser, chromium_paths, save_screenshot, session
from tests.report.runs import HOSTILE, make_run

PATHS = chromium_paths()
pytestmark = pytest.mark.skipif(
    PATHS is None, reason="chromium and chromedriver not installed (apt-get install -y chromium chromium-driver)"
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    yield from session(tmp_path_factory.mktemp("chromium-profile"))


def _open(browser: Browser, path: Path) -> None:
    browser.log("performance")  # drop what earlier pages logged
    browser.log("browser")
    browser.get(path.resolve().as_uri())
    state = browser.wait("return document.body.getAttribute('data-ready')")
    assert state == "1", browser.js("return document.body.textContent")


def _assert_offline_and_clean(browser: Browser, page: Path) -> None:
    requests = browser.requests()
    uri = page.resolve().as_uri()
    mine = [url for url, doc in requests if doc == uri]
    assert uri in mine, f"the performance log did not record the page itself: {requests}"
    assert all(u.startswith(("file:", "data:")) for u in mine), mine
    # nothing at all left the machine (the browser's own chrome:// pages are not network requests)
    assert not [u for u, _ in requests if u.split(":", 1)[0] in ("http", "https", "ws", "wss", "ftp")], requests
    console = [e["message"] for e in browser.log("browser")]
    assert not [m for m in console if "Content Security Policy" in m or "Refused" in m], console
    assert browser.js("return typeof window.__pwned") == "undefined"


def test_filter_open_case_rationale_waterfall_offline(browser: Browser, workspace: Path, tmp_path: Path) -> None:
    st = open_store()
    facts = make_run(st, "run-a", n=40)
    path = write_report(st, "run-a", workspace / "report.html")
    _open(browser, path)
    assert browser.text(".count") == "40 of 40 cases"
    browser.click("#f-failed")
    assert browser.text(".count") == f"{facts['failed'] + 1} of 40 cases"  # + the judge error
    rows = browser.js("return [...document.querySelectorAll('#case-rows tr')].map(r => r.dataset.case)")
    assert "case-001" in rows and "case-002" not in rows
    browser.click('#case-rows tr[data-case="case-001"]')
    browser.wait("return document.getElementById('detail').classList.contains('open')")
    rationale = browser.js("return [...document.querySelectorAll('#score-table .score-rationale')].map(e => e.textContent)")
    assert "The answer to case 1 misses the key step (judge rationale)." in rationale
    assert "correctness@1.0 · mock/judge" in browser.text("#score-table")
    bars = browser.js("return document.querySelectorAll('#waterfall .wf-bar').length")
    assert bars == 6
    wf = browser.text("#waterfall")
    assert "tool search_kb" in wf and "TimeoutError" in wf and "mock/agent" in wf and "80→20 tok" in wf
    widths = browser.js("return [...document.querySelectorAll('#waterfall .wf-bar')].map(b => b.getBoundingClientRect().width)")
    assert widths[0] > widths[2] > 0  # the root span spans the axis; an LLM call is a fraction of it
    save_screenshot(browser, tmp_path, "report-case.png")
    # the other filters: by scorer, by tag, by text
    browser.click("#detail .close")
    browser.js("const s = document.getElementById('f-scorer'); s.value = '1'; s.dispatchEvent(new Event('change'))")
    assert browser.text(".count") == f"{facts['failed']} of 40 cases"
    browser.click("#f-failed")
    browser.js("const s = document.getElementById('f-tag'); s.value = [...s.options].find(o => o.text === 'vpn').value;"
               " s.dispatchEvent(new Event('change'))")
    assert browser.text(".count") == "20 of 40 cases"
    browser.type("#f-search", "problem number 13?")
    browser.wait("return document.querySelector('.count').textContent === '1 of 40 cases'")
    _assert_offline_and_clean(browser, path)


def test_hostile_input_is_text_and_runs_nothing(browser: Browser, workspace: Path, tmp_path: Path) -> None:
    st = open_store()
    make_run(st, "run-x", n=4)
    path = write_report(st, "run-x", workspace / "x.html")
    _open(browser, path)
    browser.click('#case-rows tr[data-case="case-000"]')
    browser.wait("return document.getElementById('detail').classList.contains('open')")
    texts = browser.js("return [...document.querySelectorAll('#detail pre')].map(p => p.textContent)")
    assert HOSTILE in texts
    assert any("<script>window.__pwned=2</script>" in t for t in texts)
    assert browser.js("return document.querySelectorAll('#detail img, #detail script, body img').length") == 0
    assert browser.js("return document.scripts.length") == 2  # the data block and the report script only
    save_screenshot(browser, tmp_path, "report-xss.png")
    _assert_offline_and_clean(browser, path)


def test_large_gzipped_report_and_compare_open(browser: Browser, workspace: Path, tmp_path: Path) -> None:
    st = open_store()
    make_run(st, "base", n=300, fail_every=5, hostile=False)
    make_run(st, "cand", n=300, fail_every=2, hostile=False)
    packed = workspace / "packed.html"
    packed.write_text(render_run(st, "cand", compress=True))
    _open(browser, packed)
    assert browser.text(".count") == "300 of 300 cases"
    assert browser.js("return document.querySelectorAll('#case-rows tr').length") == 50  # one page
    browser.click("#page-next")
    assert browser.text(".pager .note") == "page 2 of 6"
    _assert_offline_and_clean(browser, packed)
    diff = write_compare(st, "base", "cand", workspace / "diff.html")
    _open(browser, diff)
    assert "regression" in browser.text("#deltas") or "not tested" in browser.text("#deltas")
    assert browser.js("return document.querySelectorAll('#flip-list .flip').length") == 20
    first = browser.text("#flip-list .flip")
    assert "A (baseline)" in first and "B (candidate)" in first and "pass → fail" in first
    save_screenshot(browser, tmp_path, "report-diff.png")
    _assert_offline_and_clean(browser, diff)


def test_not_applicable_errors_and_the_ledger_are_shown_apart(browser: Browser, workspace: Path) -> None:
    st = open_store()
    make_run(st, "typed", n=6, not_applicable=True, hostile=False)
    path = write_report(st, "typed", workspace / "typed.html")
    _open(browser, path)
    cards = browser.js("return Object.fromEntries([...document.querySelectorAll('#metrics .card')]"
                       ".map(c => [c.querySelector('.k').textContent, c.querySelector('.v').textContent]))")
    assert {k: cards[k] for k in ("planned", "completed", "cancelled", "missing")} == {
        "planned": "7", "completed": "5", "cancelled": "0", "missing": "1"}
    cells = browser.js("return Object.fromEntries([...document.querySelectorAll('#case-rows tr')].map(r =>"
                       " [r.dataset.case, [...r.children].map(c => c.textContent)]))")
    assert cells["case-003"][1] == "completed" and cells["case-003"][3] == "n/a"  # columns: case, outcome, correctness, exact
    assert cells["case-005"][1] == "errored (judge_output_invalid)" and cells["case-005"][2] == "error (judge_output_invalid)"
    browser.click("#f-failed")
    rows = browser.js("return [...document.querySelectorAll('#case-rows tr')].map(r => r.dataset.case)")
    assert "case-003" not in rows and "case-005" in rows  # n/a is not a failure, an error is
    browser.click("#f-failed")
    browser.click('#case-rows tr[data-case="case-003"]')
    browser.wait("return document.getElementById('detail').classList.contains('open')")
    assert "not applicable: the case has no reference answer" in browser.text("#score-table")
    _assert_offline_and_clean(browser, path)
