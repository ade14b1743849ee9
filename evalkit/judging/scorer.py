"""LLM judges as scorers: ``judge_scorer`` is the factory the scorer registry uses for judge names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from evalkit.errors import UserError
from evalkit.judging.loader import builtin_names, find_judge
from evalkit.judging.model import JudgeDef
from evalkit.judging.run import DEFAULT_MAX_REASKS, resolve_model, run_judge
from evalkit.schema import Case, Score

ScoreFn = Callable[[Case, Any, Any], Awaitable[Score]]


def lookup_judge(name: str) -> JudgeDef | None:
    """The judge called ``name`` (built-in) or stored at ``name`` (a ``.yaml`` path); None otherwise."""
    return find_judge(name)


def _fields(case: Case, output: Any, run: Any, rules: list[str] | None, reference: Any) -> dict[str, Any]:
    return {
        "input": case.input_text,
        "output": output,
        "expected": case.expected,
        "context": case.context_text or None,
        "rules": "\n".join(f"- {r}" for r in rules) if rules else None,
        "tool_calls": list(getattr(run, "tool_calls", None) or []),
        "expected_tool_calls": case.expected_tool_calls,
        "output_a": output,
        "output_b": reference,
    }


def judge_scorer(
    judge: str,
    model: str | None = None,
    samples: int = 1,
    threshold: float | None = None,
    rules: list[str] | str | None = None,
    max_reasks: int = DEFAULT_MAX_REASKS,
    reference: str | None = None,
    **params: Any,
) -> ScoreFn:
    """A scorer asking LLM judge ``judge`` (a built-in name or a judge YAML path).

    ``model`` defaults to ``EVALKIT_JUDGE_MODEL``, then the judge file's model. ``samples`` asks
    k times and aggregates (mean / majority). ``rules`` feed ``{rules}`` (guideline_adherence):
    a list of guidelines, or ``"case"`` for each case's own ``metadata.rules`` list.
    For pairwise judges the output is compared with ``reference``: a case metadata key holding
    the other output (default ``baseline_output``), else ``case.expected``. Other keyword
    arguments are model parameters (e.g. ``temperature``).
    """
    jd = find_judge(judge)
    if jd is None:
        hint = f"built-in judges: {', '.join(builtin_names())}"
        raise UserError(f"unknown judge '{judge}' ({hint}; or a path to a judge .yaml file)")
    chosen = resolve_model(jd, model)
    if not chosen:
        raise UserError(f"judge '{jd.name}' has no model: set EVALKIT_JUDGE_MODEL or pass model:")
    if samples < 1:
        raise UserError(f"judge '{jd.name}': samples must be at least 1")
    if "rules" in jd.placeholders and not rules:
        raise UserError(f"judge '{jd.name}' needs rules: a list of guidelines to check (or 'case')")
    if isinstance(rules, str) and rules != "case":
        raise UserError(f"judge '{jd.name}': rules must be a list of guidelines or 'case', not {rules!r}")
    ref_key = reference or "baseline_output"

    async def score(case: Case, output: Any, run: Any = None) -> Score:
        ref = case.metadata.get(ref_key, case.expected) if jd.output == "pairwise" else None
        case_rules = case.metadata.get("rules") if rules == "case" else rules
        fields = _fields(case, output, run, [str(r) for r in case_rules] if isinstance(case_rules, list) else None, ref)
        missing = [f for f in jd.requires if fields.get(f) in (None, "", [])]
        if missing:  # the case lacks what the judge reads: not applicable, never an error or a fail
            return Score(
                name=jd.name,
                outcome="not_applicable",
                error=f"judge {jd.ref} needs '{missing[0]}' on the case",
                metadata={"judge": jd.ref, "model": chosen},
            )
        return await run_judge(
            jd,
            fields,
            model=chosen,
            samples=samples,
            threshold=threshold,
            max_reasks=max_reasks,
            params=params or None,
        )

    score.__name__ = f"judge_{jd.name}"
    score.judge_name = jd.name  # type: ignore[attr-defined]  # scores are named after the judge file's name:
    score.model = chosen  # type: ignore[attr-defined]  # read by optional-scorer pre-flight checks
    return score


judge_scorer.__evalkit_factory__ = True  # type: ignore[attr-defined]


def judge_path(name: str) -> Path | None:
    """The file a judge was loaded from."""
    jd = find_judge(name)
    return Path(jd.source) if jd is not None and jd.source else None
