"""Thresholds: parsing from the CLI and the suite file, and checking them against a run's metrics."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from evalkit.errors import UserError

Op = Literal[">=", "<=", ">", "<"]
Mode = Literal["point", "lower_bound"]

GLOBAL_METRICS = (
    "cases",
    "cases/planned",
    "cases/cancelled",
    "cases/missing",
    "errors/count",
    "errors/rate",
    "tokens/total",
    "cost_usd/total",
    "latency_ms/p50",
    "latency_ms/p95",
)
SCORER_METRICS = (
    "mean",
    "pass_rate",
    "ci_low",
    "ci_high",
    "pass_rate_ci_low",
    "pass_rate_ci_high",
    "errors",
    "not_applicable",
    "pass_at_k",
    "pass_all_k",
    "flaky_rate",
)
# metrics of LLM-judge scorers besides the above: health, agreement with humans, corrected pass rate
JUDGE_METRICS = (
    "judge/invalid_rate",
    "judge/position_disagreement",
    "judge/spread",
    "judge/verbosity_corr",
    "judge/agreement",
    "judge/sensitivity",
    "judge/specificity",
    "corrected_pass_rate",
    "corrected_pass_rate_ci_low",
    "corrected_pass_rate_ci_high",
)

_SYNTAX = "METRIC OP VALUE[@MODE], e.g. 'correctness/mean>=0.8' or 'correctness/pass_rate>=0.9@lower_bound'"
_PATTERN = re.compile(
    r"^\s*(?P<metric>[A-Za-z0-9_.\-/: ]+?)\s*(?P<op>>=|<=|>|<)\s*(?P<value>[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
    r"\s*(?P<pct>%)?\s*(?:@\s*(?P<mode>[a-z_]+))?\s*$"
)


class Threshold(BaseModel):
    """One gate condition: ``metric op value``.

    ``mode="lower_bound"`` compares the conservative end of the metric's 95 % interval instead of its
    point estimate: the lower end for ``>=``/``>``, the upper end for ``<=``/``<``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    metric: str
    op: Op
    value: float
    mode: Mode = "point"

    def __str__(self) -> str:
        suffix = "" if self.mode == "point" else f"@{self.mode}"
        return f"{self.metric}{self.op}{self.value:g}{suffix}"


def _mode(raw: str | None, source: str | None) -> Mode:
    if raw is None or raw == "point":
        return "point"
    if raw in ("lower_bound", "bound", "ci"):
        return "lower_bound"
    raise UserError(f"unknown threshold mode '{raw}'; use 'point' or 'lower_bound'", file=source)


def parse_threshold(text: str, *, source: str | None = None, mode: str | None = None) -> Threshold:
    """Parse ``correctness/mean>=0.8``, ``errors/rate<=2%`` or ``...>=0.8@lower_bound``."""
    m = _PATTERN.match(text)
    if not m:
        raise UserError(f"cannot parse threshold '{text}'; expected {_SYNTAX}", file=source)
    value = float(m["value"]) / (100.0 if m["pct"] else 1.0)
    chosen = m["mode"] if m["mode"] is not None else mode
    return Threshold(metric=m["metric"].strip(), op=m["op"], value=value, mode=_mode(chosen, source))  # type: ignore[arg-type]


def _from_mapping_item(metric: str, spec: Any, source: str | None) -> Threshold:
    if isinstance(spec, str):
        return parse_threshold(f"{metric}{spec.strip()}", source=source)
    if isinstance(spec, Mapping):
        return _from_dict({"metric": metric, **spec}, source)
    raise UserError(
        f"threshold for '{metric}' must be a string like '>=0.8' or a mapping with op/value/mode", file=source
    )


def _from_dict(spec: Mapping[str, Any], source: str | None) -> Threshold:
    spec = dict(spec)
    if "mode" in spec:
        spec["mode"] = _mode(spec["mode"], source)
    try:
        return Threshold.model_validate(spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "threshold"
        raise UserError(
            f"invalid threshold {dict(spec)}: {where}: {first['msg']}; expected metric, op (>=, <=, >, <), "
            f"value and optional mode (point | lower_bound)",
            file=source,
        ) from None


def parse_thresholds(spec: Any, *, source: str | None = None, mode: str | None = None) -> list[Threshold]:
    """Thresholds from the CLI or a suite file.

    Accepts None, one string, a list of strings / ``{metric, op, value, mode}`` mappings /
    :class:`Threshold`, or the short mapping form ``{"correctness/mean": ">=0.8"}``.
    ``mode`` is the default for strings without an ``@mode`` suffix.
    """
    if spec is None:
        return []
    if isinstance(spec, Threshold):
        return [spec]
    if isinstance(spec, str):
        return [parse_threshold(spec, source=source, mode=mode)]
    if isinstance(spec, Mapping):
        if "metric" in spec:
            return [_from_dict(spec, source)]
        return [_from_mapping_item(str(k), v, source) for k, v in spec.items()]
    if isinstance(spec, Iterable):
        out: list[Threshold] = []
        for item in spec:
            out.extend(parse_thresholds(item, source=source, mode=mode))
        return out
    raise UserError(f"thresholds must be a list or a mapping, not {type(spec).__name__}", file=source)


def known_metric_names(scorer_names: Iterable[str], extra: Iterable[str] = (), *,
                       judges: Iterable[str] = ()) -> set[str]:
    """Every metric name a threshold may use for a run with these scorers (``judges``: those that are LLM judges)."""
    names = set(GLOBAL_METRICS) | set(extra)
    for s in scorer_names:
        names.update(f"{s}/{m}" for m in SCORER_METRICS)
    for s in judges:
        names.update(f"{s}/{m}" for m in JUDGE_METRICS)
    return names


def validate_metric_names(
    thresholds: Iterable[Threshold], known: Iterable[str], *, source: str | None = None
) -> None:
    """Raise :class:`UserError` (exit 2) for a threshold on a metric the run cannot produce.

    Call it before the run with :func:`known_metric_names` of the suite's scorers to fail fast.
    """
    known_set = set(known)
    for t in thresholds:
        if t.metric in known_set:
            continue
        scorer, _, part = t.metric.rpartition("/")
        if part in SCORER_METRICS and f"{scorer}/mean" in known_set:
            raise UserError(
                f"threshold '{t}': scorer '{scorer}' gives no pass/fail verdicts, so it has no '{part}'; "
                f"give the scorer a pass threshold or gate on {scorer}/mean",
                file=source,
            )
        close = difflib.get_close_matches(t.metric, sorted(known_set), n=3)
        hint = (
            f"did you mean {', '.join(close)}?" if close else f"known metrics: {', '.join(sorted(known_set))}"
        )
        raise UserError(f"threshold '{t}' names unknown metric '{t.metric}'; {hint}", file=source)


class ThresholdCheck(BaseModel):
    """The outcome of one threshold: the number compared, and whether it cleared the bar."""

    metric: str
    op: Op
    value: float
    mode: Mode
    point: float | None  # the metric's point estimate
    interval: tuple[float, float] | None  # its 95 % interval, when one exists
    observed: float | None  # what was compared: the point, or the interval's conservative end
    passed: bool
    message: str


_OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


def check_threshold(
    t: Threshold, metrics: Mapping[str, float | None], intervals: Mapping[str, tuple[float, float] | None]
) -> ThresholdCheck:
    """Evaluate one (already name-validated) threshold. A missing value or interval fails the check."""
    point = metrics.get(t.metric)
    interval = intervals.get(t.metric)
    if t.mode == "lower_bound" and t.metric not in intervals:
        raise UserError(
            f"threshold '{t}': metric '{t.metric}' has no confidence interval; use point mode, "
            "or a mean / pass_rate / rate metric"
        )
    observed: float | None = point
    if t.mode == "lower_bound":
        observed = None if interval is None else (interval[0] if t.op in (">=", ">") else interval[1])
    if observed is None:
        why = "no value (nothing was scored)" if point is None else "no interval (fewer than 2 cases scored)"
        ok, message = False, f"{t}: FAIL, {why}"
    else:
        ok = bool(_OPS[t.op](observed, t.value))
        what = "" if t.mode == "point" else (" (CI low)" if t.op in (">=", ">") else " (CI high)")
        shown = f"{observed:.4g}{what}"
        if t.mode == "lower_bound" and point is not None:
            shown += f", point {point:.4g}"
        message = f"{t}: {'ok' if ok else 'FAIL'} ({shown})"
    return ThresholdCheck(
        metric=t.metric, op=t.op, value=t.value, mode=t.mode, point=point, interval=interval,
        observed=observed, passed=ok, message=message,
    )


def check_thresholds(
    thresholds: Iterable[Threshold],
    metrics: Mapping[str, float | None],
    intervals: Mapping[str, tuple[float, float] | None] | None = None,
    *,
    known: Iterable[str] | None = None,
) -> list[ThresholdCheck]:
    """Validate metric names (UserError on unknown ones) and evaluate every threshold."""
    ts = list(thresholds)
    validate_metric_names(ts, set(metrics) | set(known or ()))
    return [check_threshold(t, metrics, intervals or {}) for t in ts]
