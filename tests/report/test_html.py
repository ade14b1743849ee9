"""The report's content, escaping, CSP and the `evalkit report` command (no browser needed)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.report import render_compare, render_run, write_report
from evalkit.report.compare import compare_payload
from evalkit.report.data import kind_evidence, output_kind, run_payload
from evalkit.report.embed import json_for_script
from evalkit.store.db import Store, open_store
from tests.report.runs import HOSTILE, make_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(workspace: Path) -> Store:
    st = open_store()
    make_run(st, "run-a", n=12)
    return st


def _data_block(page: str) -> object:
    m = re.search(r'<script type="application/(json|gzip\+base64)" id="evalkit-data">(.*?)</script>', page, re.S)
    assert m
    body = m.group(2)
    if m.group(1) == "gzip+base64":
        body = gzip.decompress(base64.b64decode(body)).decode()
    return json.loads(body)


def test_payload_has_metadata_judges_gate_and_waterfall(store: Store) -> None:
    d = run_payload(store, "run-a")
    run = d["run"]
    assert run["suite"] == "report-demo" and run["agent"] == {"name": "support-bot", "version": "2.0.1"}
    assert run["dataset_sha256"] == "ab" * 32 and run["git_commit"].startswith("c0ffee")
    assert run["models"] == ["mock/agent", "mock/judge"]
    assert run["judges"] == [{"scorer": "correctness", "judge": "correctness@1.0", "model": "mock/judge",
                              "prompt_sha256": "f" * 64}]
    assert d["gate"]["status"] == "failed"
    assert d["scorers"] == ["correctness", "exact"]
    assert d["dist"]["exact"]["kind"] == "bool" and d["dist"]["exact"]["counts"] == [4, 8]
    cases = d["cases"]
    assert sum(cases["failed"]) == 5  # 4 judge fails + 1 judge error
    i = cases["id"].index("case-001")
    assert "judge rationale" in cases["rationale"][0][i]
    trace = cases["trace"][i]
    names = [d["strings"][s[1]] for s in trace["spans"]]
    assert names == ["evalkit.case", "answer", "chat mock/agent", "execute_tool search_kb", "chat mock/agent",
                     "chat mock/judge"]
    depths = [s[0] for s in trace["spans"]]
    assert depths == [0, 1, 2, 2, 2, 1]
    tool = trace["spans"][3]
    assert d["strings"][tool[7]] == "search_kb" and d["strings"][tool[8]] == "TimeoutError" and tool[9] == 1
    assert trace["total"] == pytest.approx(110.0)
    assert "big blob" not in json.dumps(d)  # span attributes are not embedded


def test_hostile_text_is_escaped_and_round_trips(store: Store) -> None:
    page = render_run(store, "run-a", compress=False)
    assert "<script>window.__pwned" not in page
    assert "<img" not in page and "onerror=\"window" not in page
    assert page.count("</script>") == 2  # the data block's and the script's own closing tags
    assert "\\u003cscript\\u003ewindow.__pwned=1\\u003c/script\\u003e" in page
    data = _data_block(page)
    assert isinstance(data, dict) and data["cases"]["input"][0] == HOSTILE
    assert json.loads(json_for_script({"s": "\u2028</script>&"})) == {"s": "\u2028</script>&"}
    assert "\u2028" not in json_for_script({"s": "\u2028"})


def test_csp_pins_inline_script_and_style_and_page_loads_nothing(store: Store) -> None:
    page = render_run(store, "run-a")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp
    policy = csp.group(1)
    assert "default-src 'none'" in policy and "img-src data:" in policy and "connect-src" not in policy
    script = re.search(r"<script>(.*)</script>", page, re.S)
    style = re.search(r"<style>(.*)</style>", page, re.S)
    assert script and style
    for text in (script.group(1), style.group(1)):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "innerHTML" not in script.group(1) and "eval(" not in script.group(1)
    # the only URL in the page is the SVG namespace, which is a name, not a load
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) <= {"http://www.w3.org/2000/svg"}
    shell = re.sub(r'(id="evalkit-data">).*?</script>', r"\1</script>", page, flags=re.S)
    assert not re.search(r"\s(src|href)=", shell)  # no element of the page itself loads anything


def test_compressed_payload_round_trips(store: Store) -> None:
    plain, packed = render_run(store, "run-a", compress=False), render_run(store, "run-a", compress=True)
    assert 'type="application/gzip+base64"' in packed
    assert _data_block(packed) == _data_block(plain)


def test_compare_has_deltas_significance_and_flips(workspace: Path) -> None:
    st = open_store()
    make_run(st, "base", n=30, fail_every=5, hostile=False)
    make_run(st, "cand", n=30, fail_every=2, hostile=False)
    d = compare_payload(st, "base", "cand")
    assert d["a"]["run_id"] == "base" and d["b"]["run_id"] == "cand"
    rows = {(m["scorer"], m["metric"]): m for m in d["metrics"]}
    pr = rows[("exact", "pass_rate")]
    assert pr["a"] > pr["b"] and pr["delta"] < 0
    assert d["significance"] and pr["ci"] is not None and pr["p"] is not None
    flipped = {f["case_id"]: f["flips"] for f in d["flips"]}
    # case i fails in base when i % 5 == 1, in cand when i % 2 == 1
    assert flipped["case-003"] == [["correctness", "to_fail"], ["exact", "to_fail"]]
    assert "case-006" in flipped and ["exact", "to_pass"] in flipped["case-006"]
    assert d["flips"][0]["a"]["output"].startswith("Output for")
    page = render_compare(st, "base", "cand")
    assert _data_block(page) == json.loads(json.dumps(d))


def test_report_without_spans_or_gate(workspace: Path) -> None:
    st = open_store()
    make_run(st, "bare", n=3, spans=False)
    st.update_run("bare", gate=None)
    d = run_payload(st, "bare")
    assert d["gate"] is None and d["cases"]["trace"] == [None, None, None]
    path = write_report(st, "bare", workspace / "out" / "r.html")
    assert path.read_text().startswith("<!DOCTYPE html>")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalkit.cli.app", *args], capture_output=True, text=True)


def test_cli_report_and_compare(workspace: Path) -> None:
    with open_store() as st:
        make_run(st, "run-a", n=6)
        make_run(st, "run-b", n=6, fail_every=2)
    r = _cli("report", "run-a", "-o", "report.html")
    assert r.returncode == 0, r.stderr
    assert (workspace / "report.html").read_text().count("evalkit-data") == 2
    r = _cli("report", "--compare", "run-a", "run-b", "-o", "diff.html")
    assert r.returncode == 0, r.stderr
    assert '"kind":"compare"' in (workspace / "diff.html").read_text()
    r = _cli("report", "run-a")
    assert r.returncode == 0 and (workspace / "report-run-a.html").exists()
    r = _cli("report", "--compare", "run-a")
    assert r.returncode == 2 and "two run ids" in r.stderr
    r = _cli("report", "nope")
    assert r.returncode != 0 and "no run 'nope'" in r.stderr


def test_demo_run_with_real_tracing(workspace: Path) -> None:
    """The demo suite end to end: whatever the tracer records shows up in the case's waterfall."""
    import evalkit

    res = evalkit.evaluate(REPO / "datasets" / "demo" / "suite.yaml", store=workspace / "demo.duckdb", mlflow=False)
    with open_store(workspace / "demo.duckdb", read_only=True) as st:
        d = run_payload(st, res.run_id)
        spans = st.execute("SELECT count(*) FROM spans")[0][0]
    assert d["run"]["target"] == "it-support-agent"
    assert len(d["cases"]["id"]) == res.summary.cases
    if spans == 0:
        pytest.skip("tracing is not installed in this build: no spans to draw")
    i = d["cases"]["id"].index("pw-reset-forgot")
    trace = d["cases"]["trace"][i]
    assert trace is not None and trace["spans"][0][0] == 0
    tools = {d["strings"][s[7]] for s in trace["spans"] if s[7] is not None}
    assert "search_kb" in tools


def test_payload_keeps_not_applicable_apart_from_errors_and_carries_the_ledger(workspace: Path) -> None:
    st = open_store()
    make_run(st, "typed", n=6, not_applicable=True, hostile=False)
    d = run_payload(st, "typed")
    c, strings = d["cases"], d["strings"]
    exact, judge = d["scorers"].index("exact"), d["scorers"].index("correctness")
    na, err = c["id"].index("case-003"), c["id"].index("case-005")

    def label(matrix: str, j: int, i: int) -> str | None:
        v = c[matrix][j][i]
        return None if v is None else strings[v]

    assert label("score_outcome", exact, na) == "not_applicable" and label("score_kind", exact, na) is None
    assert c["value"][exact][na] is None and c["passed"][exact][na] is None
    assert c["score_error"][exact][na] == "the case has no reference answer"
    assert c["outcome"][na] == "completed" and c["failed"][na] == 0  # n/a is neither a fail nor an error
    assert label("score_outcome", judge, err) == "error" and label("score_kind", judge, err) == "judge_output_invalid"
    assert c["outcome"][err] == "errored" and c["failed"][err] == 1
    assert label("score_outcome", exact, err) == "ok"
    assert d["dist"]["exact"]["counts"] == [2, 3]  # the n/a case is not in the distribution
    assert {k: d["summary"][k] for k in ("planned", "completed", "missing")} == {"planned": 7, "completed": 5,
                                                                                 "missing": 1}
    page = render_run(st, "typed", compress=False)
    assert "n/a" in page and "card(\"missing\"" in page  # the script draws n/a cells and the ledger cards


def test_payload_carries_the_labelling_data(workspace: Path) -> None:
    st = open_store()
    make_run(st, "lab", n=8, judges=True, hostile=False)
    d = run_payload(st, "lab")
    lab, strings, cases = d["labelling"], d["strings"], d["cases"]
    assert lab["kinds"] == {"correctness@1.0": "scale_1_5", "pairwise_preference@1.0": "pairwise",
                            "safety@1.0": "yes_no"}
    by_scorer = {J["scorer"]: J for J in lab["judges"]}
    assert list(by_scorer) == ["correctness", "pairwise_preference", "safety"]  # LLM judges only: not `exact`
    for name, J in by_scorer.items():
        assert d["scorers"][J["col"]] == name and len(J["refs"]) == len(cases["id"])
    refs = {name: [None if r is None else strings[r] for r in J["refs"]] for name, J in by_scorer.items()}
    assert refs["correctness"] == ["correctness@1.0"] * 8  # the errored judge call (case-007) can be labelled too
    assert refs["pairwise_preference"] == ["pairwise_preference@1.0"] * 8
    assert refs["safety"][cases["id"].index("case-005")] is None  # the judge did not apply
    assert refs["safety"].count("safety@1.0") == 7
    page = render_run(st, "lab", compress=False)
    data = _data_block(page)
    assert isinstance(data, dict) and data["labelling"] == json.loads(json.dumps(lab))
    script = re.search(r"<script>(.*)</script>", page, re.S)
    assert script
    js = script.group(1)
    # the labels file is made in the page: a Blob and a download link, no request, no markup from data
    assert "URL.createObjectURL(new Blob(" in js and ".download = name" in js
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "fetch(", "XMLHttpRequest",
                   "sendBeacon", "eval(", "new Function", "localStorage"):
        assert banned not in js, banned
    assert "labelling" in js and "label-mode" in js


def test_labelling_data_stays_small_and_is_empty_without_judges(workspace: Path) -> None:
    st = open_store()
    make_run(st, "big", n=2000, spans=False, hostile=False)
    d = run_payload(st, "big")
    assert len(json.dumps(d["labelling"], separators=(",", ":"))) < 2000 * 3 + 200  # one small int per case
    st.execute("UPDATE scores SET metadata = NULL WHERE run_id = 'big'")
    plain = run_payload(st, "big")
    assert plain["labelling"] == {"judges": [], "kinds": {}}
    assert 'id="evalkit-data"' in render_run(st, "big")


def test_output_kind_from_the_scores_then_the_builtin_judge() -> None:
    assert kind_evidence({"judge": "x@1", "verdicts": ["A", "B"]}, 0.5, False) == "pairwise"
    assert kind_evidence({"judge": "x@1", "yes_share": 1.0}, True, True) == "yes_no"
    assert kind_evidence({"judge": "x@1", "stdev": 0.0}, 4.0, False) == "scale_1_5"
    assert kind_evidence({"judge": "x@1"}, None, False) is None
    assert output_kind("mine@2", {"bool", None}) == "yes_no" and output_kind("mine@2", {"num"}) == "scale_1_5"
    assert output_kind("safety@1.0", {None}) == "yes_no"  # a built-in judge by name
    assert output_kind("safety@1.0", {"pairwise"}) == "pairwise"  # what the run's scores say comes first
    assert output_kind("pairwise_preference@9", {"num"}) == "pairwise"
