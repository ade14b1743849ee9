"""Scorers from user code: decorators, suite arguments, ``imports:``, naming, and containment.

The end-to-end tests run ``evalkit run`` in a fresh process, as a user would: a scorer must be
found there without the test process having imported anything.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import evalkit
from evalkit.errors import UserError
from evalkit.schema import Case, Score
from evalkit.scorers._util import NotScored
from evalkit.scorers.registry import BoundScorer, RunInfo, build_scorer, register, scorer, scorer_factory
from tests.conftest import REPO, evalkit_cli

AGENT = '''\
import evalkit

def answer(question):
    return "please " + question if "polite" in question else question.upper()

@evalkit.scorer
def polite(case, output):
    return "please" in output.lower()

@evalkit.scorer(name="shouts")
async def _shouting(case, output, run):
    return output.isupper()
'''

CHECKS = '''\
import evalkit

@evalkit.scorer_factory
def length_between(min: int, max: int = 100):
    def score(case, output):
        return min <= len(output.split()) <= max
    return score

@evalkit.scorer_factory(name="mentions")
def _mentions(word: str, threshold: float = 1.0):
    def score(case, output, run):
        return evalkit.Score(name="_", value=float(word in output), passed=word in output, rationale=word)
    return score

def exclaims(case, output) -> float:
    return float(output.endswith("!"))

def needs_expected(case, output):
    if case.expected is None:
        raise evalkit.NotScored("case has no expected value")
    return output == case.expected
'''

CASES = [
    {"id": "a", "input": "polite reset my password"},
    {"id": "b", "input": "vpn down!"},
    {"id": "c", "input": "polite hi", "expected": "please polite hi"},
]


def workspace_with(ws: Path, suite: str, *, cases: list[dict[str, Any]] | None = None) -> Path:
    (ws / "agent.py").write_text(AGENT)
    (ws / "mypkg").mkdir(exist_ok=True)
    (ws / "mypkg" / "__init__.py").write_text("")
    (ws / "mypkg" / "checks.py").write_text(CHECKS)
    (ws / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in (CASES if cases is None else cases)))
    (ws / "suite.yaml").write_text(suite)
    return ws / "suite.yaml"


def run_json(ws: Path, *args: str) -> dict[str, Any]:
    proc = evalkit_cli(ws, "run", *args, "--no-mlflow", "--no-trace", "--json")
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def scores_of(ws: Path, run_id: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    con = duckdb.connect(str(ws / ".evalkit" / "evalkit.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT case_id, name, value, passed, outcome, error_kind FROM scores WHERE run_id = ?",
                           [run_id]).fetchall()
    finally:
        con.close()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def usage_error(ws: Path, *args: str) -> str:
    """Run a suite that must be rejected: exit 2, one line on stderr, no traceback; that line."""
    proc = evalkit_cli(ws, "run", *args, "--no-mlflow", "--no-trace")
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def runs_stored(ws: Path) -> int:
    store = ws / ".evalkit" / "evalkit.duckdb"
    if not store.exists():
        return 0
    con = duckdb.connect(str(store), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM runs").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


# --- end to end, through the CLI ---------------------------------------------------------------


def test_factory_takes_its_arguments_from_the_suite(workspace: Path) -> None:
    workspace_with(workspace, """\
name: factories
dataset: cases.jsonl
target: agent:answer
imports:
  - mypkg.checks
scorers:
  - length_between: {min: 1, max: 3}
  - length_between: {min: 4, as: long_enough}
  - mentions: {word: please}
thresholds:
  - length_between/pass_rate >= 0.3
""")
    out = run_json(workspace, "suite.yaml")
    by_name = {s["name"]: s for s in out["summary"]["scorers"]}
    assert set(by_name) == {"length_between", "long_enough", "mentions"}
    # outputs: "please polite reset my password" (5 words), "VPN DOWN!" (2), "please polite hi" (3)
    assert by_name["length_between"]["passed"] == 2 and by_name["long_enough"]["passed"] == 1
    assert by_name["mentions"]["passed"] == 2 and by_name["mentions"]["mean"] == pytest.approx(2 / 3)
    assert out["gate"]["passed"] is True


def test_scorers_next_to_the_agent_are_found_by_bare_name(workspace: Path) -> None:
    workspace_with(workspace, "name: bare\ndataset: cases.jsonl\ntarget: agent:answer\nscorers:\n  - polite\n  - shouts\n")
    out = run_json(workspace, "suite.yaml")
    scores = scores_of(workspace, out["run_id"])
    assert scores[("a", "polite")][:3] == (1.0, True, "ok")
    assert scores[("b", "polite")][:3] == (0.0, False, "ok")
    assert scores[("b", "shouts")][:3] == (1.0, True, "ok")  # the async (case, output, run) form, named by name=


def test_module_path_scorers_are_named_by_function(workspace: Path) -> None:
    workspace_with(workspace, """\
name: paths
dataset: cases.jsonl
target: agent:answer
scorers:
  - mypkg.checks:exclaims
  - mypkg.checks:length_between: {min: 2}
  - mypkg.checks:_mentions: {word: VPN}
  - mypkg.checks:needs_expected
""")
    out = run_json(workspace, "suite.yaml")
    names = {s["name"] for s in out["summary"]["scorers"]}
    assert names == {"exclaims", "length_between", "mentions", "needs_expected"}
    assert not any(":" in n for n in out["metrics"])
    scores = scores_of(workspace, out["run_id"])
    assert scores[("b", "exclaims")][:3] == (1.0, None, "ok")
    assert scores[("a", "needs_expected")] == (None, None, "not_applicable", None)  # NotScored: never a fail
    assert scores[("c", "needs_expected")][:3] == (1.0, True, "ok")
    assert out["summary"]["errors"] == 0


def test_readme_custom_scorer_example_runs(workspace: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("**Your own scorers**"):readme.index("**Judges**")]
    python = re.search(r"```python\n(.*?)```", section, re.S)
    yaml_part = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert python and yaml_part
    first_line = python.group(1).splitlines()[0]
    module = re.match(r"# (\w+)\.py", first_line)
    assert module, first_line
    (workspace / f"{module.group(1)}.py").write_text(python.group(1))
    (workspace / "agent.py").write_text("def answer(q):\n    return 'please hold on: ' + q\n")
    (workspace / "cases.jsonl").write_text('{"input": "reset my password"}\n')
    (workspace / "suite.yaml").write_text("name: readme\ndataset: cases.jsonl\ntarget: agent:answer\n" + yaml_part.group(1))
    out = run_json(workspace, "suite.yaml")
    by_name = {s["name"]: s for s in out["summary"]["scorers"]}
    assert set(by_name) == {"polite", "concise"}
    assert by_name["polite"]["pass_rate"] == 1.0 and by_name["concise"]["pass_rate"] == 1.0


@pytest.mark.parametrize(
    ("imports", "needle"),
    [
        ("  - json\n  - mypkg.nope\n", "suite.yaml:6: cannot import 'mypkg.nope': ModuleNotFoundError: No module named"),
        ("  - json\n  - broken\n", "suite.yaml:6: cannot import 'broken': ZeroDivisionError: division by zero"),
    ],
)
def test_bad_import_is_one_line_naming_suite_line_and_module(workspace: Path, imports: str, needle: str) -> None:
    workspace_with(workspace, f"name: bad\ndataset: cases.jsonl\ntarget: agent:answer\nimports:\n{imports}"
                              "scorers:\n  - polite\n")
    (workspace / "broken.py").write_text("import evalkit\nRATIO = 1 / 0\n")
    line = usage_error(workspace, "suite.yaml")
    assert line.startswith("error: ") and needle in line, line
    assert runs_stored(workspace) == 0


def test_bad_factory_arguments_name_the_suite_line(workspace: Path) -> None:
    base = "name: bad\ndataset: cases.jsonl\ntarget: agent:answer\nimports: [mypkg.checks]\nscorers:\n  - polite\n"
    workspace_with(workspace, base + "  - length_between: {mni: 1}\n")
    line = usage_error(workspace, "suite.yaml")
    assert "suite.yaml:7: scorer 'length_between': argument 'mni' is not a known argument (did you mean 'min'?)" in line
    workspace_with(workspace, base + "  - length_between: {min: few}\n")
    assert "suite.yaml:7: scorer 'length_between': argument 'min'" in usage_error(workspace, "suite.yaml")
    workspace_with(workspace, base + "  - length_between\n")
    assert "suite.yaml:7: scorer 'length_between': argument 'min' field required" in usage_error(workspace, "suite.yaml")
    workspace_with(workspace, base + "  - politte\n")
    assert "suite.yaml:7: unknown scorer 'politte' (did you mean 'polite'?" in usage_error(workspace, "suite.yaml")
    assert runs_stored(workspace) == 0


def test_empty_dataset_exits_2_and_stores_nothing(workspace: Path) -> None:
    suite = "name: empty\ndataset: cases.jsonl\ntarget: agent:answer\nscorers:\n  - polite\n"
    workspace_with(workspace, suite, cases=[])
    line = usage_error(workspace, "suite.yaml")
    assert line == "error: suite.yaml:2: dataset 'cases.jsonl' has no cases", line
    assert not (workspace / ".evalkit" / "evalkit.duckdb").exists()
    (workspace / "suite.yaml").write_text(suite.replace("dataset: cases.jsonl", "dataset: []"))
    assert usage_error(workspace, "suite.yaml") == "error: suite.yaml:2: dataset (an inline list) has no cases"
    # with a store holding a run already, the empty suite adds no run
    workspace_with(workspace, suite)
    run_json(workspace, "suite.yaml")
    assert runs_stored(workspace) == 1
    (workspace / "cases.jsonl").write_text("\n")
    usage_error(workspace, "suite.yaml")
    assert runs_stored(workspace) == 1


# --- the decorators, in process ----------------------------------------------------------------


def score_all(bound: BoundScorer, output: Any = "x", case: Case | None = None) -> list[Score]:
    return asyncio.run(bound(case or Case(input="q"), output, RunInfo()))


def test_decorators_bare_and_named() -> None:
    @scorer
    def ut_bare(case: Case, output: str) -> bool:
        return output == "x"

    @scorer(name="ut_named")
    def ut_other(case: Case, output: str) -> float:
        return 0.25

    @scorer_factory
    def ut_factory(n: int = 2) -> Any:
        return lambda case, output: len(output) == n

    @scorer_factory(name="ut_factory_named")
    def ut_factory2(word: str) -> Any:
        return lambda case, output, run: word in output

    @register("ut_registered")
    def ut_registered(k: int) -> Any:
        return lambda case, output, run: k

    assert evalkit.scorer is scorer and evalkit.scorer_factory is scorer_factory and evalkit.NotScored is NotScored
    assert ut_bare.__name__ == "ut_bare" and ut_factory(n=1)(Case(input="q"), "x") is True  # returned unchanged
    assert [s.name for s in score_all(build_scorer("ut_bare"))] == ["ut_bare"]
    assert score_all(build_scorer("ut_named"))[0].value == 0.25
    assert score_all(build_scorer(ut_other))[0].name == "ut_named"
    assert score_all(build_scorer({"ut_factory": {"n": 2}}), "ab")[0].passed is True
    assert score_all(build_scorer("ut_factory"), "abc")[0].passed is False  # defaults
    assert score_all(build_scorer(ut_factory), "ab")[0].name == "ut_factory"  # a factory passed as is: its defaults
    (s,) = score_all(build_scorer({"ut_factory_named": {"word": "hi", "as": "greets"}}), "hi there")
    assert (s.name, s.passed) == ("greets", True)
    assert score_all(build_scorer({"ut_registered": {"k": 1, "threshold": 0.5}}))[0].passed is True
    with pytest.raises(UserError, match=r"scorer 'ut_registered': argument 'k' input should be a valid integer"):
        build_scorer({"ut_registered": {"k": "one"}})


def test_factory_failures_at_build_time_are_user_errors() -> None:
    @scorer_factory
    def ut_fails(level: int = 1) -> Any:
        raise RuntimeError(f"level {level} is not supported")

    @scorer_factory
    def ut_not_a_function() -> Any:
        return 42

    with pytest.raises(UserError, match=r"scorer 'ut_fails': RuntimeError: level 1 is not supported"):
        build_scorer("ut_fails")
    with pytest.raises(UserError, match=r"scorer 'ut_not_a_function': the factory returned int, not a score function"):
        build_scorer("ut_not_a_function")


def test_user_scorers_cannot_take_builtin_names() -> None:
    with pytest.raises(ValueError, match="'exact_match' is a built-in scorer name"):

        @scorer
        def exact_match(case: Case, output: str) -> bool:
            return True

    with pytest.raises(ValueError, match="give a scorer name"):
        scorer(lambda case, output: True)
    assert scorer(name="ut_lambda")(lambda case, output: True) is not None
    assert score_all(build_scorer("ut_lambda"))[0].passed is True


# --- BoundScorer containment: whatever a scorer does, one Score, never an exception -------------


def _bound(behaviour: Any, *, raises: bool) -> BoundScorer:
    def fn(case: Case, output: Any, run: RunInfo) -> Any:
        if raises:
            raise behaviour
        return behaviour

    return BoundScorer(name="user", fn=fn, config={})


@pytest.mark.parametrize(
    "returned",
    [[1.0, 0.0], 10**400, float("nan"), float("inf"), object(), None, "yes", [], {"value": 1}, [Score(name="a", value=1), 3]],
    ids=["list-of-floats", "huge-int", "nan", "inf", "object", "none", "str", "empty-list", "dict", "mixed-list"],
)
def test_bad_return_values_are_one_scorer_exception(returned: Any) -> None:
    (s,) = score_all(_bound(returned, raises=False))
    assert s.name == "user" and s.outcome == "error" and s.error_kind == "scorer_exception"
    assert s.value is None and s.passed is None and s.error


@pytest.mark.parametrize(
    "exc", [SystemExit(2), KeyboardInterrupt(), ValueError("bad"), RecursionError(), GeneratorExit()],
    ids=["SystemExit", "KeyboardInterrupt", "ValueError", "RecursionError", "GeneratorExit"],
)
def test_raised_exceptions_are_one_scorer_exception(exc: BaseException) -> None:
    (s,) = score_all(_bound(exc, raises=True))
    assert s.outcome == "error" and s.error_kind == "scorer_exception" and s.value is None and s.passed is None
    assert type(exc).__name__ in (s.error or "")


def test_not_scored_is_not_applicable_sync_and_async() -> None:
    (s,) = score_all(_bound(NotScored("case has no expected value"), raises=True))
    assert (s.outcome, s.error_kind, s.value, s.passed) == ("not_applicable", None, None, None)
    assert s.error == "case has no expected value"

    async def later(case: Case, output: Any, run: RunInfo) -> Any:
        await asyncio.sleep(0)
        raise NotScored("no spans")

    (s,) = score_all(BoundScorer(name="a", fn=later, config={}))
    assert s.outcome == "not_applicable"


def test_good_values_still_score() -> None:
    assert [(s.value, s.passed) for s in score_all(_bound(True, raises=False))] == [(True, True)]
    assert score_all(_bound(3, raises=False))[0].value == 3.0
    many = score_all(_bound([Score(name="a", value=1.0), Score(name="b", value=0.0)], raises=False))
    assert [s.name for s in many] == ["a", "b"] and all(s.outcome == "ok" for s in many)


_plain = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300), st.floats(), st.text(max_size=20),
    st.binary(max_size=8), st.complex_numbers(),
)
_values = st.recursive(
    _plain,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4),
                            st.tuples(inner, inner)),
    max_leaves=10,
)
_scores = st.builds(Score, name=st.text(max_size=5), value=st.one_of(st.none(), st.booleans(), st.floats()),
                    passed=st.one_of(st.none(), st.booleans()))
_exceptions = st.one_of(
    st.builds(ValueError, st.text(max_size=20)), st.builds(SystemExit, st.one_of(st.none(), st.integers(), st.text())),
    st.builds(KeyboardInterrupt), st.builds(RuntimeError, _values), st.builds(NotScored, st.text(max_size=20)),
    st.builds(OverflowError), st.builds(MemoryError), st.builds(TypeError, _values, _values),
)
_anything = st.one_of(_values, _scores, st.lists(_scores, max_size=3), st.lists(st.one_of(_scores, _plain), max_size=3),
                      st.from_type(type).flatmap(st.from_type))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(behaviour=st.one_of(_anything.map(lambda v: (v, False)), _exceptions.map(lambda e: (e, True))),
       threshold=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
       is_async=st.booleans())
def test_any_return_or_raise_yields_valid_scores(behaviour: tuple[Any, bool], threshold: float | None,
                                                 is_async: bool) -> None:
    value, raises = behaviour

    def fn(case: Case, output: Any, run: RunInfo) -> Any:
        if raises:
            raise value
        return value

    async def afn(case: Case, output: Any, run: RunInfo) -> Any:
        return fn(case, output, run)

    bound = BoundScorer(name="prop", fn=afn if is_async else fn, config={}, threshold=threshold)
    scores = asyncio.run(bound(Case(input="q"), "out", RunInfo()))
    assert isinstance(scores, list) and scores
    for s in scores:
        assert isinstance(s, Score)
        Score.model_validate(s.model_dump())  # a valid, storable Score
        assert s.outcome in ("ok", "not_applicable", "error")
        if s.outcome == "ok":
            assert s.value is not None
            if not isinstance(value, Score | list):  # evalkit made the value: finite
                assert math.isfinite(float(s.value))
        else:
            assert s.value is None and s.passed is None and s.error is not None
            assert (s.error_kind is not None) == (s.outcome == "error")
            assert s.outcome == "not_applicable" or s.error  # an error always says why
