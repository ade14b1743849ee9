"""Metric names as logged to MLflow: the summary's names, rounded values, interval bounds in their own group.

A run's summary metrics (:meth:`evalkit.schema.RunSummary.metrics`, also the names thresholds use)
keep their bounds beside the metric (``x/ci_low``); in MLflow the bounds move to ``interval/…`` so
the run page lists headline metrics first and the bounds as one group. Readers accept both spellings
(runs logged before the move keep their intervals).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

_BOUNDS = (("/pass_rate_ci_low", "/pass_rate_low"), ("/pass_rate_ci_high", "/pass_rate_high"),
           ("/ci_low", "/mean_low"), ("/ci_high", "/mean_high"))


def mlflow_name(metric: str) -> str:
    """A summary metric's MLflow name: interval bounds move to their own group (``x/ci_low`` →
    ``interval/x/mean_low``, ``x/pass_rate_ci_high`` → ``interval/x/pass_rate_high``)."""
    for old, new in _BOUNDS:
        if metric.endswith(old):
            return f"interval/{metric[: -len(old)]}{new}"
    return metric


def _rounded(metric: str, v: float) -> float:
    if metric.startswith("latency_ms/"):
        return round(v, 1)
    if metric.startswith("cost_usd/"):
        return round(v, 6)
    return round(v, 4)  # scores, rates and bounds: four decimals is finer than any interval


def mlflow_metrics(summary_metrics: dict[str, float]) -> dict[str, float]:
    """The finite summary metrics under their MLflow names, rounded for the run page."""
    return {mlflow_name(k): _rounded(k, float(v)) for k, v in sorted(summary_metrics.items())
            if v is not None and math.isfinite(float(v))}


_LEGACY_SUFFIXES = tuple(old for old, _ in _BOUNDS)


def is_interval_metric(name: str) -> bool:
    """An interval bound, either spelling: shown inside its metric's row, never as a row of its own."""
    return name.startswith("interval/") or name.endswith(_LEGACY_SUFFIXES)


def interval_keys(metric: str) -> tuple[str, str] | None:
    """Names of the interval bounds logged for ``metric`` (``x/mean`` → ``interval/x/mean_low``, ``_high``)."""
    if metric.endswith(("/mean", "/pass_rate")):
        return f"interval/{metric}_low", f"interval/{metric}_high"
    return None


def legacy_interval_keys(metric: str) -> tuple[str, str] | None:
    """The bounds' names of runs logged before the bounds moved (``x/ci_low``, ``x/pass_rate_ci_low``)."""
    if metric.endswith("/mean"):
        base = metric[: -len("/mean")]
        return f"{base}/ci_low", f"{base}/ci_high"
    if metric.endswith("/pass_rate"):
        return f"{metric}_ci_low", f"{metric}_ci_high"
    return None


def interval_of(metrics: Mapping[str, float], metric: str) -> tuple[float | None, float | None]:
    """The logged 95 % interval of ``metric`` in a run's metrics, under either naming."""
    for keys in (interval_keys(metric), legacy_interval_keys(metric)):
        if keys and keys[0] in metrics and keys[1] in metrics:
            return metrics[keys[0]], metrics[keys[1]]
    return None, None
