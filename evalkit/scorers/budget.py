"""Budget scorers: latency, tokens and cost of a case."""

from __future__ import annotations

from typing import Any

from evalkit.schema import Case, Score
from evalkit.scorers.registry import RunInfo, ScoreFn, register


def _budget(measure: str, limit: float, got: float, unit: str) -> Score:
    ok = got <= limit
    return Score(name="_", value=ok, passed=ok, rationale=f"{measure} {got:g}{unit} {'<=' if ok else '>'} {limit:g}{unit}")


@register("latency")
def latency(max_ms: float) -> ScoreFn:
    """The target answered within ``max_ms`` milliseconds."""

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        return _budget("latency", max_ms, round(run.latency_ms, 3), " ms")

    return score


@register("token_budget")
def token_budget(max_tokens: int) -> ScoreFn:
    """The case used at most ``max_tokens`` tokens (input + output, all model calls)."""

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        return _budget("tokens", max_tokens, run.usage.input_tokens + run.usage.output_tokens, "")

    return score


@register("cost")
def cost(max_usd: float) -> ScoreFn:
    """The case cost at most ``max_usd`` dollars."""

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        return _budget("cost", max_usd, round(run.usage.cost_usd, 6), " USD")

    return score
