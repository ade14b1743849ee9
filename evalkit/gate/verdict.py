"""The gate verdict: thresholds, baseline regressions and the error budget, decided into an exit code."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import polars as pl
from pydantic import BaseModel, Field

from evalkit import stats
from evalkit.errors import EXIT_GATE_FAILED, EXIT_INFRA, EXIT_OK
from evalkit.gate.baseline import BaselineComparison, MetricComparison, compare_runs
from evalkit.gate.thresholds import GLOBAL_METRICS, JUDGE_METRICS, Threshold, ThresholdCheck, check_thresholds
from evalkit.schema import RunSummary

Interval = tuple[float, float]

DEFAULT_MAX_ERROR_RATE = 0.05
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_EFFECT = 0.0


GateStatus = Literal["passed", "failed", "infra_error", "incomplete"]


class GateResult(BaseModel):
    """What the gate decided and why: the one verdict type of every door.

    ``exit_code``: 0 passed, 1 failed (quality), 3 infrastructure errors or an incomplete run (its
    ledger does not account for every planned case, or it was interrupted: quality not judged).
    """

    status: GateStatus
    passed: bool
    exit_code: int
    reason: str
    checks: list[ThresholdCheck] = Field(default_factory=list)
    regressions: list[MetricComparison] = Field(default_factory=list)
    baseline: BaselineComparison | None = None
    error_rate: float  # the run's one error rate: errored case × repeats / finished ones
    max_error_rate: float
    fail_on_regression: bool
    alpha: float
    min_effect: float
    metrics: dict[str, float | None] = Field(default_factory=dict)  # summary metrics plus gate extras
    intervals: dict[str, Interval | None] = Field(default_factory=dict)


def _score_names(summary: RunSummary, scores: pl.DataFrame | None) -> list[str]:
    names = [s.name for s in summary.scorers]
    if scores is not None and scores.height:
        names += [
            n for n in scores.get_column("name").unique(maintain_order=True).to_list() if n not in names
        ]
    return names


def gate_metrics(
    summary: RunSummary,
    scores: pl.DataFrame | None = None,
    *,
    confidence: float = stats.DEFAULT_CONFIDENCE,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> tuple[dict[str, float | None], dict[str, Interval | None]]:
    """The metrics thresholds can name, and the interval of each metric that has one.

    Starts from ``summary.metrics()``; fills intervals the summary lacks from ``scores`` and adds
    ``<scorer>/pass_at_k``, ``<scorer>/pass_all_k`` and ``<scorer>/flaky_rate``. A scorer that scored
    nothing keeps its metric names with a ``None`` value, so a threshold on it fails rather than
    being a usage error; a metric the scorer cannot produce (a pass rate without verdicts) is absent.
    """
    metrics: dict[str, float | None] = {k: None for k in GLOBAL_METRICS}
    metrics.update(summary.metrics())
    intervals: dict[str, Interval | None] = {}
    errors, finished = int(summary.errors), summary.cases - summary.cancelled
    if finished > 0:
        intervals["errors/rate"] = stats.wilson_interval(errors, finished, confidence)
    else:
        intervals["errors/rate"] = None

    by_name = {s.name: s for s in summary.scorers}
    have_scores = scores is not None and scores.height > 0
    names = _score_names(summary, scores)
    need = [
        n
        for n in names
        if n not in by_name
        or by_name[n].mean_ci is None
        or (by_name[n].pass_rate is not None and by_name[n].pass_rate_ci is None)
    ]
    computed: dict[str, stats.ScorerIntervals] = {}
    repeats: dict[str, stats.RepeatSummary] = {}
    if have_scores and scores is not None:
        sub = scores.filter(pl.col("name").is_in(need)) if need else scores.clear()
        computed = stats.compute_intervals(sub, confidence=confidence, n_resamples=n_resamples, seed=seed)
        repeats = stats.repeat_summary(scores)

    for name in names:
        s = by_name.get(name)
        mean = s.mean if s else None
        pass_rate = s.pass_rate if s else None
        if s is None and have_scores and scores is not None:
            rows = scores.filter((pl.col("name") == name) & pl.col("value").is_not_null())
            if rows.height:
                mean = float(rows.get_column("value").cast(pl.Float64).mean())  # type: ignore[arg-type]
                if "passed" in rows.columns and rows.get_column("passed").drop_nulls().len():
                    pass_rate = float(rows.get_column("passed").drop_nulls().cast(pl.Float64).mean())  # type: ignore[arg-type]
        scored_any = mean is not None
        mean_ci = (s.mean_ci if s else None) or (computed[name].mean_ci if name in computed else None)
        pr_ci = (s.pass_rate_ci if s else None) or (computed[name].pass_rate_ci if name in computed else None)
        metrics[f"{name}/mean"] = mean
        intervals[f"{name}/mean"] = mean_ci
        metrics[f"{name}/ci_low"] = mean_ci[0] if mean_ci else None
        metrics[f"{name}/ci_high"] = mean_ci[1] if mean_ci else None
        if pass_rate is not None or not scored_any:
            metrics[f"{name}/pass_rate"] = pass_rate
            intervals[f"{name}/pass_rate"] = pr_ci
            metrics[f"{name}/pass_rate_ci_low"] = pr_ci[0] if pr_ci else None
            metrics[f"{name}/pass_rate_ci_high"] = pr_ci[1] if pr_ci else None
        if s is None and have_scores and scores is not None:
            metrics[f"{name}/errors"] = float(
                scores.filter((pl.col("name") == name) & pl.col("value").is_null()).height
            )
        else:
            metrics.setdefault(f"{name}/errors", float(s.errors) if s else None)
        if s is not None and s.judge is not None:
            for key in JUDGE_METRICS:  # a judge without a calibration has no agreement: a threshold on it fails
                metrics.setdefault(f"{name}/{key}", None)
            intervals[f"{name}/corrected_pass_rate"] = s.judge.corrected_pass_rate_ci
        rep = repeats.get(name)
        if rep is not None and rep.judged:
            for key, val in (
                ("pass_at_k", rep.pass_at_k),
                ("pass_all_k", rep.pass_all_k),
                ("flaky_rate", rep.flaky_rate),
            ):
                metrics[f"{name}/{key}"] = val
                intervals[f"{name}/{key}"] = (
                    None if val is None else stats.wilson_interval(val * rep.judged, rep.judged, confidence)
                )
        elif not scored_any:
            for key in ("pass_at_k", "pass_all_k", "flaky_rate"):
                metrics[f"{name}/{key}"] = None
                intervals[f"{name}/{key}"] = None
    return metrics, intervals


def evaluate_gate(
    summary: RunSummary,
    scores: pl.DataFrame | None,
    thresholds: Iterable[Threshold],
    baseline_scores: pl.DataFrame | None = None,
    *,
    fail_on_regression: bool = False,
    min_effect: float = DEFAULT_MIN_EFFECT,
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
    alpha: float = DEFAULT_ALPHA,
    baseline_run_id: str | None = None,
    resume_command: str | None = None,
    min_judge_agreement: float | None = None,
    adjust: Literal["holm", "none"] = "holm",
    confidence: float = stats.DEFAULT_CONFIDENCE,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> GateResult:
    """Decide the gate for a finished run.

    Raises :class:`~evalkit.errors.UserError` (exit 2) for thresholds on unknown metrics. Otherwise,
    in order: ``incomplete`` (exit 3) when the run did not complete or its ledger does not account
    for every planned case × repeat (``resume_command`` says how to go on); ``infra_error`` (exit 3)
    when the run's error rate exceeds ``max_error_rate`` — a provider outage is not a quality
    verdict; ``failed`` (exit 1) when a threshold fails or, with ``fail_on_regression``, a
    significant drop against the baseline exceeds ``min_effect``; else ``passed`` (exit 0).
    Regressions are reported even without ``fail_on_regression``. ``min_judge_agreement`` adds one
    check per LLM-judge scorer: its judge@version × model must be calibrated with at least that
    agreement (a judge without a calibration fails the check, saying so).
    """
    metrics, intervals = gate_metrics(
        summary, scores, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    checks = check_thresholds(thresholds, metrics, intervals)
    if min_judge_agreement is not None:
        checks += judge_agreement_checks(summary, min_judge_agreement)

    comparison: BaselineComparison | None = None
    if baseline_scores is not None and scores is not None:
        comparison = compare_runs(
            scores,
            baseline_scores,
            alpha=alpha,
            min_effect=min_effect,
            adjust=adjust,
            baseline_run_id=baseline_run_id,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
        )
    regressions = comparison.regressions if comparison else []

    error_rate = float(summary.error_rate)
    failed_checks = [c for c in checks if not c.passed]
    incomplete = _incomplete(summary, resume_command)

    status: GateStatus
    if incomplete is not None:
        status, code, reason = "incomplete", EXIT_INFRA, incomplete
    elif error_rate > max_error_rate:
        status = "infra_error"
        code = EXIT_INFRA
        reason = (
            f"error rate {error_rate:.1%} ({summary.errors} of {summary.cases - summary.cancelled} case runs "
            f"errored) exceeds --max-error-rate {max_error_rate:.1%}: infrastructure problem, quality not judged"
        )
    elif failed_checks or (fail_on_regression and regressions):
        status, code = "failed", EXIT_GATE_FAILED
        parts = [c.message for c in failed_checks]
        if fail_on_regression:
            parts += [
                f"{r.label} regressed {r.delta:+.3g} vs baseline (p={r.p_adjusted if r.p_adjusted is not None else r.p_value:.3g})"
                for r in regressions
            ]
        reason = "; ".join(parts)
    else:
        status, code = "passed", EXIT_OK
        n = len(checks)
        reason = f"{n} threshold(s) met" if n else "no thresholds"
        if comparison is not None:
            reason += f"; {len(regressions)} significant regression(s) vs baseline"
            if regressions and not fail_on_regression:
                reason += " (not gating: --fail-on-regression not set)"
    return GateResult(
        status=status,
        passed=code == EXIT_OK,
        exit_code=code,
        reason=reason,
        checks=checks,
        regressions=regressions,
        baseline=comparison,
        error_rate=error_rate,
        max_error_rate=max_error_rate,
        fail_on_regression=fail_on_regression,
        alpha=alpha,
        min_effect=min_effect,
        metrics=metrics,
        intervals=intervals,
    )


def judge_agreement_checks(summary: RunSummary, minimum: float) -> list[ThresholdCheck]:
    """One check per judge scorer: calibrated, with agreement >= ``minimum``."""
    checks = []
    for name, j in summary.judges:
        metric = f"{name}/judge/agreement"
        who = f"judge {j.ref}" + (f" ({j.model})" if j.model else "")
        if j.agreement is None:
            message = (f"{who} has no calibration: --min-judge-agreement {minimum:g} needs one "
                       f"(evalkit calibrate {j.ref.partition('@')[0]} --builtin, or --labels FILE)")
            ok = False
        else:
            ok = j.agreement >= minimum
            message = (f"{who}: agreement with humans {j.agreement:.3f} ({j.agreement_metric}, "
                       f"{j.calibration_items} items) {'>=' if ok else '<'} {minimum:g}")
        checks.append(ThresholdCheck(metric=metric, op=">=", value=minimum, mode="point", point=j.agreement,
                                     interval=None, observed=j.agreement, passed=ok, message=message))
    return checks


def _incomplete(summary: RunSummary, resume_command: str | None) -> str | None:
    """Why the run cannot be judged (not completed, cases missing or cancelled), or None."""
    hint = f"; continue with: {resume_command}" if resume_command else ""
    planned = summary.planned if summary.planned is not None else summary.cases
    if summary.missing:
        return (f"run {summary.status}: {summary.missing} of {planned} planned case × repeats are missing "
                f"(never recorded){hint}")
    if summary.status != "completed" or summary.cancelled:
        return (f"run {summary.status}: {summary.cancelled} of {planned} planned case × repeats were cancelled, "
                f"quality not judged{hint}")
    if planned == 0:
        return "run has no cases: nothing to judge"
    return None
