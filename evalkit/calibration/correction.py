"""Pass rates corrected for judge error (Rogan–Gladen), with intervals that include calibration error.

A judge that passes a truly passing case with probability ``sensitivity`` and a truly failing case
with probability ``1 - specificity`` reports, on a suite whose true pass rate is ``p``, the raw rate
``q = p * sens + (1 - p) * (1 - spec)``. Inverting gives the Rogan–Gladen estimate
``p = (q + spec - 1) / (sens + spec - 1)``. Sensitivity and specificity are estimated on a human
calibration set (:class:`~evalkit.calibration.agreement.Confusion`), so a corrected interval must
carry three independent binomial uncertainties: the run's (``passes`` of ``n``), the calibration
positives' (``tp`` of ``tp + fn``) and negatives' (``tn`` of ``tn + fp``). The correction assumes
the judge's error rates on the run's cases are those measured on the calibration set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from evalkit.calibration.agreement import Confusion
from evalkit.stats import DEFAULT_CONFIDENCE, DEFAULT_SEED, Interval, _z, wilson_interval

Method = Literal["bootstrap", "lang_reiczigel", "delta"]
DEFAULT_RESAMPLES = 4_000

__all__ = ["DEFAULT_RESAMPLES", "CorrectedRate", "Method", "corrected_pass_rate", "rogan_gladen"]


def rogan_gladen(raw_rate: float, sensitivity: float, specificity: float) -> float:
    """Rogan–Gladen true rate ``(raw + spec - 1) / (sens + spec - 1)``, clipped to [0, 1].

    nan when ``sens + spec - 1 <= 0``: such a judge is no better than chance (its verdicts carry no
    information about the true pass rate, or are inverted), so nothing can be corrected. nan inputs
    give nan.
    """
    youden = sensitivity + specificity - 1.0
    if not youden > 0.0 or math.isnan(raw_rate):
        return math.nan
    return min(1.0, max(0.0, (raw_rate + specificity - 1.0) / youden))


@dataclass(frozen=True)
class CorrectedRate:
    """A judge's raw pass rate and the rate corrected for its measured error.

    ``usable`` is False (with a ``reason``; ``corrected`` nan and ``interval`` None) when the
    correction is undefined: no run cases, a calibration set without human passes or without human
    fails, or a judge no better than chance on it.
    """

    raw: float
    raw_interval: Interval | None  # Wilson interval of passes / n, ignoring judge error
    corrected: float
    interval: Interval | None
    sensitivity: float
    specificity: float
    usable: bool
    reason: str | None
    method: Method
    confidence: float


def _rg(q: np.ndarray, sens: np.ndarray, spec: np.ndarray) -> np.ndarray:
    youden = sens + spec - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.clip((q + spec - 1.0) / youden, 0.0, 1.0)
    return np.where(youden > 0.0, p, np.nan)


def _cp_draws(rng: np.random.Generator, k: int, n: int, upper: bool, size: int) -> np.ndarray:
    """Draws from a Clopper–Pearson confidence distribution of ``k`` of ``n``.

    ``Beta(k, n - k + 1)`` for the lower side, ``Beta(k + 1, n - k)`` for the upper: their quantiles are
    the exact binomial limits. The degenerate ends (no successes for the lower, no failures for the
    upper side) are a point mass at 0 or 1.
    """
    a, b = (k + 1, n - k) if upper else (k, n - k + 1)
    if a == 0:
        return np.zeros(size)
    if b == 0:
        return np.ones(size)
    return rng.beta(a, b, size)


def _bootstrap(
    passes: int, n: int, calib: Confusion, confidence: float, resamples: int, seed: int
) -> Interval:
    """Parametric bootstrap of RG over exact (Clopper–Pearson) confidence distributions of the rates.

    RG increases with the raw rate and the specificity and decreases with the sensitivity, so the lower
    limit is the ``alpha/2`` quantile of RG over raw and specificity drawn from their lower and
    sensitivity from its upper confidence distribution, and the upper limit the mirror image. Like the
    Clopper–Pearson interval it errs on the wide side: in simulation it covered 96-99.5% at 95%, where a
    percentile interval of uniform-prior posterior draws covered 94.6-95.9% (Jeffreys' draws slightly
    less). Draws where the judge is no better than chance identify nothing and count as 0 for
    the lower and 1 for the upper limit.
    """
    rng = np.random.default_rng(seed)
    alpha = 1.0 - confidence
    limits = []
    for upper in (False, True):
        q = _cp_draws(rng, passes, n, upper, resamples)
        sens = _cp_draws(rng, calib.tp, calib.positives, not upper, resamples)
        spec = _cp_draws(rng, calib.tn, calib.negatives, upper, resamples)
        draws = np.nan_to_num(_rg(q, sens, spec), nan=1.0 if upper else 0.0)
        limits.append(float(np.quantile(draws, 1 - alpha / 2 if upper else alpha / 2)))
    return (limits[0], limits[1])


def _wald(
    p: float,
    q: float,
    n: float,
    sens: float,
    n_pos: float,
    spec: float,
    n_neg: float,
    z: float,
    shift: float = 0.0,
) -> Interval:
    youden = sens + spec - 1.0
    var = q * (1 - q) / n + p * p * sens * (1 - sens) / n_pos + (1 - p) ** 2 * spec * (1 - spec) / n_neg
    half = z * math.sqrt(var) / abs(youden)
    centre = p + shift
    return (min(1.0, max(0.0, centre - half)), min(1.0, max(0.0, centre + half)))


def _delta(passes: int, n: int, calib: Confusion, confidence: float) -> Interval:
    """Wald interval with the delta-method variance of RG (plug-in rates)."""
    q, sens, spec = passes / n, calib.sensitivity, calib.specificity
    p = (q + spec - 1.0) / (sens + spec - 1.0)
    return _wald(min(1.0, max(0.0, p)), q, n, sens, calib.positives, spec, calib.negatives, _z(confidence))


def _lang_reiczigel(passes: int, n: int, calib: Confusion, confidence: float) -> Interval | None:
    """Lang & Reiczigel (2014) adjusted interval: Agresti–Coull-style pseudo-counts, a delta-method
    variance and a shift of the centre that offsets the skew of the ratio."""
    z = _z(confidence)
    n_q, n_se, n_sp = n + z * z, calib.positives + 2.0, calib.negatives + 2.0
    q = (passes + z * z / 2) / n_q
    sens = (calib.tp + 1.0) / n_se
    spec = (calib.tn + 1.0) / n_sp
    if sens + spec - 1.0 <= 0.0:
        return None
    p = (q + spec - 1.0) / (sens + spec - 1.0)
    shift = 2 * z * z * (p * sens * (1 - sens) / n_se - (1 - p) * spec * (1 - spec) / n_sp)
    return _wald(p, q, n_q, sens, n_se, spec, n_sp, z, shift)


def corrected_pass_rate(
    passes: int,
    n: int,
    *,
    calib: Confusion | None = None,
    tp: int | None = None,
    fn: int | None = None,
    tn: int | None = None,
    fp: int | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    method: Method = "bootstrap",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> CorrectedRate:
    """Pass rate of a run (``passes`` of ``n`` judged cases) corrected for the judge's error.

    The judge's error comes from ``calib`` (or its four counts ``tp``, ``fn``, ``tn``, ``fp``). The
    interval's ``method``:

    * ``bootstrap`` (default): ``resamples`` parametric draws of the three rates from their exact
      (Clopper–Pearson) confidence distributions, pushed through Rogan–Gladen; seeded. Conservative.
    * ``lang_reiczigel``: Lang & Reiczigel's (2014) closed-form adjusted Wald interval: pseudo-counts,
      a delta-method variance and a shift of the centre; about nominal coverage, ~7% narrower.
    * ``delta``: plain delta-method Wald interval; about nominal mid-range, under-covers near 0 and 1.

    Simulated coverage of the 95% intervals (runs of n=400, calibration sets of 40-200 items,
    sensitivity and specificity 0.7-0.99, true rates 0.02-0.95; 6,000-10,000 runs per setting):
    bootstrap 96-99.5%, Lang–Reiczigel 95-98%, delta 90% (true rate 0.95) to 98%.
    """
    if calib is None:
        counts = (tp, fp, fn, tn)
        if any(c is None for c in counts):
            raise ValueError("pass calib or all of tp, fn, tn, fp")
        calib = Confusion(tp=tp, fp=fp, fn=fn, tn=tn)  # type: ignore[arg-type]
    elif any(c is not None for c in (tp, fn, tn, fp)):
        raise ValueError("pass calib or the counts tp, fn, tn, fp, not both")
    if not 0 <= passes <= n:
        raise ValueError(f"need 0 <= passes <= n, got passes={passes}, n={n}")
    if method not in ("bootstrap", "lang_reiczigel", "delta"):
        raise ValueError(f"method must be 'bootstrap', 'lang_reiczigel' or 'delta', got {method!r}")
    _z(confidence)  # validates confidence
    if method == "bootstrap" and resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")

    raw = passes / n if n else math.nan
    sens, spec = calib.sensitivity, calib.specificity

    def unusable(reason: str) -> CorrectedRate:
        return CorrectedRate(
            raw,
            wilson_interval(passes, n, confidence),
            math.nan,
            None,
            sens,
            spec,
            False,
            reason,
            method,
            confidence,
        )

    if n == 0:
        return unusable("no judged cases in the run")
    if calib.positives == 0:
        return unusable("calibration set has no human-passed item: sensitivity is unknown")
    if calib.negatives == 0:
        return unusable("calibration set has no human-failed item: specificity is unknown")
    if sens + spec - 1.0 <= 0.0:
        return unusable(
            f"judge is no better than chance on the calibration set "
            f"(sensitivity {sens:.3f} + specificity {spec:.3f} <= 1)"
        )

    interval: Interval | None
    if method == "bootstrap":
        interval = _bootstrap(passes, n, calib, confidence, resamples, seed)
    elif method == "lang_reiczigel":
        interval = _lang_reiczigel(passes, n, calib, confidence)
    else:
        interval = _delta(passes, n, calib, confidence)
    return CorrectedRate(
        raw=raw,
        raw_interval=wilson_interval(passes, n, confidence),
        corrected=rogan_gladen(raw, sens, spec),
        interval=interval,
        sensitivity=sens,
        specificity=spec,
        usable=True,
        reason=None,
        method=method,
        confidence=confidence,
    )
