"""In-process checks of the plugin's helpers: messages, the gate adapter, case sources."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evalkit.schema import Case, CaseResult, Score
from evalkit.testing import CaseEval, cases
from evalkit.testing.cases import load_source, params
from evalkit.testing.recorder import Recorder


def _eval(scores: list[Score], status: str = "ok", error: str | None = None) -> CaseEval:
    now = datetime.now(UTC)
    result = CaseResult(run_id="R1", case_id="c1", status=status, error=error, output="the answer", scores=scores,  # type: ignore[arg-type]
                        trace_id="ab" * 16, started_at=now, ended_at=now)
    return CaseEval(case=Case(id="c1", input="q"), result=result, suite="s", thresholds={"judge": 0.8})


def test_a_failure_names_scorer_value_threshold_rationale_and_trace() -> None:
    ev = _eval([
        Score(name="judge", value=0.42, passed=False, rationale="misses the refund policy"),
        Score(name="exact", value=False, passed=False),
        Score.failure("rubric", "judge_output_invalid", "judge returned malformed JSON"),
        Score(name="ok", value=True, passed=True),
    ])
    assert not ev.passed and not ev
    msg = ev.explain()
    assert msg.splitlines() == [
        "case 'c1' of s failed 3 of 4 scorer(s):",
        "  judge: 0.42 < threshold 0.8 — misses the refund policy",
        "  exact: false (needs true)",
        "  rubric: not scored (judge_output_invalid: judge returned malformed JSON)",
        "  output: 'the answer'",
        f"  trace: {'ab' * 16}; view it with `evalkit trace R1 c1` (stored when the pytest session ends)",
    ]
    with pytest.raises(AssertionError) as info:
        ev.assert_passed()
    assert str(info.value) == msg
    assert repr(ev).startswith("<CaseEval 'c1' FAILED judge: 0.42 < threshold 0.8 — misses the refund policy; ")
    assert repr(ev).endswith(f"| trace {'ab' * 16} | `evalkit trace R1 c1`>")
    assert ev["judge"].value == 0.42
    with pytest.raises(KeyError, match="no score 'nope'"):
        ev["nope"]


def test_an_errored_case_fails_with_its_error_and_a_passing_one_passes() -> None:
    ev = _eval([Score(name="exact", error="not_scored: target failed")], status="error", error="timeout: no answer")
    assert ev.explain().startswith("case 'c1' of s: error: timeout: no answer")
    good = _eval([Score(name="exact", value=True, passed=True)])
    good.assert_passed()
    assert good.passed and repr(good) == f"<CaseEval 'c1' passed, trace {'ab' * 16}>"


def test_sources_lists_and_datasets_and_repeat_ids(tmp_path: Path) -> None:
    data = tmp_path / "cases.jsonl"
    data.write_text("".join(json.dumps({"id": f"k{i}", "input": str(i)}) + "\n" for i in range(3)))
    src = load_source("cases.jsonl", [tmp_path])
    assert (src.name, [c.id for c in src.cases], src.suite) == ("cases", ["k0", "k1", "k2"], None)
    assert load_source(str(data), [Path("/nowhere")]) is src  # loaded once per process
    ids = [p.id for p in params(src, 2)]
    assert ids == ["k0-r0", "k0-r1", "k1-r0", "k1-r1", "k2-r0", "k2-r1"]
    assert [p.marks[0].args for p in params(src, 2)][:2] == [(0,), (1,)]
    assert [p.id for p in params(src, 1)] == ["k0", "k1", "k2"]
    inline = load_source([{"id": "x", "input": "hi"}, "plain text"])
    assert inline.name == "pytest" and inline.cases[0].id == "x" and len(inline.cases) == 2
    mark = cases(str(data), argname="item").mark
    assert (mark.name, mark.args, mark.kwargs) == ("evalkit_cases", (str(data),), {"argname": "item"})


def test_the_recorder_runs_coroutines_with_and_without_a_running_loop(tmp_path: Path) -> None:
    rec = Recorder("R", tmp_path / "s.duckdb", tracing=False)

    async def one() -> int:
        await asyncio.sleep(0)
        return 1

    async def inside() -> int:
        return rec.run(one())  # from a running loop: a helper thread

    try:
        assert rec.run(one()) == 1
        assert rec.run(one()) == 1  # the loop is reused
        assert asyncio.run(inside()) == 1
    finally:
        rec.close()
    assert not (tmp_path / "s.duckdb").exists()  # nothing recorded, nothing opened


def test_a_case_recorded_by_two_tests_is_kept_once_and_reported(tmp_path: Path) -> None:
    rec = Recorder("R", tmp_path / "s.duckdb", tracing=False)
    rec.claim("c1", 0, "test_a.py::test_one[c1]")
    rec.claim("c1", 0, "test_a.py::test_one[c1]")  # the same test again (evaluate called twice)
    assert rec.duplicates == []
    rec.claim("c1", 0, "test_b.py::test_two[c1]")
    assert rec.duplicates == ["c1 (r0): test_a.py::test_one[c1] and test_b.py::test_two[c1]"]
