"""Text scorers: exact match, contains, regex, similarity, length."""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from evalkit.schema import Case, Score
from evalkit.scorers._util import NotScored, as_text, normalise, reference
from evalkit.scorers.registry import RunInfo, ScoreFn, register


@register("exact_match")
def exact_match(
    key: str | None = None, ignore_case: bool = True, ignore_whitespace: bool = True, ignore_punctuation: bool = False
) -> ScoreFn:
    """Output equals the reference after normalisation."""

    def score(case: Case, output: Any, run: RunInfo) -> bool:
        ref = reference(case, key)
        if ref is None:
            raise NotScored("case has no expected value")
        opts = {"case": ignore_case, "whitespace": ignore_whitespace, "punctuation": ignore_punctuation}
        return normalise(as_text(output), **opts) == normalise(as_text(ref), **opts)

    return score


def _needles(case: Case, values: list[str] | None, key: str | None) -> list[str]:
    if values is not None:
        return values
    ref = reference(case, key)
    if ref is None:
        raise NotScored(f"case has no {'expected' if key is None else repr(key)} values to look for")
    return [ref] if isinstance(ref, str) else [as_text(v) for v in ref]


@register("contains")
def contains(
    values: list[str] | None = None,
    key: str | None = None,
    mode: Literal["all", "any"] = "all",
    ignore_case: bool = True,
) -> ScoreFn:
    """Output contains all (or any) of the values; the value is the fraction found."""

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        needles = _needles(case, values, key)
        hay = as_text(output)
        if ignore_case:
            hay = hay.casefold()
        found = [n for n in needles if (n.casefold() if ignore_case else n) in hay]
        missing = [n for n in needles if n not in found]
        frac = len(found) / len(needles) if needles else 1.0
        passed = bool(found) if mode == "any" else not missing
        why = "all found" if not missing else f"missing: {', '.join(repr(m) for m in missing)}"
        return Score(name="_", value=frac, passed=passed, rationale=why)

    return score


@register("not_contains")
def not_contains(values: list[str] | None = None, key: str | None = None, ignore_case: bool = True) -> ScoreFn:
    """Output contains none of the values."""

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        needles = _needles(case, values, key)
        hay = as_text(output).casefold() if ignore_case else as_text(output)
        bad = [n for n in needles if (n.casefold() if ignore_case else n) in hay]
        return Score(
            name="_", value=not bad, passed=not bad, rationale=f"found: {', '.join(map(repr, bad))}" if bad else None
        )

    return score


@register("regex")
def regex(pattern: str, flags: list[Literal["i", "m", "s"]] | None = None, full_match: bool = False) -> ScoreFn:
    """Output matches a regular expression."""
    bits = 0
    for f in flags or []:
        bits |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}[f]
    try:
        rx = re.compile(pattern, bits)
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r}: {exc}") from None

    def score(case: Case, output: Any, run: RunInfo) -> bool:
        text = as_text(output)
        return bool(rx.fullmatch(text) if full_match else rx.search(text))

    return score


@register("similarity")
def similarity(key: str | None = None, threshold: float = 0.8, ignore_case: bool = True) -> ScoreFn:
    """Character-level similarity ratio (0-1) between output and reference."""

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        ref = reference(case, key)
        if ref is None:
            raise NotScored("case has no expected value")
        a = normalise(as_text(output), case=ignore_case)
        b = normalise(as_text(ref), case=ignore_case)
        ratio = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
        return Score(name="_", value=round(ratio, 6), passed=ratio >= threshold)

    return score


@register("length")
def length(
    min_chars: int | None = None, max_chars: int | None = None, min_words: int | None = None, max_words: int | None = None
) -> ScoreFn:
    """Output length lies within bounds (characters and/or words)."""

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        text = as_text(output)
        chars, words = len(text), len(text.split())
        problems = []
        if min_chars is not None and chars < min_chars:
            problems.append(f"{chars} chars < {min_chars}")
        if max_chars is not None and chars > max_chars:
            problems.append(f"{chars} chars > {max_chars}")
        if min_words is not None and words < min_words:
            problems.append(f"{words} words < {min_words}")
        if max_words is not None and words > max_words:
            problems.append(f"{words} words > {max_words}")
        return Score(name="_", value=not problems, passed=not problems, rationale="; ".join(problems) or None)

    return score
