"""Run aggregation with polars: per-scorer means and pass rates, latency, errors, usage."""

from __future__ import annotations

from typing import Any

import polars as pl

from evalkit.schema import RunSummary, ScorerSummary


def summarise(
    run_id: str,
    suite: str,
    cases: pl.DataFrame,
    scores: pl.DataFrame,
    *,
    status: str = "completed",
    intervals: bool = True,
    started_at: Any = None,
    ended_at: Any = None,
) -> RunSummary:
    """Summarise one run from its case rows (status, latency_ms, tokens, cost) and score rows."""
    n = cases.height
    errors = cases.filter(pl.col("status") != "ok").height if n else 0
    lat = cases.filter(pl.col("status") == "ok")["latency_ms"] if n else pl.Series([], dtype=pl.Float64)
    tokens = int((cases["input_tokens"].fill_null(0) + cases["output_tokens"].fill_null(0)).sum()) if n else 0
    cost = float(cases["cost_usd"].fill_null(0).sum()) if n else 0.0
    per: list[ScorerSummary] = []
    if scores.height:
        agg = (
            scores.group_by("name", maintain_order=True)
            .agg(
                pl.col("value").drop_nulls().mean().alias("mean"),
                pl.col("passed").drop_nulls().cast(pl.Float64).mean().alias("pass_rate"),
                pl.col("value").is_not_null().sum().alias("scored"),
                pl.col("value").is_null().sum().alias("errors"),
                pl.col("passed").fill_null(False).sum().alias("passed"),
            )
        )
        cis: dict[str, tuple[Any, Any]] = {}
        if intervals:
            cis = _intervals(scores)
        for row in agg.iter_rows(named=True):
            mean_ci, pr_ci = cis.get(row["name"], (None, None))
            per.append(ScorerSummary(
                name=row["name"], mean=row["mean"], pass_rate=row["pass_rate"], scored=int(row["scored"]),
                errors=int(row["errors"]), passed=int(row["passed"]), mean_ci=mean_ci, pass_rate_ci=pr_ci,
            ))
    return RunSummary(
        run_id=run_id, suite=suite, status=status, cases=n, errors=errors,  # type: ignore[arg-type]
        error_rate=(errors / n) if n else 0.0,
        latency_p50_ms=float(lat.quantile(0.5, "linear")) if lat.len() else None,  # type: ignore[arg-type]
        latency_p95_ms=float(lat.quantile(0.95, "linear")) if lat.len() else None,  # type: ignore[arg-type]
        tokens_total=tokens, cost_usd_total=cost, scorers=per, started_at=started_at, ended_at=ended_at,
    )


def _intervals(scores: pl.DataFrame) -> dict[str, tuple[Any, Any]]:
    """95 % intervals per scorer, from :mod:`evalkit.stats` when it is available."""
    try:
        from evalkit.stats import scorer_intervals
    except ImportError:
        return {}
    return scorer_intervals(scores)
