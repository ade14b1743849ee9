"""Run aggregation with polars: the ledger, per-scorer means and pass rates, latency, errors, usage."""

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
    planned: int | None = None,
    intervals: bool = True,
    started_at: Any = None,
    ended_at: Any = None,
) -> RunSummary:
    """Summarise one run from its case rows and score rows (:mod:`evalkit.store.reads` frames).

    The error rate is the one evalkit reports everywhere: errored case × repeats (the target or any
    scorer failed) over those that finished (completed + errored). Not-applicable scores are
    counted apart and never make a case errored.
    """
    n = cases.height
    outcome = cases["outcome"] if n else pl.Series([], dtype=pl.Utf8)
    completed = int((outcome == "completed").sum()) if n else 0
    errored = int((outcome == "errored").sum()) if n else 0
    cancelled = int((outcome == "cancelled").sum()) if n else 0
    finished = completed + errored
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
                (pl.col("outcome") == "ok").sum().alias("scored"),
                (pl.col("outcome") == "error").sum().alias("errors"),
                (pl.col("outcome") == "not_applicable").sum().alias("not_applicable"),
                pl.col("passed").fill_null(False).sum().alias("passed"),
            )
        )
        cis: dict[str, tuple[Any, Any]] = {}
        if intervals:
            from evalkit.stats import scorer_intervals

            cis = scorer_intervals(scores)
        for row in agg.iter_rows(named=True):
            mean_ci, pr_ci = cis.get(row["name"], (None, None))
            per.append(ScorerSummary(
                name=row["name"], mean=row["mean"], pass_rate=row["pass_rate"], scored=int(row["scored"]),
                errors=int(row["errors"]), passed=int(row["passed"]), not_applicable=int(row["not_applicable"]),
                mean_ci=mean_ci, pass_rate_ci=pr_ci,
            ))
    missing = max(0, planned - n) if planned is not None else 0
    return RunSummary(
        run_id=run_id, suite=suite, status=status, cases=n, errors=errored,  # type: ignore[arg-type]
        error_rate=(errored / finished) if finished else 0.0, planned=planned, completed=completed,
        cancelled=cancelled, missing=missing,
        latency_p50_ms=float(lat.quantile(0.5, "linear")) if lat.len() else None,  # type: ignore[arg-type]
        latency_p95_ms=float(lat.quantile(0.95, "linear")) if lat.len() else None,  # type: ignore[arg-type]
        tokens_total=tokens, cost_usd_total=cost, scorers=per, started_at=started_at, ended_at=ended_at,
    )
