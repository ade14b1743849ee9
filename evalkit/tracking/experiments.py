"""Finding evalkit's experiments and runs in MLflow (by suite, team prefix, or evalkit run id)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit.errors import UserError
from evalkit.tracking.payload import TAG
from evalkit.tracking.uri import experiment_name

if TYPE_CHECKING:
    from mlflow.entities import Experiment, Run
    from mlflow.tracking import MlflowClient


def experiments(c: MlflowClient, *, suite: str | None = None, team: str | None = None) -> list[Experiment]:
    """The experiment of ``suite`` (under the team prefix), or every experiment (of the team)."""
    if suite:
        name = experiment_name(suite, team)
        exp = c.get_experiment_by_name(name)
        if exp is None or exp.lifecycle_stage != "active":
            raise UserError(f"no MLflow experiment '{name}' yet: log runs with `evalkit run` or `evalkit sync`")
        return [exp]
    prefix = experiment_name("", team)
    filt = f"name LIKE '{prefix.replace(chr(39), '')}%'" if prefix else None
    out: list[Experiment] = []
    token = None
    while True:
        page = c.search_experiments(max_results=100, filter_string=filt, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def find_run(c: MlflowClient, run_id: str, experiment_ids: list[str] | None = None) -> Run | None:
    """The MLflow run tagged with evalkit run id ``run_id`` (exact, or a unique prefix)."""
    ids = experiment_ids or [e.experiment_id for e in experiments(c)]
    if not ids:
        return None
    safe = run_id.replace("'", "")
    found = list(c.search_runs(ids, f"tags.`{TAG}` = '{safe}'", max_results=2))
    if not found:
        found = list(c.search_runs(ids, f"tags.`{TAG}` LIKE '{safe}%'", max_results=3))
        if len(found) > 1:
            names = ", ".join(r.data.tags.get(TAG, "") for r in found)
            raise UserError(f"run id prefix '{run_id}' is ambiguous in MLflow: {names}")
    return found[0] if found else None
