"""Statistics for evaluation results: intervals, repeat statistics and paired comparisons.

Pure numpy/polars, no I/O. Every random procedure takes a ``seed`` so that the same inputs give the
same interval and p-value on every machine. Conventions:

* A score row is one (case id, repeat, scorer) observation. Rows whose ``value`` is null are errors or
  "not scored" and are excluded from every quality statistic here.
* Repeats of a case are not independent samples of the suite: intervals resample *cases* (cluster
  bootstrap) and binomial intervals use a design-effect-corrected sample size.
* Paired comparisons average each case's repeats first, then pair current and baseline by case id.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np
import polars as pl

Interval = tuple[float, float]

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0
_CHUNK_CELLS = 2_000_000  # resample matrix cells per chunk (~16 MB of int64 indices)
_EXACT_SIGN_FLIP_MAX = 16  # enumerate all 2**n sign patterns up to this many non-zero deltas

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "Interval",
    "PairedResult",
    "RepeatSummary",
    "ScorerIntervals",
    "bootstrap_mean_ci",
    "compute_intervals",
    "mcnemar_pvalue",
    "mean_interval",
    "paired_compare",
    "pass_at_k",
    "proportion_interval",
    "repeat_stats",
    "repeat_summary",
    "scorer_intervals",
    "sign_flip_pvalue",
    "wilson_interval",
]


# -- helpers ---------------------------------------------------------------------------------------


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def _clusters(
    values: np.ndarray, clusters: Sequence[Any] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums and counts (one cluster per observation when ``clusters`` is None)."""
    if clusters is None:
        return values.astype(float), np.ones(len(values))
    _, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse).astype(float)
    return sums, counts


def _clean(
    values: Sequence[Any] | np.ndarray, clusters: Sequence[Any] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Drop null/NaN observations (and their cluster labels)."""
    arr = (
        np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
        if not isinstance(values, np.ndarray)
        else values.astype(float)
    )
    keep = ~np.isnan(arr)
    cl = None if clusters is None else np.asarray(clusters)[keep]
    return arr[keep], cl


def _is_binary(values: np.ndarray) -> bool:
    return bool(values.size) and bool(np.all((values == 0.0) | (values == 1.0)))


# -- intervals -------------------------------------------------------------------------------------


def wilson_interval(successes: float, n: float, confidence: float = DEFAULT_CONFIDENCE) -> Interval | None:
    """Wilson score interval for a proportion; ``n`` may be a (non-integer) effective sample size."""
    if n <= 0:
        return None
    z = _z(confidence)
    p = min(max(successes / n, 0.0), 1.0)
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def proportion_interval(
    outcomes: Sequence[Any] | np.ndarray,
    clusters: Sequence[Any] | np.ndarray | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Interval | None:
    """Wilson interval for 0/1 outcomes, corrected for clustering of repeats by case.

    With clusters, the sample size is divided by the design effect (cluster-robust variance over the
    i.i.d. variance, at least 1), so K identical repeats of a case count as one observation.
    """
    x, cl = _clean(outcomes, clusters)
    if x.size == 0:
        return None
    n = float(x.size)
    p = float(x.mean())
    n_eff = n
    if cl is not None:
        sums, counts = _clusters(x, cl)
        g = len(sums)
        if g < n and 0.0 < p < 1.0:
            # Cluster-robust (ratio estimator) variance of the overall proportion.
            resid = sums - p * counts
            var_cluster = g / max(g - 1, 1) * float(np.sum(resid**2)) / n**2
            var_iid = p * (1 - p) / n
            deff = min(max(var_cluster / var_iid, 1.0), float(counts.max()))
            n_eff = n / deff
        elif g < n:
            # All outcomes equal: no variance to measure; be conservative and count cases only.
            n_eff = float(g)
    return wilson_interval(p * n_eff, n_eff, confidence)


def bootstrap_mean_ci(
    values: Sequence[Any] | np.ndarray,
    clusters: Sequence[Any] | np.ndarray | None = None,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval | None:
    """Percentile bootstrap interval of a mean; resamples whole clusters (cases) when given.

    Returns None with fewer than two clusters (no honest interval exists).
    """
    x, cl = _clean(values, clusters)
    sums, counts = _clusters(x, cl)
    g = len(sums)
    if g < 2:
        return None
    rng = np.random.default_rng(seed)
    pairs, freq = np.unique(np.column_stack([sums, counts]), axis=0, return_counts=True)
    if len(pairs) <= min(64, g // 20):
        # Few distinct clusters (0/1 outcomes, pass-rate deltas): resample how often each occurs.
        weights = rng.multinomial(g, freq / g, size=n_resamples).astype(float)
        boot = (weights @ pairs[:, 0]) / (weights @ pairs[:, 1])
    else:
        boot = _resample_means(rng, sums, counts, n_resamples)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def _resample_means(
    rng: np.random.Generator, sums: np.ndarray, counts: np.ndarray, n_resamples: int
) -> np.ndarray:
    """Means of ``n_resamples`` cluster resamples, drawn in memory-bounded chunks."""
    g = len(sums)
    boot = np.empty(n_resamples)
    equal = bool(np.all(counts == counts[0]))
    chunk = max(1, _CHUNK_CELLS // g)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, g, size=(stop - start, g))
        total = sums[idx].sum(axis=1)
        boot[start:stop] = total / (counts[0] * g) if equal else total / counts[idx].sum(axis=1)
    return boot


def mean_interval(
    values: Sequence[Any] | np.ndarray,
    clusters: Sequence[Any] | np.ndarray | None = None,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval | None:
    """Interval of a mean: clustered Wilson for 0/1 values (no zero-width intervals at 0 or 1),
    cluster bootstrap otherwise."""
    x, cl = _clean(values, clusters)
    if _is_binary(x):
        return proportion_interval(x, cl, confidence)
    return bootstrap_mean_ci(x, cl, confidence=confidence, n_resamples=n_resamples, seed=seed)


class ScorerIntervals(NamedTuple):
    """The two intervals of one scorer: of its mean value and of its pass rate."""

    mean_ci: Interval | None
    pass_rate_ci: Interval | None


def compute_intervals(
    scores: pl.DataFrame,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, ScorerIntervals]:
    """Per-scorer ``(mean_ci, pass_rate_ci)`` from a score table.

    ``scores`` needs columns ``name``, ``case_id``, ``value`` and optionally ``passed``; rows with a
    null value are excluded. Repeats are clustered by ``case_id``.
    """
    out: dict[str, ScorerIntervals] = {}
    has_passed = "passed" in scores.columns
    # Clusters as integer codes: numpy object arrays of case-id strings cost ~10× the memory to sort.
    scores = scores.with_columns(pl.col("case_id").rank("dense").alias("case_id"))
    for name in sorted(scores.get_column("name").unique().to_list()):
        sub = scores.filter((pl.col("name") == name) & pl.col("value").is_not_null())
        case_ids = sub.get_column("case_id").to_numpy()
        values = sub.get_column("value").cast(pl.Float64).to_numpy()
        mean_ci = mean_interval(values, case_ids, confidence=confidence, n_resamples=n_resamples, seed=seed)
        pass_ci = None
        if has_passed:
            verdicts = sub.filter(pl.col("passed").is_not_null())
            if verdicts.height:
                pass_ci = proportion_interval(
                    verdicts.get_column("passed").cast(pl.Float64).to_numpy(),
                    verdicts.get_column("case_id").to_numpy(),
                    confidence,
                )
        out[name] = ScorerIntervals(mean_ci, pass_ci)
    return out


# -- repeats ---------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of P(at least one of k samples passes) from c passes in n samples."""
    if not 0 < k <= n:
        raise ValueError(f"need 0 < k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def repeat_stats(scores: pl.DataFrame) -> pl.DataFrame:
    """One row per (scorer, case): repeats scored, mean, passes, pass@k, pass^k and flakiness.

    ``pass_at_k`` is true when at least one of the case's K scored repeats passed, ``pass_all_k`` when
    all did, ``flaky`` when some passed and some failed. Verdict columns are null without verdicts.
    """
    cols = scores.columns
    df = scores.filter(pl.col("value").is_not_null())
    passed = pl.col("passed") if "passed" in cols else pl.lit(None, dtype=pl.Boolean)
    return (
        df.with_columns(passed.alias("_p"))
        .group_by("name", "case_id", maintain_order=True)
        .agg(
            pl.len().alias("n"),
            pl.col("value").cast(pl.Float64).mean().alias("mean"),
            pl.col("_p").is_not_null().sum().alias("verdicts"),
            pl.col("_p").cast(pl.Int64).sum().alias("passes"),
        )
        .with_columns(
            pl.when(pl.col("verdicts") > 0).then(pl.col("passes") > 0).alias("pass_at_k"),
            pl.when(pl.col("verdicts") > 0).then(pl.col("passes") == pl.col("verdicts")).alias("pass_all_k"),
            pl.when(pl.col("verdicts") > 0)
            .then((pl.col("passes") > 0) & (pl.col("passes") < pl.col("verdicts")))
            .alias("flaky"),
        )
        .sort("name", "case_id")
    )


@dataclass(frozen=True)
class RepeatSummary:
    """Repeat statistics of one scorer over a run."""

    k: int  # largest number of scored repeats of a case
    cases: int  # cases with at least one scored repeat
    judged: int  # cases with at least one pass/fail verdict
    pass_at_k: float | None  # share of cases with at least one passing repeat
    pass_all_k: float | None  # share of cases whose repeats all passed
    flaky: int
    flaky_rate: float | None
    flaky_cases: list[str] = field(default_factory=list)


def repeat_summary(scores: pl.DataFrame) -> dict[str, RepeatSummary]:
    """Per-scorer :class:`RepeatSummary` (see :func:`repeat_stats`)."""
    per_case = repeat_stats(scores)
    out: dict[str, RepeatSummary] = {}
    for name in per_case.get_column("name").unique(maintain_order=True).to_list():
        sub = per_case.filter(pl.col("name") == name)
        judged = sub.filter(pl.col("verdicts") > 0)
        m = judged.height
        flaky_cases = judged.filter(pl.col("flaky")).get_column("case_id").cast(pl.Utf8).to_list()
        out[name] = RepeatSummary(
            k=int(sub.get_column("n").max() or 0),  # type: ignore[arg-type]
            cases=sub.height,
            judged=m,
            pass_at_k=float(judged.get_column("pass_at_k").mean()) if m else None,  # type: ignore[arg-type]
            pass_all_k=float(judged.get_column("pass_all_k").mean()) if m else None,  # type: ignore[arg-type]
            flaky=len(flaky_cases),
            flaky_rate=len(flaky_cases) / m if m else None,
            flaky_cases=flaky_cases,
        )
    return out


# -- paired tests ----------------------------------------------------------------------------------


def mcnemar_pvalue(b: int, c: int, *, mid_p: bool = True) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (mid-p by default).

    ``b`` = pass→fail, ``c`` = fail→pass. The mid-p variant keeps the exact test's guarantees in
    practice while being far less conservative with few discordant pairs.
    """
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    total = 1 << n
    tail = sum(math.comb(n, i) for i in range(k + 1))  # P(X <= k) * 2**n
    point = math.comb(n, k)
    p = 2 * tail - (point if mid_p else 0)
    return float(min(1.0, p / total))


def sign_flip_pvalue(
    deltas: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> float:
    """Two-sided paired permutation p-value for mean(deltas) == 0, by random sign flips.

    Exact (all 2**n patterns) with at most 16 non-zero deltas, Monte Carlo otherwise
    (``(1 + hits) / (1 + n_resamples)``, never zero).
    """
    d = np.asarray(deltas, dtype=float)
    d = d[d != 0.0]
    n = d.size
    if n == 0:
        return 1.0
    observed = abs(float(d.sum()))
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))
    if n <= _EXACT_SIGN_FLIP_MAX:
        patterns = ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        stats = np.abs(patterns @ d)
        return float(np.mean(stats >= observed - tol))
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        signs = rng.integers(0, 2, size=(rows, n), dtype=np.int8) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ d) >= observed - tol))
    return (1 + hits) / (1 + n_resamples)


@dataclass(frozen=True)
class PairedResult:
    """Paired comparison of one scorer between a current and a baseline run, on shared cases."""

    n_shared: int
    current_mean: float | None
    baseline_mean: float | None
    delta: float | None  # current - baseline, mean over shared cases of per-case means
    delta_ci: Interval | None
    p_value: float | None  # sign-flip permutation test of the mean delta
    n_verdicts: int  # shared cases with a pass/fail verdict in both runs
    current_pass_rate: float | None
    baseline_pass_rate: float | None
    pass_rate_delta: float | None
    pass_rate_ci: Interval | None
    pass_rate_p_value: float | None  # McNemar (one repeat) or sign-flip on per-case pass rates
    pass_rate_test: str | None
    to_fail: list[str]  # cases that passed in the baseline and fail now
    to_pass: list[str]  # cases that failed in the baseline and pass now


def _per_case(df: pl.DataFrame) -> pl.DataFrame:
    has_passed = "passed" in df.columns
    aggs = [pl.col("value").cast(pl.Float64).mean().alias("value"), pl.len().alias("n")]
    if has_passed:
        aggs.append(pl.col("passed").cast(pl.Float64).mean().alias("pass_rate"))  # nulls ignored
    else:
        aggs.append(pl.lit(None, dtype=pl.Float64).alias("pass_rate"))
    return (
        df.filter(pl.col("value").is_not_null())
        .with_columns(pl.col("case_id").cast(pl.Utf8))
        .group_by("case_id")
        .agg(aggs)
    )


def paired_compare(
    current: pl.DataFrame,
    baseline: pl.DataFrame,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    mid_p: bool = True,
) -> PairedResult:
    """Compare one scorer's rows (``case_id``, ``value``, optional ``passed``) between two runs.

    Error rows (null value) are dropped; each case's repeats are averaged; only case ids present in
    both runs count. A case "passes" for the flip lists when at least half its repeats passed.
    """
    joined = _per_case(current).join(_per_case(baseline), on="case_id", suffix="_base").sort("case_id")
    n = joined.height
    if n == 0:
        return PairedResult(0, None, None, None, None, None, 0, None, None, None, None, None, None, [], [])
    cur = joined.get_column("value").to_numpy()
    base = joined.get_column("value_base").to_numpy()
    d = cur - base
    delta_ci = bootstrap_mean_ci(d, confidence=confidence, n_resamples=n_resamples, seed=seed)
    p_value = sign_flip_pvalue(d, n_resamples=n_resamples, seed=seed)

    verd = joined.filter(pl.col("pass_rate").is_not_null() & pl.col("pass_rate_base").is_not_null())
    m = verd.height
    cur_pr = base_pr = pr_delta = pr_p = None
    pr_ci: Interval | None = None
    test: str | None = None
    to_fail: list[str] = []
    to_pass: list[str] = []
    if m:
        pc = verd.get_column("pass_rate").to_numpy()
        pb = verd.get_column("pass_rate_base").to_numpy()
        ids = verd.get_column("case_id").to_list()
        cur_pr, base_pr = float(pc.mean()), float(pb.mean())
        pr_delta = cur_pr - base_pr
        pr_ci = bootstrap_mean_ci(pc - pb, confidence=confidence, n_resamples=n_resamples, seed=seed)
        binary = _is_binary(pc) and _is_binary(pb)
        if binary:
            b = int(np.sum((pb == 1) & (pc == 0)))
            c = int(np.sum((pb == 0) & (pc == 1)))
            pr_p = mcnemar_pvalue(b, c, mid_p=mid_p)
            test = "mcnemar_midp" if mid_p else "mcnemar_exact"
        else:
            pr_p = sign_flip_pvalue(pc - pb, n_resamples=n_resamples, seed=seed)
            test = "sign_flip"
        to_fail = [i for i, a, z in zip(ids, pb, pc, strict=True) if a >= 0.5 > z]
        to_pass = [i for i, a, z in zip(ids, pb, pc, strict=True) if z >= 0.5 > a]
    return PairedResult(
        n_shared=n,
        current_mean=float(cur.mean()),
        baseline_mean=float(base.mean()),
        delta=float(d.mean()),
        delta_ci=delta_ci,
        p_value=p_value,
        n_verdicts=m,
        current_pass_rate=cur_pr,
        baseline_pass_rate=base_pr,
        pass_rate_delta=pr_delta,
        pass_rate_ci=pr_ci,
        pass_rate_p_value=pr_p,
        pass_rate_test=test,
        to_fail=to_fail,
        to_pass=to_pass,
    )


def scorer_intervals(scores: pl.DataFrame) -> dict[str, tuple[Interval | None, Interval | None]]:
    """:func:`compute_intervals` with default settings, as plain tuples (used by :mod:`evalkit.aggregate`)."""
    return {name: (iv.mean_ci, iv.pass_rate_ci) for name, iv in compute_intervals(scores).items()}
