"""Run a judge: ask the model, re-ask on malformed answers, aggregate samples, swap pairwise order.

A judge that cannot give a verdict gives a typed failure, never a 0 and never a pass:
``error_kind`` ``provider`` (the model call failed for good, after the facade's retries),
``timeout`` (the model did not answer in time, after retries) or ``judge_output_invalid``
(the answer stayed malformed after the re-asks).
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evalkit.judging.model import JudgeDef, PairwiseVerdict, ScaleVerdict, YesNoVerdict, json_schema
from evalkit.judging.parse import VerdictError, parse_verdict
from evalkit.judging.render import render
from evalkit.llm import facade
from evalkit.llm.types import ModelError
from evalkit.schema import ErrorKind, Score

DEFAULT_MAX_REASKS = 2


def resolve_model(judge: JudgeDef, model: str | None = None) -> str | None:
    """The judge's model: argument, else ``EVALKIT_JUDGE_MODEL``, else the judge file's default."""
    return model or os.environ.get("EVALKIT_JUDGE_MODEL") or judge.model


@dataclass
class _Ask:
    """The outcome of one sample (with its re-asks)."""

    verdict: Any = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    reasks: int = 0
    cache_hits: int = 0
    calls: int = 0
    messages: list[dict[str, str]] = field(default_factory=list)


async def _ask(
    judge: JudgeDef,
    model: str,
    fields: Mapping[str, Any],
    *,
    sample: int,
    salt: str,
    max_reasks: int,
    params: dict[str, Any],
) -> _Ask:
    messages: list[dict[str, str]] = render(judge, fields, salt)
    rf = None
    if facade.supports_json_schema(model):
        rf = {
            "type": "json_schema",
            "json_schema": {
                "name": f"{judge.output}_verdict",
                "schema": json_schema(judge.output),
                "strict": True,
            },
        }
    out = _Ask(messages=messages)
    for attempt in range(max_reasks + 1):
        try:
            comp = await facade.complete(
                model,
                messages,
                params=params,
                response_format=rf,
                cache_extra=f"judge:{judge.ref}:sample{sample}",
            )
        except ModelError as err:
            if err.kind == "timeout":
                out.error_kind, out.error = "timeout", f"timeout: {err.message}"
            else:
                out.error_kind, out.error = "provider", f"provider_error: {err.kind}: {err.message}"
            return out
        out.calls += 1
        out.cache_hits += int(comp.cache_hit)
        out.input_tokens += comp.input_tokens
        out.output_tokens += comp.output_tokens
        out.cost_usd += comp.cost_usd
        out.text = comp.text
        try:
            out.verdict = parse_verdict(judge.output, comp.text)
            out.reasks = attempt
            return out
        except VerdictError as exc:
            problem = str(exc)
        out.reasks = attempt
        messages = [
            *messages,
            {"role": "assistant", "content": comp.text},
            {
                "role": "user",
                "content": f"That answer is invalid ({problem}). Reply again with only the JSON object "
                "of the shape asked for, and nothing else.",
            },
        ]
    snippet = out.text.strip().replace("\n", " ")[:160]
    out.error_kind = "judge_output_invalid"
    out.error = f"judge_output_invalid: {problem} (after {max_reasks} re-asks; last answer: {snippet!r})"
    return out


def _base_meta(judge: JudgeDef, model: str, asks: list[_Ask], samples: int) -> dict[str, Any]:
    return {
        "judge": judge.ref,
        "model": model,
        "prompt_sha256": judge.prompt_sha256,
        "input_tokens": sum(a.input_tokens for a in asks),
        "output_tokens": sum(a.output_tokens for a in asks),
        "tokens": sum(a.input_tokens + a.output_tokens for a in asks),
        "cost_usd": sum(a.cost_usd for a in asks),
        "llm_calls": sum(a.calls for a in asks),
        "cache_hits": sum(a.cache_hits for a in asks),
        "reasks": sum(a.reasks for a in asks),
        "samples": samples,
    }


async def run_judge(
    judge: JudgeDef,
    fields: Mapping[str, Any],
    *,
    model: str,
    name: str | None = None,
    samples: int = 1,
    threshold: float | None = None,
    max_reasks: int = DEFAULT_MAX_REASKS,
    params: dict[str, Any] | None = None,
) -> Score:
    """Score ``fields`` with ``judge``: one Score; on failure ``outcome='error'`` with its ``error_kind``, no value."""
    name = name or judge.name
    call_params = {**judge.params, **(params or {})}
    if samples > 1 and "temperature" not in (params or {}) and call_params.get("temperature") == 0:
        call_params["temperature"] = 0.7  # independent samples need some randomness
    if judge.output == "pairwise":
        return await _run_pairwise(
            judge,
            fields,
            model=model,
            name=name,
            samples=samples,
            threshold=threshold,
            max_reasks=max_reasks,
            params=call_params,
        )
    asks = list(
        await asyncio.gather(
            *(
                _ask(judge, model, fields, sample=i, salt="", max_reasks=max_reasks, params=call_params)
                for i in range(samples)
            )
        )
    )
    meta = _base_meta(judge, model, asks, samples)
    return _aggregate(judge, name, asks, meta, threshold)


def _failure(name: str, asks: list[_Ask], meta: dict[str, Any]) -> Score:
    """The judge gave no verdict: the first failed ask's kind and message (and how many asks failed)."""
    failed = next((a for a in asks if a.verdict is None), None)
    kind: ErrorKind = (failed.error_kind if failed is not None else None) or "internal"
    message = (failed.error if failed is not None else None) or "the judge gave no verdict"
    n_failed = sum(a.verdict is None for a in asks)
    if len(asks) > 1:
        message = f"{message} ({n_failed} of {len(asks)} asks failed)"
    return Score.failure(name, kind, message, metadata=meta)


def _aggregate(
    judge: JudgeDef, name: str, asks: list[_Ask], meta: dict[str, Any], threshold: float | None
) -> Score:
    good = [a for a in asks if a.verdict is not None]
    meta["sample_errors"] = sum(a.verdict is None for a in asks)
    if not good or len(good) * 2 <= len(asks):
        return _failure(name, asks, meta)
    rationale = good[0].verdict.rationale
    if judge.output == "scale_1_5":
        vals = [float(a.verdict.score) for a in good if isinstance(a.verdict, ScaleVerdict)]
        value = statistics.fmean(vals)
        meta["sample_values"] = vals
        meta["spread"] = max(vals) - min(vals)
        meta["stdev"] = statistics.pstdev(vals)
        thr = (
            threshold if threshold is not None else (judge.threshold if judge.threshold is not None else 4.0)
        )
        meta["threshold"] = thr
        return Score(name=name, value=value, passed=value >= thr, rationale=rationale, metadata=meta)
    votes = [a.verdict.verdict == "yes" for a in good if isinstance(a.verdict, YesNoVerdict)]
    yes = sum(votes)
    verdict = yes * 2 > len(votes)  # a tie is not a pass
    meta["sample_values"] = votes
    meta["yes_share"] = yes / len(votes)
    meta["spread"] = min(yes, len(votes) - yes) / len(votes)
    rationale = next(
        (a.verdict.rationale for a in good if (a.verdict.verdict == "yes") == verdict), rationale
    )
    return Score(name=name, value=verdict, passed=verdict, rationale=rationale, metadata=meta)


async def _run_pairwise(
    judge: JudgeDef,
    fields: Mapping[str, Any],
    *,
    model: str,
    name: str,
    samples: int,
    threshold: float | None,
    max_reasks: int,
    params: dict[str, Any],
) -> Score:
    """Ask with the candidate as A, then as B; value = candidate preference in [0, 1]."""
    cand, ref = fields.get("output_a"), fields.get("output_b")
    swapped = {**fields, "output_a": ref, "output_b": cand}
    jobs = []
    for i in range(samples):
        jobs.append(
            _ask(judge, model, fields, sample=i, salt="order:AB", max_reasks=max_reasks, params=params)
        )
        jobs.append(
            _ask(judge, model, swapped, sample=i, salt="order:BA", max_reasks=max_reasks, params=params)
        )
    asks = list(await asyncio.gather(*jobs))
    meta = _base_meta(judge, model, asks, samples)
    meta["sample_errors"] = sum(a.verdict is None for a in asks)
    if meta["sample_errors"]:
        return _failure(name, asks, meta)
    prefs: list[float] = []
    disagreements = 0
    for i in range(samples):
        first, second = asks[2 * i].verdict, asks[2 * i + 1].verdict
        assert isinstance(first, PairwiseVerdict) and isinstance(second, PairwiseVerdict)
        p1 = {"A": 1.0, "B": 0.0, "tie": 0.5}[first.preference]
        p2 = {"A": 0.0, "B": 1.0, "tie": 0.5}[second.preference]
        disagreements += int(p1 != p2)
        prefs += [p1, p2]
    value = statistics.fmean(prefs)
    thr = threshold if threshold is not None else (judge.threshold if judge.threshold is not None else 0.5)
    meta.update(
        sample_values=prefs,
        spread=max(prefs) - min(prefs),
        position_disagreement=disagreements > 0,
        position_disagreements=disagreements,
        verdicts=[a.verdict.preference for a in asks],
        threshold=thr,
    )
    return Score(
        name=name, value=value, passed=value >= thr, rationale=asks[0].verdict.rationale, metadata=meta
    )
