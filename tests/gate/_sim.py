"""Scripted agents and judges for gate tests: vectorised, seeded, no model calls."""

from __future__ import annotations

import numpy as np
import polars as pl

from evalkit.schema import RunSummary, ScorerSummary
from evalkit.stats import compute_intervals


def agent_truth(n: int, rate: float, seed: int) -> np.ndarray:
    """Which of ``n`` cases a scripted agent truly gets right (exactly round(rate * n) of them)."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(n, dtype=bool)
    truth[rng.choice(n, size=round(rate * n), replace=False)] = True
    return truth


def regress(truth: np.ndarray, points: float, seed: int) -> np.ndarray:
    """The same agent after a change that breaks ``points`` (a fraction) of all cases it solved."""
    rng = np.random.default_rng(seed)
    out = truth.copy()
    k = round(points * len(truth))
    out[rng.choice(np.flatnonzero(truth), size=k, replace=False)] = False
    return out


def judge(
    truth: np.ndarray,
    *,
    flip: float,
    seed: int,
    repeats: int = 1,
    name: str = "correctness",
    error_rate: float = 0.0,
) -> pl.DataFrame:
    """Score rows of a scripted judge that flips each verdict with probability ``flip``."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    t = np.tile(truth, repeats)
    verdict = t ^ (rng.random(n * repeats) < flip)
    errored = rng.random(n * repeats) < error_rate
    value = np.where(errored, np.nan, verdict.astype(float))
    return pl.DataFrame(
        {
            "case_id": [f"case-{i:04d}" for i in range(n)] * repeats,
            "repeat": np.repeat(np.arange(repeats), n),
            "name": name,
            "value": value,
            "passed": pl.Series(
                [None if e else bool(v) for e, v in zip(errored, verdict, strict=True)], dtype=pl.Boolean
            ),
            "error": ["judge: HTTP 500" if e else None for e in errored],
        }
    ).with_columns(pl.col("value").fill_nan(None))


def summarise(
    scores: pl.DataFrame,
    *,
    run_id: str = "run-cur",
    suite: str = "demo",
    case_errors: int = 0,
    intervals: bool = True,
    n_resamples: int = 1000,
) -> RunSummary:
    """A RunSummary the way the aggregator builds one (means over non-null rows, optional intervals)."""
    cis = compute_intervals(scores, n_resamples=n_resamples) if intervals else {}
    scorers = []
    for name in scores.get_column("name").unique(maintain_order=True).to_list():
        sub = scores.filter(pl.col("name") == name)
        ok = sub.filter(pl.col("value").is_not_null())
        verdicts = ok.get_column("passed").drop_nulls()
        iv = cis.get(name)
        scorers.append(
            ScorerSummary(
                name=name,
                mean=ok.get_column("value").mean() if ok.height else None,  # type: ignore[arg-type]
                pass_rate=verdicts.cast(pl.Float64).mean() if verdicts.len() else None,  # type: ignore[arg-type]
                scored=ok.height,
                errors=sub.height - ok.height,
                passed=int(verdicts.cast(pl.Int64).sum() or 0),
                mean_ci=iv.mean_ci if iv else None,
                pass_rate_ci=iv.pass_rate_ci if iv else None,
            )
        )
    runs = scores.select("case_id", "repeat").unique().height + case_errors
    # the one error rate: a case run errored when its target failed or any of its scores errored
    errored = case_errors + scores.filter(pl.col("value").is_null()).select("case_id", "repeat").unique().height
    return RunSummary(
        run_id=run_id,
        suite=suite,
        cases=runs,
        errors=errored,
        error_rate=errored / runs if runs else 0.0,
        planned=runs,
        completed=runs - errored,
        latency_p50_ms=120.0,
        latency_p95_ms=480.0,
        scorers=scorers,
    )
