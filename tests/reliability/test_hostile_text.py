"""Hostile text is data everywhere it is shown: terminal escapes, rich markup, bidi overrides, spreadsheet
formulas, HTML and NaN go through a real run and come out inert in every output."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from evalkit import safe_text
from evalkit.cli.app import main
from evalkit.schema import Case, Score
from evalkit.scorers.registry import BoundScorer, RunInfo
from tests.conftest import EVALKIT, REPO

pytestmark = pytest.mark.reliability

ESC_CLEAR = "\x1b[2J"
OSC_TITLE = "\x1b]0;pwned\x07"
OSC_LINK = "\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\"
RLO = "\u202e"
FORMULA = '=HYPERLINK("http://x")'
HOSTILE = f"{ESC_CLEAR}{OSC_TITLE}{OSC_LINK} [/bold] [link=http://x]l[/link] {RLO}gnp.exe {FORMULA} <script>x</script> | \x9b2J"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # never on a screen

AGENT = f'''
import evalkit

HOSTILE = {HOSTILE!r}

def answer(question):
    if question == "boom":
        raise ValueError("target failed: " + HOSTILE)
    return {{"text": "out " + HOSTILE, "nan": float("nan"), "inf": float("-inf")}}

@evalkit.scorer
def nan_score(case, output):
    return evalkit.Score(name="_", value=float("nan"), passed=True, rationale="nan " + HOSTILE)

@evalkit.scorer
def inf_score(case, output):
    return float("inf")

@evalkit.scorer
def verdict(case, output):
    return evalkit.Score(name="_", value=False, passed=False, rationale="why " + HOSTILE,
                         metadata={{"m": float("nan"), "i": [float("inf")]}})
'''
CASE_IDS = [FORMULA, "esc" + ESC_CLEAR + OSC_TITLE, "[/bold]", "[link=http://x]", "rtl" + RLO + "gnp.exe",
            "<script>alert(1)</script>", "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "\tTAB", "\rCR"]
SUITE = """name: "hostile \\x1b[2J [/bold] \\u202e suite"
dataset: cases.jsonl
target: agent:answer
agent:
  name: "=bot \\x1b]0;t\\x07 [link=http://x]"
  version: "1"
scorers:
  - agent:nan_score
  - agent:inf_score
  - agent:verdict
"""


def _strict(text: str) -> Any:
    """JSON parsed strictly: NaN, Infinity and -Infinity are errors."""
    def reject(c: str) -> Any:
        raise ValueError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=reject)


def _inert(text: str, where: str) -> None:
    """No control or bidi character: nothing a terminal or a browser would obey."""
    found = RAW.search(text)
    assert found is None, f"{where}: raw {found.group()!r} at {found.start()}: {text[max(0, found.start() - 60):found.end() + 20]!r}"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Workspace:
    """The hostile run's folder: ``run`` as a user runs it (a fresh process), the read commands in-process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.vars = {"COLUMNS": "400", "EVALKIT_STORE": str(root / ".evalkit" / "evalkit.duckdb"),
                     "EVALKIT_CACHE": str(root / ".evalkit" / "llm_cache.sqlite")}
        self.unset = [k for k in os.environ if k.endswith("_API_KEY")] + ["MLFLOW_TRACKING_URI", "EVALKIT_TEAM"]

    def process(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in self.unset}
        env.update(self.vars, PYTHONPATH=str(REPO))
        return subprocess.run([*EVALKIT, *args], cwd=self.root, capture_output=True, text=True, env=env,
                              timeout=600, encoding="utf-8")

    def cli(self, *args: str, code: int | None = 0) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp, redirect_stdout(out), redirect_stderr(err):
            for k, v in self.vars.items():
                mp.setenv(k, v)
            for k in self.unset:
                mp.delenv(k, raising=False)
            mp.chdir(self.root)
            mp.setattr(sys, "argv", ["evalkit", *args])
            try:
                main()
                rc = 0
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        res = Result(rc, out.getvalue(), err.getvalue())
        assert "Traceback" not in res.stderr, res.stderr
        if code is not None:
            assert res.returncode == code, (args, res.stdout, res.stderr)
        return res


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, str, subprocess.CompletedProcess[str]]:
    """One real run of the hostile suite (logged to the embedded MLflow store), with every CI output."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "agent.py").write_text(AGENT, encoding="utf-8")
    rows = [{"id": cid, "input": "boom" if i == 1 else f"q{i} {HOSTILE}"} for i, cid in enumerate(CASE_IDS)]
    (root / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "suite.yaml").write_text(SUITE, encoding="utf-8")
    ws = Workspace(root)
    run = ws.process("run", "suite.yaml", "--junit", "out.xml", "--markdown", "out.md", "--json-out", "out.json",
                     "--html", "out.html", "--max-error-rate", "1")
    assert run.returncode in (0, 1) and "Traceback" not in run.stderr, run.stderr  # never a crash or exit 2/3
    run_id = _strict(ws.cli("runs", "--json").stdout)[0]["run_id"]
    return ws, run_id, run


def test_safe_text_helpers() -> None:
    shown = safe_text.visible(HOSTILE)
    assert "\\x1b[2J" in shown and "⟨U+202E⟩" in shown and "\\x9b" in shown and "\\x07" in shown
    _inert(shown, "visible")
    assert safe_text.visible("a\r\nb\tc") == "a\nb\tc" and safe_text.visible("a\rb") == "a\\x0db"
    for ch in "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069":
        assert safe_text.visible(ch) == f"⟨U+{ord(ch):04X}⟩"
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=300, color_system=None).print(f"[bold]{safe_text.terminal(HOSTILE)}[/bold]")
    assert "[/bold] [link=http://x]l[/link]" in buf.getvalue()  # markup shown as text, not applied
    _inert(buf.getvalue(), "rich")
    for cell in (FORMULA, "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_text.csv_cell(cell).startswith("'")
    assert [safe_text.csv_cell(v) for v in ("-0.5", "+3", "1e-3", 2.5, None, "ok")] == ["-0.5", "+3", "1e-3", 2.5, None, "ok"]
    md = safe_text.markdown("a|b <img src=x> [x](http://y) **b** \x1b[2J")
    assert "<" not in md and "\\|" in md and "\\[x\\]" in md and "\x1b" not in md
    assert safe_text.markdown_code("a`b|c\nd") == "`a'b\\|c d`"
    assert safe_text.html('<a href="x">\u202e') == "&lt;a href=&quot;x&quot;&gt;⟨U+202E⟩"
    strict = safe_text.json_dumps({"n": float("nan"), "l": [float("inf"), 1.0], "s": "\u202e\x9b"}, ensure_ascii=False)
    assert _strict(strict) == {"n": None, "l": [None, 1.0], "s": "\u202e\x9b"}
    _inert(strict, "json_dumps")


def test_non_finite_values_are_score_errors_at_the_source() -> None:
    for bad in (float("nan"), float("inf"), float("-inf")):
        s = Score(name="x", value=bad, passed=True)
        assert (s.outcome, s.error_kind, s.value, s.passed) == ("error", "scorer_exception", None, None)
        assert s.error and "not a finite number" in s.error
    s = Score(name="x", value=0.5, metadata={"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": float("-inf")}})
    assert s.outcome == "ok" and s.metadata == {"a": None, "b": [1.0, None], "c": {"d": None}}

    async def score(*returns: Any) -> list[Score]:
        out: list[Score] = []
        for r in returns:
            def fn(case: Case, output: Any, run: RunInfo, r: Any = r) -> Any:
                return r

            out += await BoundScorer(name="u", fn=fn, config={})(Case(input="q"), "o", RunInfo())
        return out

    for s in asyncio.run(score(float("nan"), float("inf"), Score(name="_", value=float("nan")),
                               [Score(name="a", value=1.0), Score(name="b", value=float("-inf"))])):
        assert s.outcome == "error" or math.isfinite(s.value or 0.0)
        if s.outcome == "error":
            assert s.error_kind == "scorer_exception" and "finite" in (s.error or "")


def test_terminal_commands_show_controls_and_markup_as_text(hostile: tuple[Workspace, str, Any]) -> None:
    ws, run_id, run = hostile
    outputs = {"run": run.stdout + run.stderr, "show": ws.cli("show", run_id).stdout,
               "show --failed": ws.cli("show", run_id, "--failed").stdout, "traces": ws.cli("traces", run_id).stdout,
               "runs": ws.cli("runs").stdout}
    for cid in CASE_IDS[:6]:
        outputs[f"trace {cid!r}"] = ws.cli("trace", run_id, cid).stdout
    for where, text in outputs.items():
        _inert(text, where)
    assert "[/bold]" in outputs["show"] and "[link=http://x]" in outputs["show"]  # shown, not parsed (no MarkupError)
    assert "\\x1b[2J" in outputs["show"] and "⟨U+202E⟩" in outputs["show"]
    assert "scorer_exception" in outputs["show"]  # the NaN and inf scores are errors
    tree = outputs[f"trace {CASE_IDS[1]!r}"]
    assert "target failed: \\x1b[2J\\x1b]0;pwned\\x07" in tree and "[/bold]" in tree
    assert "why \\x1b[2J" in outputs[f"trace {CASE_IDS[0]!r}"]  # the judge-style rationale in the verdicts
    assert "hostile \\x1b[2J [/bold] ⟨U+202E⟩ suite" in outputs["traces"]


def _json_out(ws: Workspace) -> Any:
    text = (ws.root / "out.json").read_text(encoding="utf-8")
    return json.loads(re.sub(r"-?Infinity|NaN", "null", text)), text


def test_json_out_scores_are_strict(hostile: tuple[Workspace, str, Any]) -> None:
    ws, _, _ = hostile
    out, _ = _json_out(ws)
    by_name = {s["name"]: s for c in out["cases"] for s in c["scores"]}
    for name in ("nan_score", "inf_score"):
        assert by_name[name]["outcome"] == "error" and by_name[name]["error_kind"] == "scorer_exception"
        assert "not a finite number" in by_name[name]["error"]
    assert by_name["verdict"]["metadata"] == {"m": None, "i": [None]}
    for c in out["cases"]:
        assert all(s["value"] is None or math.isfinite(s["value"]) for s in c["scores"])
    _strict(json.dumps(out["summary"], allow_nan=False))


def test_json_out_is_strict_json_even_for_nan_outputs(hostile: tuple[Workspace, str, Any]) -> None:
    _strict(_json_out(hostile[0])[1])


def test_json_commands_are_strict(hostile: tuple[Workspace, str, Any]) -> None:
    ws, run_id, _ = hostile
    shown = ws.cli("show", run_id, "--json").stdout
    _inert(shown, "show --json")  # the same data, every control \\u-escaped
    cases = _strict(shown)["cases"]
    assert {c["case_id"] for c in cases} == set(CASE_IDS)
    assert any(isinstance(c["output"], dict) and c["output"].get("nan", 0) is None for c in cases)
    traces = ws.cli("traces", run_id, "--json").stdout
    _inert(traces, "traces --json")
    _strict(traces)
    trace = ws.cli("trace", run_id, CASE_IDS[0], "--json").stdout
    _inert(trace, "trace --json")
    _strict(trace)


def _data_block(page: str) -> Any:
    m = re.search(r'<script type="application/json" id="evalkit-data">(.*?)</script>', page, re.S)
    assert m, "no data block"
    return _strict(m.group(1))


def test_html_report_shows_bidi_and_controls_visibly(hostile: tuple[Workspace, str, Any]) -> None:
    ws, run_id, _ = hostile
    ws.cli("report", run_id, "-o", "report.html")
    for name in ("out.html", "report.html"):
        page = (ws.root / name).read_text(encoding="utf-8")
        _inert(page, name)
        assert "<script>x</script>" not in page and "<script>alert" not in page
        data = _data_block(page)
        assert "rtl⟨U+202E⟩gnp.exe" in data["cases"]["id"] and "[/bold]" in data["cases"]["id"]
        assert any("target failed: \\x1b[2J\\x1b]0;pwned\\x07" in (e or "") for e in data["cases"]["error"])
        assert "<title>evalkit · hostile \\x1b[2J [/bold] ⟨U+202E⟩ suite" in page
    script = (REPO / "evalkit" / "report" / "script.py").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script


def test_report_of_a_store_holding_nan_does_not_crash(hostile: tuple[Workspace, str, Any], tmp_path: Path) -> None:
    """A NaN written by an older evalkit (or by hand) is shown as no value, never a crash or invalid JSON."""
    ws, run_id, _ = hostile
    store = tmp_path / "old.duckdb"
    store.write_bytes(Path(ws.vars["EVALKIT_STORE"]).read_bytes())
    con = duckdb.connect(str(store))
    con.execute("UPDATE scores SET value = 'NaN'::DOUBLE, is_bool = false, outcome = 'ok' WHERE name = 'verdict'")
    con.execute("UPDATE scores SET value = 'Infinity'::DOUBLE, is_bool = false, outcome = 'ok', error = NULL, "
                "error_kind = NULL WHERE name = 'inf_score'")
    con.close()
    ws.cli("report", run_id, "--store", str(store), "-o", str(tmp_path / "r.html"))
    data = _data_block((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert all(v is None for col in data["cases"]["value"] for v in col)
    _strict(ws.cli("show", run_id, "--store", str(store), "--json").stdout)
    _inert(ws.cli("show", run_id, "--store", str(store)).stdout, "show (NaN store)")


def _outside_code(md: str) -> str:
    return re.sub(r"`[^`\n]*`", "", md)


def test_markdown_and_junit_are_inert(hostile: tuple[Workspace, str, Any]) -> None:
    ws, _, _ = hostile
    md = (ws.root / "out.md").read_text(encoding="utf-8")
    _inert(md, "markdown")
    assert "<" not in _outside_code(md) and "[link=http://x]" not in _outside_code(md)
    assert "`<script>alert(1)</script>`" in md  # a case id in a code span: shown literally, never parsed
    assert "⟨U+202E⟩" in md and "\\x1b" in md
    failing = md.split("### Top failing cases", 1)[1]
    rows = [line for line in failing.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 10  # the top ten
    for line in rows:  # every row keeps its four columns: the pipes in the text are escaped
        assert len(re.findall(r"(?<!\\)\|", line)) == 5, line
    junit = (ws.root / "out.xml").read_text(encoding="utf-8")
    _inert(junit, "junit")
    root = ET.fromstring(junit.encode())
    names = {tc.get("name") for tc in root.iter("testcase")}
    assert "rtl⟨U+202E⟩gnp.exe" in names and "esc\\x1b[2J\\x1b]0;pwned\\x07" in names


def test_leaderboard_outputs_are_inert(hostile: tuple[Workspace, str, Any]) -> None:
    ws, _, _ = hostile
    text = ws.cli("leaderboard", "-f", "csv").stdout
    _inert(text, "leaderboard csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) >= 2
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or re.fullmatch(r"[+-]?[\d.]+", cell), cell
    assert any(cell.startswith("'=bot") for cell in rows[1])  # the agent name, neutralised
    md = ws.cli("leaderboard", "-f", "markdown").stdout
    _inert(md, "leaderboard markdown")
    assert "<" not in md and "\\[/bold\\]" in md
    table = ws.cli("leaderboard").stdout
    _inert(table, "leaderboard table")
    assert "[/bold]" in table
    page = ws.cli("leaderboard", "-f", "html").stdout
    _inert(page, "leaderboard html")
    _strict(ws.cli("leaderboard", "-f", "json").stdout)


def test_sql_output_is_inert(hostile: tuple[Workspace, str, Any]) -> None:
    ws, _, _ = hostile
    q = "SELECT case_id, error FROM case_results ORDER BY case_id"
    _inert(ws.cli("sql", q).stdout, "sql")
    text = ws.cli("sql", q, "--csv").stdout
    _inert(text, "sql --csv")
    assert all(not c.startswith(("=", "+", "-", "@")) for r in csv.reader(io.StringIO(text)) for c in r)

