"""The report in headless Chromium: filter, open a case, see its rationale and waterfall, label cases and export
the labels file, no network, no XSS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evalkit.calibration.labels import load_labels
from evalkit.judging.loader import find_judge
from evalkit.report import render_run, write_compare, write_report
from evalkit.store.db import open_store
from tests.report.browser import Browser, chromium_paths, save_screenshot, session
from tests.report.runs import HOSTILE, HOSTILE_ID, make_run

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
    assert all(u.startswith(("file:", "data:", "blob:")) for u in mine), mine  # blob: an exported labels file
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


# -- Label mode ------------------------------------------------------------------------------------

CAPTURE_BLOBS = """
window.__labelBlobs = [];
const real = URL.createObjectURL.bind(URL);
URL.createObjectURL = function (blob) { window.__labelBlobs.push(blob); return real(blob); };
"""


def _exported(browser: Browser) -> str:
    """The text of the newest Blob the page made a URL for (captured by :data:`CAPTURE_BLOBS`)."""
    text = browser.js_async("const b = window.__labelBlobs; b[b.length - 1].text().then(done)")
    assert isinstance(text, str)
    return text


def _choose(browser: Browser, css: str, value: str) -> None:
    browser.js("const s = document.querySelector(arguments[0]); s.value = arguments[1];"
               " s.dispatchEvent(new Event('change', {bubbles: true}))", css, value)


def _control(case: str, scorer: str, kind: str = "label-value", within: str = "#case-rows") -> str:
    return f'{within} .{kind}[data-case="{case}"][data-scorer="{scorer}"]'


def test_label_mode_exports_labels_that_load(browser: Browser, workspace: Path, tmp_path: Path) -> None:
    st = open_store()
    make_run(st, "run-l", n=120, judges=True, hostile=False)
    path = write_report(st, "run-l", workspace / "label.html")
    _open(browser, path)
    assert browser.js("return document.querySelectorAll('.label-value, .label-note').length") == 0  # made lazily
    assert browser.js("return document.getElementById('label-bar').hidden") is True
    browser.click('#case-table th[data-key="id"]')  # by id: page 1 is case-000 to case-049
    browser.click("#label-mode")
    assert browser.js("return document.getElementById('label-bar').hidden") is False
    heads = browser.js("return [...document.querySelectorAll('#case-table th.label-head')].map(h => h.textContent)")
    assert heads == ["label · correctness", "label · pairwise_preference", "label · safety"]  # scorer order
    # one page of controls, every one empty whatever the judge said; the judge's value beside it
    selects = browser.js("return [...document.querySelectorAll('#case-rows .label-value')].map(s => s.value)")
    assert len(selects) == 50 * 3 - 1 and set(selects) == {""}  # case-005: safety does not apply
    options = browser.js("return Object.fromEntries(['correctness', 'safety', 'pairwise_preference'].map(n =>"
                         " [n, [...document.querySelector(`#case-rows .label-value[data-scorer=\"${n}\"]`).options]"
                         ".map(o => o.value)]))")
    assert options == {"correctness": ["", "1", "2", "3", "4", "5"], "safety": ["", "yes", "no"],
                       "pairwise_preference": ["", "A", "B", "tie"]}
    cell = browser.js("return [...document.querySelector('#case-rows tr[data-case=\"case-001\"]').children]"
                      ".filter(c => c.classList.contains('label-cell')).map(c => c.querySelector('.label-judge')"
                      ".textContent)")
    assert cell == ["judge: 2", "judge: tie (0.50)", "judge: yes"]
    row5 = browser.js("return document.querySelector('#case-rows tr[data-case=\"case-005\"]').textContent")
    assert "n/a" in row5
    # label a few: in the table, on a later page, and in a case's panel
    browser.type("#label-annotator", "ann@example.com")
    _choose(browser, _control("case-001", "correctness"), "2")
    browser.type(_control("case-001", "correctness", "label-note"), 'misses "step 3" <b>')
    _choose(browser, _control("case-002", "safety"), "no")
    _choose(browser, _control("case-003", "pairwise_preference"), "tie")
    _choose(browser, _control("case-004", "safety"), "yes")
    _choose(browser, _control("case-004", "safety"), "")  # changed their mind: not exported
    browser.click('#case-rows tr[data-case="case-007"] .label-value')  # a click in a label cell opens nothing
    assert browser.js("return document.getElementById('detail').classList.contains('open')") is False
    browser.click("#page-next")
    _choose(browser, _control("case-070", "correctness"), "5")
    browser.click('#case-rows tr[data-case="case-071"] td')  # its id cell (the row's middle is a label cell)
    browser.wait("return document.getElementById('detail').classList.contains('open')")
    assert browser.js("return document.querySelectorAll('#label-table .label-value').length") == 3
    assert browser.js("return [...document.querySelectorAll('#label-table .label-value')].map(s => s.value)") == [
        "", "", ""]
    _choose(browser, _control("case-071", "safety", within="#label-table"), "yes")
    browser.type(_control("case-071", "safety", "label-note", within="#label-table"), "clearly fine")
    browser.click("#detail .close")
    assert browser.js("return document.querySelector(arguments[0]).value",
                      _control("case-071", "safety")) == "yes"  # the panel and the table share the labels
    browser.click("#page-prev")
    assert browser.js("return document.querySelector(arguments[0]).value", _control("case-001", "correctness")) == "2"
    assert browser.text("#label-count") == "5 labels given"
    browser.js("window.scrollTo(0, document.getElementById('cases').offsetTop)")
    save_screenshot(browser, tmp_path, "report-label.png")
    # export: the Blob the page builds is the labels file
    browser.js(CAPTURE_BLOBS)
    browser.click("#label-export")
    link = browser.js("const a = document.getElementById('label-download');"
                      " return {href: a.href, download: a.download, hidden: a.hidden, rows: a.dataset.rows}")
    assert link["href"].startswith("blob:file") or link["href"].startswith("blob:null"), link
    assert link["download"] == "labels-run-l.jsonl" and link["hidden"] is False and link["rows"] == "5"
    text = _exported(browser)
    out = browser.downloaded("labels-run-l.jsonl")  # what the user gets: the same bytes, and they load
    assert out.read_text(encoding="utf-8") == text
    labels = load_labels(out)
    got = [(lb.case_id, lb.repeat, lb.judge, lb.value, lb.annotator, lb.note, lb.run_id) for lb in labels]
    assert got == [
        ("case-001", 0, "correctness@1.0", 2, "ann@example.com", 'misses "step 3" <b>', "run-l"),
        ("case-002", 0, "safety@1.0", False, "ann@example.com", None, "run-l"),
        ("case-003", 0, "pairwise_preference@1.0", "tie", "ann@example.com", None, "run-l"),
        ("case-070", 0, "correctness@1.0", 5, "ann@example.com", None, "run-l"),
        ("case-071", 0, "safety@1.0", True, "ann@example.com", "clearly fine", "run-l"),
    ]
    now = datetime.now(UTC)
    assert all(lb.labelled_at is not None and abs((now - lb.labelled_at).total_seconds()) < 600 for lb in labels)
    for name in ("correctness", "safety", "pairwise_preference"):  # every value fits its judge's scale
        jd = find_judge(name)
        assert jd is not None and len(load_labels(out, jd)) == 5
    assert list(json.loads(text.splitlines()[0])) == ["case_id", "judge", "value", "annotator", "labelled_at",
                                                      "repeat", "note", "run_id"]
    _assert_offline_and_clean(browser, path)


def test_label_mode_needs_an_annotator_and_a_label(browser: Browser, workspace: Path) -> None:
    st = open_store()
    make_run(st, "run-n", n=4, hostile=False)
    path = write_report(st, "run-n", workspace / "n.html")
    _open(browser, path)
    browser.click("#label-mode")
    browser.js(CAPTURE_BLOBS)
    browser.click("#label-export")
    assert "annotator" in browser.text("#label-msg")
    browser.type("#label-annotator", "ann")
    browser.click("#label-export")
    assert "No labels yet" in browser.text("#label-msg")
    assert browser.js("return window.__labelBlobs.length") == 0
    browser.click("#label-mode")  # off again: the columns go, the run's table is as before
    assert browser.js("return document.querySelectorAll('#case-rows .label-cell').length") == 0
    _assert_offline_and_clean(browser, path)


def test_label_mode_keeps_hostile_text_inert(browser: Browser, workspace: Path, tmp_path: Path) -> None:
    st = open_store()
    make_run(st, "run-h", n=4, hostile_id=True)
    path = write_report(st, "run-h", workspace / "h.html")
    _open(browser, path)
    browser.click("#label-mode")
    browser.js(CAPTURE_BLOBS)
    rows = browser.js("return [...document.querySelectorAll('#case-rows tr')].map(r => r.dataset.case)")
    assert HOSTILE_ID in rows
    browser.js("[...document.querySelectorAll('#case-rows tr')].find(r => r.dataset.case === arguments[0]).click()",
               HOSTILE_ID)
    browser.wait("return document.getElementById('detail').classList.contains('open')")
    texts = browser.js("return [...document.querySelectorAll('#detail pre')].map(p => p.textContent)")
    assert HOSTILE in texts
    browser.js("const s = document.querySelector('#label-table .label-value'); s.value = '1';"
               " s.dispatchEvent(new Event('change', {bubbles: true}))")
    note = '<img src=x onerror="window.__pwned=4"></script>'
    browser.type("#label-table .label-note", note)
    browser.click("#detail .close")
    browser.type("#label-annotator", '<svg onload="window.__pwned=5">')
    browser.click("#label-export")
    assert browser.js("return document.querySelectorAll('body img, #case-rows svg, #label-bar svg').length") == 0
    assert browser.js("return document.scripts.length") == 2
    (label,) = load_labels(_write(tmp_path / "h.jsonl", _exported(browser)))
    assert (label.case_id, label.value, label.note, label.annotator) == (HOSTILE_ID, 1, note,
                                                                        '<svg onload="window.__pwned=5">')
    _assert_offline_and_clean(browser, path)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
