"""``compare``: two evalkit runs side by side — A the baseline, B the candidate, deltas B − A.

When both runs are in the local store the comparison is the CI gate's paired test
(:func:`evalkit.report.compare.paired_metrics`, the rows of the diff report): per scorer metric the
delta with its paired bootstrap interval, a Holm-adjusted p-value and a verdict, then run-level
totals and the identity tags that differ. That path never imports mlflow.

Otherwise (a run only on a tracking server) it falls back to the runs' MLflow metrics: the headline
metrics only, each with its own interval, and no significance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from evalkit.errors import UserError
from evalkit.store.db import Store
from evalkit.tracking.experiments import find_run
from evalkit.tracking.metric_names import interval_of, is_interval_metric
from evalkit.tracking.payload import TAG

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

# Identity tags: MLflow tag -> the label both paths show.
SHOWN_TAGS = {
    "evalkit.suite": "suite",
    "evalkit.agent_ref": "agent",
    "evalkit.models": "models",
    "evalkit.judges": "judges",
    "evalkit.dataset_sha256": "dataset sha256",
    "mlflow.source.git.commit": "git commit",
}
# Run-level MLflow metrics shown on the fallback path, with the labels of the store path's rows
# (:func:`evalkit.report.compare.run_metrics`); other ``latency_ms/*`` metrics keep their name.
RUN_METRICS = {
    "errors/rate": "error rate",
    "latency_ms/p50": "latency p50 (ms)",
    "latency_ms/p95": "latency p95 (ms)",
    "tokens/total": "tokens",
    "cost_usd/total": "cost (USD)",
    "cases": "cases",
}
_FALLBACK_RUN = ("errors/rate", "cost_usd/total", "cases")  # plus every latency_ms/*
_METRIC_OF_LABEL = {label: name for name, label in RUN_METRICS.items()}
NO_SIGNIFICANCE = ("from MLflow metrics: each run's own 95 % interval, no significance test; "
                   "significance needs both runs in the local store")

@dataclass
class MetricDelta:
    """One scorer metric, B − A. On the store path with the paired test's numbers; on the MLflow
    path with each run's own interval (``a_ci``, ``b_ci``) and no test."""

    metric: str  # "<scorer>/mean" or "<scorer>/pass_rate", as MLflow names it
    a: float | None
    b: float | None
    delta: float | None
    relative: float | None = None
    scorer: str | None = None
    ci: list[float] | None = None  # paired bootstrap interval of the delta
    a_ci: list[float] | None = None
    b_ci: list[float] | None = None
    p: float | None = None
    p_adj: float | None = None  # Holm-adjusted over the gating family; None outside it
    test: str | None = None
    significant: bool | None = None
    regression: bool | None = None
    improvement: bool | None = None
    n: int | None = None  # paired cases

    @property
    def verdict(self) -> str:
        """What the diff report says: regression, improvement, significant (not gating), no significant
        change, or not tested (no p-value: nothing paired); empty without a test (MLflow path)."""
        if self.significant is None:
            return ""
        if self.regression:
            return "regression"
        if self.improvement:
            return "improvement"
        if self.p is None:
            return "not tested"
        return "significant (not gating)" if self.significant else "no significant change"


@dataclass
class RunDelta:
    """A run-level total (error rate, latency, cost, cases), B − A."""

    name: str
    metric: str  # its MLflow metric name
    a: float | None
    b: float | None
    delta: float | None


@dataclass
class Comparison:
    run_a: str
    run_b: str
    source: Literal["store", "mlflow"] = "store"
    method: str = ""
    significance: bool = False
    mlflow_a: str | None = None
    mlflow_b: str | None = None
    metrics: list[MetricDelta] = field(default_factory=list)
    run_metrics: list[RunDelta] = field(default_factory=list)
    tags: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # label -> (a, b)

    @property
    def differing_tags(self) -> dict[str, tuple[str | None, str | None]]:
        return {k: v for k, v in self.tags.items() if v[0] != v[1]}

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for m, row in zip(self.metrics, d["metrics"], strict=True):
            row["verdict"] = m.verdict or None
        d["tags"] = {k: {"a": a, "b": b, "differs": a != b} for k, (a, b) in self.tags.items()}
        return d


def _delta(a: float | None, b: float | None) -> float | None:
    return (b - a) if isinstance(a, int | float) and isinstance(b, int | float) else None


def _relative(a: float | None, delta: float | None) -> float | None:
    return delta / abs(a) if delta is not None and a else None


def _interval(metrics: Mapping[str, float], metric: str) -> list[float] | None:
    lo, hi = interval_of(metrics, metric)
    return None if lo is None or hi is None else [float(lo), float(hi)]


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(float(v)) else None


# -- both runs in the local store: the gate's paired test ------------------------------------------


def store_run(store: Store, run_id: str) -> dict[str, Any] | None:
    """The store's row of a run id (or unique prefix); None when the store does not have it."""
    try:
        return store.get_run(run_id)
    except UserError as exc:
        if "ambiguous" in str(exc):
            raise
        return None


def _identity(store: Store, run: dict[str, Any]) -> dict[str, str | None]:
    """The store's view of the identity tags (the values MLflow gets, with run_meta's models and judges)."""
    from evalkit.report.data import run_meta
    from evalkit.tracking.payload import agent_info, inline_digest

    meta = run_meta(store, run)
    agent = meta.get("agent")
    if agent and agent.get("name"):
        name, version = agent["name"], agent.get("version")
    else:
        name, version, _ = agent_info(run)
    judges = sorted({
        j["judge"] + (f" on {j['model']}" if j.get("model") else "")
        + (f" (prompt {j['prompt_sha256'][:12]})" if j.get("prompt_sha256") else "")
        for j in meta["judges"]
    })
    commit = meta.get("git_commit")
    return {
        "suite": run.get("suite"),
        "agent": (f"{name}@{version}" if version else name) or None,
        "models": ", ".join(meta["models"]) or None,
        "judges": ", ".join(judges) or None,
        "dataset sha256": run.get("dataset_sha256") or inline_digest(store, run["run_id"]),
        "git commit": f"{commit} (dirty)" if commit and meta.get("git_dirty") else commit,
    }


def compare_stored(store: Store, run_a: dict[str, Any], run_b: dict[str, Any]) -> Comparison:
    """Paired comparison of two stored runs (rows of ``store.get_run``), as the diff report and the
    CI gate compute it: paired by case id, bootstrap intervals, Holm-adjusted p-values."""
    from evalkit.report.compare import paired_metrics, run_metrics
    from evalkit.store import reads

    ida, idb = str(run_a["run_id"]), str(run_b["run_id"])
    sa, sb = reads.score_frame(store, ida), reads.score_frame(store, idb)
    out = Comparison(run_a=ida, run_b=idb, source="store")
    if sa.height and sb.height:
        out.method, rows = paired_metrics(sb, sa, ida)  # B is the candidate, A the baseline
        out.significance = True
    else:
        out.method, rows = "nothing to compare: a run has no scores", []
    for r in rows:
        out.metrics.append(MetricDelta(
            metric=f"{r['scorer']}/{r['metric']}", scorer=r["scorer"], a=r["a"], b=r["b"], delta=r["delta"],
            relative=_relative(r["a"], r["delta"]), ci=r["ci"], p=r["p"], p_adj=r["p_adj"], test=r["test"],
            significant=r["significant"], regression=r["regression"], improvement=r["improvement"], n=r["n"],
        ))
    for r in run_metrics(run_a.get("summary") or {}, run_b.get("summary") or {}):
        out.run_metrics.append(RunDelta(name=r["name"], metric=_METRIC_OF_LABEL.get(r["name"], r["name"]),
                                        a=r["a"], b=r["b"], delta=r["delta"]))
    ta, tb = _identity(store, run_a), _identity(store, run_b)
    out.tags = {k: (ta.get(k), tb.get(k)) for k in ta if ta.get(k) or tb.get(k)}
    return out


# -- otherwise: MLflow metrics, headline only ------------------------------------------------------


def resolve(c: MlflowClient, run_id: str, store: Store | None = None) -> Run:
    """The MLflow run of an evalkit run id: via ``runs.mlflow_run_id`` when the store knows it, else by tag."""
    if store is not None:
        row = store_run(store, run_id)
        if row and row.get("mlflow_run_id"):
            from mlflow.exceptions import MlflowException

            try:
                return c.get_run(row["mlflow_run_id"])
            except MlflowException:
                pass  # logged to another tracking server: look it up by tag
        if row:
            run_id = row["run_id"]
    run = find_run(c, run_id)
    if run is None:
        raise UserError(f"run '{run_id}' is not in MLflow: log it with `evalkit sync`")
    return run


def _is_run_headline(name: str) -> bool:
    return name in _FALLBACK_RUN or name.startswith("latency_ms/")


def compare_mlflow(c: MlflowClient, run_a: str, run_b: str, *, store: Store | None = None) -> Comparison:
    """Headline MLflow metrics of two runs (``*/mean``, ``*/pass_rate`` with their intervals,
    ``errors/rate``, ``latency_ms/*``, ``cost_usd/total``, ``cases``), deltas ``b - a``, no significance."""
    ra, rb = resolve(c, run_a, store), resolve(c, run_b, store)
    ma, mb = ra.data.metrics, rb.data.metrics
    out = Comparison(
        run_a=ra.data.tags.get(TAG, run_a), run_b=rb.data.tags.get(TAG, run_b), source="mlflow",
        method=NO_SIGNIFICANCE, mlflow_a=ra.info.run_id, mlflow_b=rb.info.run_id,
    )
    names = sorted(set(ma) | set(mb))
    for key in names:
        if is_interval_metric(key):
            continue
        scorer, _, stat = key.rpartition("/")
        if scorer and stat in ("mean", "pass_rate"):
            a, b = _finite(ma.get(key)), _finite(mb.get(key))
            d = _delta(a, b)
            out.metrics.append(MetricDelta(
                metric=key, scorer=scorer, a=a, b=b, delta=d, relative=_relative(a, d),
                a_ci=_interval(ma, key), b_ci=_interval(mb, key),
            ))
    for key in [*RUN_METRICS, *names]:
        if _is_run_headline(key) and (key in ma or key in mb) and all(r.metric != key for r in out.run_metrics):
            a, b = _finite(ma.get(key)), _finite(mb.get(key))
            out.run_metrics.append(RunDelta(name=RUN_METRICS.get(key, key), metric=key, a=a, b=b, delta=_delta(a, b)))
    for key, label in SHOWN_TAGS.items():
        ta, tb = ra.data.tags.get(key), rb.data.tags.get(key)
        if ta or tb:
            out.tags[label] = (ta, tb)
    return out


def compare_runs(c: MlflowClient | None, run_a: str, run_b: str, *, store: Store | None = None) -> Comparison:
    """Compare two evalkit runs: from the store with the paired test when it has both, else from MLflow
    (``c``, required then)."""
    if store is not None:
        ra, rb = store_run(store, run_a), store_run(store, run_b)
        if ra is not None and rb is not None:
            return compare_stored(store, ra, rb)
    if c is None:
        raise UserError("a run is not in the local store, and no MLflow client to look it up")
    return compare_mlflow(c, run_a, run_b, store=store)
