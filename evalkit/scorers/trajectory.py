"""Trajectory scorers: the agent's tool calls against the expected ones."""

from __future__ import annotations

from typing import Any, Literal

from evalkit.schema import Case, Score, ToolCall
from evalkit.scorers._util import NotScored
from evalkit.scorers.registry import RunInfo, ScoreFn, register


def _matches(got: ToolCall, want: ToolCall, check_args: bool) -> bool:
    if got.name != want.name:
        return False
    if not check_args:
        return True
    return all(got.arguments.get(k) == v for k, v in want.arguments.items())


def _in_order(got: list[ToolCall], want: list[ToolCall], check_args: bool) -> bool:
    i = 0
    for g in got:
        if i < len(want) and _matches(g, want[i], check_args):
            i += 1
    return i == len(want)


def _any_order(got: list[ToolCall], want: list[ToolCall], check_args: bool) -> bool:
    pool = list(got)
    for w in want:
        hit = next((g for g in pool if _matches(g, w, check_args)), None)
        if hit is None:
            return False
        pool.remove(hit)
    return True


@register("tool_calls")
def tool_calls(mode: Literal["exact", "in_order", "any_order"] = "in_order", check_args: bool = True) -> ScoreFn:
    """The agent's tool calls match ``expected_tool_calls``.

    ``exact``: same calls in the same order and nothing else; ``in_order``: the expected calls
    appear in order, other calls allowed between them; ``any_order``: each expected call appears.
    Expected arguments are a subset check: the agent may pass more arguments.
    """

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        return compare_trajectory(case, run.tool_calls, mode, check_args, verb="called")

    return score


def compare_trajectory(case: Case, got: list[ToolCall], mode: str, check_args: bool, *, verb: str) -> Score:
    """Score ``got`` against the case's expected tool calls in ``mode`` (shared by the span scorer)."""
    want = case.expected_tool_calls
    if want is None:
        raise NotScored("case has no expected_tool_calls")
    if mode == "exact":
        ok = len(got) == len(want) and all(_matches(g, w, check_args) for g, w in zip(got, want, strict=True))
    elif mode == "in_order":
        ok = _in_order(got, want, check_args)
    else:
        ok = _any_order(got, want, check_args)
    names = " → ".join(g.name for g in got) or "(none)"
    wanted = " → ".join(w.name for w in want) or "(none)"
    return Score(name="_", value=ok, passed=ok, rationale=f"{verb} {names}; expected {wanted} ({mode})")


@register("tool_call_count")
def tool_call_count(max_calls: int) -> ScoreFn:
    """The agent made at most ``max_calls`` tool calls."""

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        n = len(run.tool_calls)
        return Score(name="_", value=n <= max_calls, passed=n <= max_calls, rationale=f"{n} tool calls (max {max_calls})")

    return score
