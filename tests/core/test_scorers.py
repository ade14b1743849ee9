"""Built-in deterministic scorers and the scorer registry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from evalkit.errors import UserError
from evalkit.schema import Case, Score, ToolCall
from evalkit.scorers.registry import RunInfo, build_scorer, scorer


def run(spec: Any, output: Any, case: Case | None = None, info: RunInfo | None = None) -> list[Score]:
    s = build_scorer(spec)
    return asyncio.run(s(case or Case(input="q"), output, info or RunInfo()))


def one(spec: Any, output: Any, case: Case | None = None, info: RunInfo | None = None) -> Score:
    (score,) = run(spec, output, case, info)
    return score


def test_exact_match_normalises() -> None:
    case = Case(input="q", expected="Hello  World")
    assert one("exact_match", "hello world", case).passed is True
    assert one({"exact_match": {"ignore_case": False}}, "hello world", case).passed is False
    assert one({"exact_match": {"ignore_punctuation": True}}, "Hello, World!", case).passed is True


def test_missing_reference_is_not_scored_not_zero() -> None:
    s = one("exact_match", "x", Case(input="q"))
    assert s.value is None and s.passed is None and s.outcome == "not_applicable" and s.error_kind is None
    assert s.error == "case has no expected value"


def test_contains_fraction_and_rationale() -> None:
    case = Case(input="q", metadata={"must": ["VPN", "port 4500"]})
    s = one({"contains": {"key": "must"}}, "Check the vpn client", case)
    assert s.value == 0.5 and s.passed is False and "port 4500" in (s.rationale or "")
    assert one({"contains": {"key": "must", "mode": "any"}}, "vpn", case).passed is True
    assert one({"contains": {"values": ["VPN"], "ignore_case": False}}, "vpn", case).passed is False


def test_not_contains() -> None:
    assert one({"not_contains": {"values": ["password is"]}}, "Your password is hunter2").passed is False
    assert one({"not_contains": {"values": ["password is"]}}, "I can't share that").passed is True


def test_regex_and_invalid_regex() -> None:
    assert one({"regex": {"pattern": r"INC\d{5}"}}, "ticket INC41234 opened").passed is True
    assert one({"regex": {"pattern": "^abc$", "flags": ["i"], "full_match": True}}, "ABC").passed is True
    with pytest.raises(UserError, match="invalid regex"):
        build_scorer({"regex": {"pattern": "(unclosed"}})


def test_json_and_schema() -> None:
    schema = {"type": "object", "required": ["ticket"], "properties": {"ticket": {"type": "string"}}}
    assert one("json_valid", '{"a": 1}').passed is True
    assert one("json_valid", "{nope").passed is False
    assert one({"json_schema": {"schema": schema}}, {"ticket": "INC1"}).passed is True
    bad = one({"json_schema": {"schema": schema}}, '{"ticket": 5}')
    assert bad.passed is False and "ticket" in (bad.rationale or "")
    with pytest.raises(UserError, match="invalid JSON schema"):
        build_scorer({"json_schema": {"schema": {"type": "no-such-type"}}})


def test_numeric_similarity_length_latency() -> None:
    assert one({"numeric": {"abs_tol": 0.01}}, "It costs 3.141 dollars", Case(input="q", expected=3.14)).passed is True
    assert one("numeric", "no digits here", Case(input="q", expected=1)).passed is False
    sim = one({"similarity": {"threshold": 0.9}}, "the cat sat", Case(input="q", expected="the cat sat."))
    assert 0.9 < float(sim.value or 0) < 1.0 and sim.passed
    assert one({"length": {"max_words": 3}}, "one two three four").passed is False
    assert one({"latency": {"max_ms": 100}}, "x", info=RunInfo(latency_ms=150)).passed is False


def test_tool_call_modes() -> None:
    want = [ToolCall(name="search_kb"), ToolCall(name="create_ticket", arguments={"category": "hardware"})]
    case = Case(input="q", expected_tool_calls=want)
    got = [ToolCall(name="search_kb", arguments={"query": "x"}), ToolCall(name="log"),
           ToolCall(name="create_ticket", arguments={"category": "hardware", "summary": "s"})]
    info = RunInfo(tool_calls=got)
    assert one({"tool_calls": {"mode": "in_order"}}, "", case, info).passed is True
    assert one({"tool_calls": {"mode": "exact"}}, "", case, info).passed is False
    assert one({"tool_calls": {"mode": "any_order"}}, "", case, RunInfo(tool_calls=list(reversed(got)))).passed is True
    wrong_arg = [ToolCall(name="search_kb"), ToolCall(name="create_ticket", arguments={"category": "general"})]
    assert one("tool_calls", "", case, RunInfo(tool_calls=wrong_arg)).passed is False
    assert one({"tool_calls": {"check_args": False}}, "", case, RunInfo(tool_calls=wrong_arg)).passed is True


def test_unknown_scorer_and_bad_arguments_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown scorer 'nope'"):
        build_scorer("nope")
    with pytest.raises(UserError, match="argument 'max_words'"):
        build_scorer({"length": {"max_words": "many"}})
    with pytest.raises(UserError, match="argument 'colour' is not a known argument"):
        build_scorer({"contains": {"values": ["a"], "colour": "red"}})


def test_user_scorer_decorator_sync_async_and_exceptions() -> None:
    @scorer
    def polite(case: Case, output: str) -> bool:
        return "please" in output

    @scorer(name="wordy")
    async def wordy(case: Case, output: str, run: RunInfo) -> float:
        return len(output.split()) / 10

    def broken(case: Case, output: str) -> float:
        raise RuntimeError("boom")

    assert one(polite, "please reset").passed is True
    assert one("polite", "reset!").passed is False  # registered by name
    w = one({"wordy": {"threshold": 0.5}}, "one two three")
    assert w.value == pytest.approx(0.3) and w.passed is False
    err = one(broken, "x")
    assert err.value is None and err.error == "RuntimeError: boom"
    assert err.outcome == "error" and err.error_kind == "scorer_exception"


def test_scorer_returning_nonsense_is_an_error_not_a_pass() -> None:
    def weird(case: Case, output: str) -> Any:
        return "yes"

    s = one(weird, "x")
    assert s.value is None and s.passed is None and s.outcome == "error" and s.error_kind == "scorer_exception"
    assert "scorer returned str" in (s.error or "")


def test_scorer_via_module_path_is_named_by_its_function() -> None:
    (s,) = run("tests.core.helpers:starts_with_hello", "hello there")
    assert s.passed is True and s.name == "starts_with_hello"
    bound = build_scorer({"tests.core.helpers:starts_with_hello": {"as": "greets"}})
    assert bound.name == "greets" and bound.config["scorer"] == "tests.core.helpers:starts_with_hello"


def test_module_path_errors_are_user_errors() -> None:
    with pytest.raises(UserError, match=r"cannot import scorer module 'tests\.core\.nope'"):
        build_scorer("tests.core.nope:fn")
    with pytest.raises(UserError, match="has no attribute 'nope'"):
        build_scorer("tests.core.helpers:nope")
    with pytest.raises(UserError, match="is not callable"):
        build_scorer("tests.core.helpers:__doc__")


def test_unknown_argument_suggests_the_closest() -> None:
    with pytest.raises(UserError, match=r"argument 'max_word' is not a known argument \(did you mean 'max_words'\?\)"):
        build_scorer({"length": {"max_word": 3}})
    with pytest.raises(UserError, match=r"did you mean 'exact_match'\?"):
        build_scorer("exact_mtach")
