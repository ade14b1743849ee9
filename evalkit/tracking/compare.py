"""``compare``: two runs' MLflow metrics side by side, with deltas."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.errors import UserError
from evalkit.store.db import Store
from evalkit.tracking.experiments import find_run
from evalkit.tracking.payload import TAG

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

SHOWN_TAGS = ("evalkit.suite", "evalkit.agent_ref", "evalkit.models", "evalkit.judges", "evalkit.dataset_sha256",
              "mlflow.source.git.commit", "evalkit.gate")


@dataclass
class MetricDelta:
    metric: str
    a: float | None
    b: float | None
    delta: float | None
    relative: float | None


@dataclass
class Comparison:
    run_a: str
    run_b: str
    mlflow_a: str
    mlflow_b: str
    metrics: list[MetricDelta] = field(default_factory=list)
    tags: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tags"] = {k: {"a": a, "b": b} for k, (a, b) in self.tags.items()}
        return d


def resolve(c: MlflowClient, run_id: str, store: Store | None = None) -> Run:
    """The MLflow run of an evalkit run id: via ``runs.mlflow_run_id`` when the store knows it, else by tag."""
    if store is not None:
        try:
            row = store.get_run(run_id)
        except UserError:
            row = None
        if row and row.get("mlflow_run_id"):
            from mlflow.exceptions import MlflowException

            try:
                return c.get_run(row["mlflow_run_id"])
            except MlflowException:
                pass  # logged to another tracking server: look it up by tag
            run_id = row["run_id"]
    run = find_run(c, run_id)
    if run is None:
        raise UserError(f"run '{run_id}' is not in MLflow: log it with `evalkit sync`")
    return run


def compare_runs(c: MlflowClient, run_a: str, run_b: str, *, store: Store | None = None) -> Comparison:
    """Metric deltas (``b - a``) of two evalkit runs, plus the identity tags of both."""
    ra, rb = resolve(c, run_a, store), resolve(c, run_b, store)
    ma, mb = ra.data.metrics, rb.data.metrics
    out = Comparison(
        run_a=ra.data.tags.get(TAG, run_a), run_b=rb.data.tags.get(TAG, run_b),
        mlflow_a=ra.info.run_id, mlflow_b=rb.info.run_id,
    )
    for key in sorted(set(ma) | set(mb)):
        a, b = ma.get(key), mb.get(key)
        delta = (b - a) if a is not None and b is not None else None
        rel = (delta / abs(a)) if delta is not None and a else None
        out.metrics.append(MetricDelta(key, a, b, delta, rel))
    for key in SHOWN_TAGS:
        ta, tb = ra.data.tags.get(key), rb.data.tags.get(key)
        if ta or tb:
            out.tags[key] = (ta, tb)
    return out
