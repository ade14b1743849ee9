"""Comparison with a baseline run: paired by case id, per scorer, with significance."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import BaseModel, Field

from evalkit import stats
from evalkit.errors import UserError

if TYPE_CHECKING:
    from evalkit.store import Store

class MetricComparison(BaseModel):
    """One metric of one scorer, current vs baseline, on the cases both runs scored."""

    scorer: str
    metric: Literal["mean", "pass_rate"]
    n_shared: int
    baseline: float | None
    current: float | None
    delta: float | None  # current - baseline
    ci: tuple[float, float] | None  # paired bootstrap interval of the delta
    p_value: float | None  # two-sided
    p_adjusted: float | None = None  # Holm-adjusted over the gating family
    test: str
    gating: bool  # part of the regression decision (see compare_runs)
    significant: bool = False
    regression: bool = False  # significant drop beyond min_effect
    improvement: bool = False  # significant rise beyond min_effect
    to_fail: list[str] = Field(default_factory=list)
    to_pass: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.scorer}/{self.metric}"


class BaselineComparison(BaseModel):
    """All comparisons with one baseline run, and the settings that decided significance."""

    baseline_run_id: str | None = None
    alpha: float
    min_effect: float
    adjust: Literal["holm", "none"]
    n_current_cases: int
    n_baseline_cases: int
    n_shared_cases: int
    comparisons: list[MetricComparison]

    @property
    def regressions(self) -> list[MetricComparison]:
        return [c for c in self.comparisons if c.regression]


def _check_columns(df: pl.DataFrame, what: str) -> pl.DataFrame:
    missing = [c for c in ("case_id", "name", "value") if c not in df.columns]
    if missing:
        raise UserError(f"{what} score table lacks column(s) {', '.join(missing)}")
    return df.with_columns(pl.col("case_id").cast(pl.Utf8), pl.col("value").cast(pl.Float64))


def _holm(pvalues: list[float]) -> list[float]:
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def compare_runs(
    current: pl.DataFrame,
    baseline: pl.DataFrame,
    *,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    adjust: Literal["holm", "none"] = "holm",
    baseline_run_id: str | None = None,
    confidence: float = stats.DEFAULT_CONFIDENCE,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> BaselineComparison:
    """Compare every scorer present in both score tables.

    Tables have columns ``case_id``, ``name``, ``value`` and optionally ``repeat``, ``passed``,
    ``error``; error rows (null value) are excluded. Higher values and pass rates are better.

    Gating family: each scorer's pass rate when it has verdicts, plus its mean when its values are
    not just 0/1 (a judge's 1-5 scale). P-values of the family are Holm-adjusted (``adjust="holm"``)
    so more scorers do not mean more false alarms. A *regression* is a gating comparison with
    adjusted p < ``alpha`` and ``delta < -min_effect`` (min_effect in the metric's own units).
    """
    cur = _check_columns(current, "current")
    base = _check_columns(baseline, "baseline")
    cur_ok = cur.filter(pl.col("value").is_not_null())
    base_ok = base.filter(pl.col("value").is_not_null())
    cur_cases = set(cur_ok.get_column("case_id").to_list())
    base_cases = set(base_ok.get_column("case_id").to_list())
    names = sorted(set(cur_ok.get_column("name").to_list()) & set(base_ok.get_column("name").to_list()))

    comparisons: list[MetricComparison] = []
    for name in names:
        c = cur_ok.filter(pl.col("name") == name)
        b = base_ok.filter(pl.col("name") == name)
        r = stats.paired_compare(c, b, confidence=confidence, n_resamples=n_resamples, seed=seed)
        values = pl.concat([c.get_column("value"), b.get_column("value")])
        binary = bool(values.is_in([0.0, 1.0]).all())
        has_verdicts = r.n_verdicts > 0
        comparisons.append(
            MetricComparison(
                scorer=name,
                metric="mean",
                n_shared=r.n_shared,
                baseline=r.baseline_mean,
                current=r.current_mean,
                delta=r.delta,
                ci=r.delta_ci,
                p_value=r.p_value,
                test="paired_sign_flip",
                gating=not (has_verdicts and binary),
            )
        )
        if has_verdicts:
            comparisons.append(
                MetricComparison(
                    scorer=name,
                    metric="pass_rate",
                    n_shared=r.n_verdicts,
                    baseline=r.baseline_pass_rate,
                    current=r.current_pass_rate,
                    delta=r.pass_rate_delta,
                    ci=r.pass_rate_ci,
                    p_value=r.pass_rate_p_value,
                    test=r.pass_rate_test or "",
                    gating=True,
                    to_fail=r.to_fail,
                    to_pass=r.to_pass,
                )
            )

    family = [c for c in comparisons if c.gating and c.p_value is not None]
    raw = [float(c.p_value) for c in family if c.p_value is not None]
    adjusted = _holm(raw) if adjust == "holm" else raw
    for comp, p_adj in zip(family, adjusted, strict=True):
        comp.p_adjusted = p_adj
    for comp in comparisons:
        p = comp.p_adjusted if comp.gating else comp.p_value
        comp.significant = p is not None and p < alpha
        if comp.significant and comp.delta is not None:
            comp.regression = comp.gating and comp.delta < 0 and -comp.delta > min_effect
            comp.improvement = comp.delta > 0 and comp.delta > min_effect
    return BaselineComparison(
        baseline_run_id=baseline_run_id,
        alpha=alpha,
        min_effect=min_effect,
        adjust=adjust,
        n_current_cases=len(cur_cases),
        n_baseline_cases=len(base_cases),
        n_shared_cases=len(cur_cases & base_cases),
        comparisons=comparisons,
    )


# -- reading runs from the store -------------------------------------------------------------------


def load_scores(store: Store, run_id: str) -> pl.DataFrame:
    """A run's score rows (:func:`evalkit.store.reads.score_frame`), what the gate and comparisons read."""
    from evalkit.store.reads import score_frame

    return score_frame(store, run_id)


def _primary_mean(summary: Any) -> float:
    if not isinstance(summary, dict):
        return float("-inf")
    for s in summary.get("scorers") or []:
        for key in ("pass_rate", "mean"):
            if s.get(key) is not None:
                return float(s[key])
    return float("-inf")


class NoBaseline(UserError):
    """A keyword baseline (``last``, ``best``, ``last-on-branch:…``) found no earlier run: a first build."""


def resolve_baseline(store: Store, spec: str, *, suite: str, exclude_run_id: str | None = None) -> str:
    """The run id meant by ``--baseline``: a run id (or unique prefix), ``last``, ``best`` or
    ``last-on-branch:BRANCH``. Only completed runs of ``suite`` are candidates for the keywords.

    ``best`` ranks by the first scorer's pass rate (else mean) in the stored summary.
    ``last-on-branch`` reads ``git_branch`` from the run's column or its stored config.
    """
    spec = spec.strip()
    keyword = spec in ("last", "best") or spec.startswith("last-on-branch:")
    if not keyword:
        return str(store.get_run(spec)["run_id"])
    rows = store.query(
        "SELECT * FROM runs WHERE suite = ? AND status = 'completed' ORDER BY started_at DESC", [suite]
    )
    rows = [r for r in rows if r["run_id"] != exclude_run_id]
    if spec.startswith("last-on-branch:"):
        branch = spec.split(":", 1)[1]

        def branch_of(r: dict[str, Any]) -> str | None:
            if r.get("git_branch"):
                return str(r["git_branch"])
            cfg = r.get("config")
            cfg = json.loads(cfg) if isinstance(cfg, str) else cfg
            return (cfg or {}).get("git_branch") if isinstance(cfg, dict) else None

        rows = [r for r in rows if branch_of(r) == branch]
    if not rows:
        raise NoBaseline(f"--baseline {spec}: no completed run of suite '{suite}' to compare with; run the suite "
                         "there first, or pass a run id (see `evalkit runs`)")
    if spec == "best":

        def score(r: dict[str, Any]) -> float:
            s = r.get("summary")
            return _primary_mean(json.loads(s) if isinstance(s, str) else s)

        return str(max(rows, key=score)["run_id"])
    return str(rows[0]["run_id"])
