"""Async agents in async tests (anyio's pytest plugin): tool calls and spans land on the case."""

from __future__ import annotations

import json

from tests.plugin.conftest import Project

AGENT = '''
import anyio

from evalkit.tracing.decorators import trace


@trace(kind="tool")
async def lookup(word: str) -> str:
    await anyio.sleep(0)
    return word.upper()


async def answer(question: str) -> str:
    return await lookup(question)
'''
SUITE = """
name: async-mini
dataset: cases.jsonl
target: agent:answer
scorers: [exact_match, tool_calls]
thresholds: ["tool_calls/pass_rate >= 1"]
"""
TESTS = '''
import pytest

from evalkit.testing import cases
from agent import answer

INLINE = [{"id": "inline-1", "input": "abc", "expected": "ABC", "expected_tool_calls": [{"name": "lookup"}]}]
SYNC = [{"id": "sync-1", "input": "xyz", "expected": "XYZ", "expected_tool_calls": [{"name": "lookup"}]}]


@pytest.mark.anyio
@cases("suite.yaml")
async def test_output_from_the_test_body(case, evaluate):
    result = await evaluate.aio(case, await answer(case.input_text))
    result.assert_passed()


@pytest.mark.anyio
@cases(INLINE)
async def test_evaluate_runs_the_target(case, evaluate):
    result = await evaluate.aio(case, target=answer, scorers=["exact_match", "tool_calls"])
    result.assert_passed()


@pytest.mark.anyio
@cases(SYNC)
async def test_sync_evaluate_inside_an_async_test(case, evaluate):
    result = evaluate(case, await answer(case.input_text), scorers=["exact_match", "tool_calls"])
    assert result.passed, result
'''


def test_async_tests_record_tool_calls_and_one_trace_per_case(project: Project) -> None:
    project.write("agent.py", AGENT)
    project.write("cases.jsonl", "".join(json.dumps(
        {"id": f"a{i}", "input": w, "expected": w.upper(), "expected_tool_calls": [{"name": "lookup"}]}) + "\n"
        for i, w in enumerate(["one", "two", "three"])))
    project.write("suite.yaml", SUITE)
    project.write("test_async_agent.py", TESTS)
    project.write("conftest.py", "import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n")
    res = project.pytest()  # anyio registers its pytest plugin through its own entry point
    assert (res.ret, res.outcomes()) == (0, {"passed": 5}), res.out
    assert "evalkit gate PASSED" in res.out
    rows = project.query("SELECT case_id, tool_calls, trace_id FROM case_results ORDER BY case_id")
    assert [r[0] for r in rows] == ["a0", "a1", "a2", "inline-1", "sync-1"]
    for case_id, calls, trace in rows:
        assert [c["name"] for c in json.loads(calls)] == ["lookup"], case_id
        names = {n for (n,) in project.query("SELECT name FROM spans WHERE trace_id = ?", [trace])}
        assert {"evalkit.case", "execute_tool lookup", "evalkit.scorer"} <= names, (case_id, names)
    (suite,), = project.query("SELECT suite FROM runs")
    assert suite == "async-mini+pytest"
