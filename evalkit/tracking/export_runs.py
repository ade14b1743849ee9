"""``export``: runs to a folder (DuckDB rows as Parquet, MLflow run data and artifacts) for ``import``.

Layout::

    DIR/manifest.json                 format, runs (evalkit run id, suite, experiment, in MLflow or not)
    DIR/store/<table>.parquet         rows of runs, case_results, scores, spans for those runs
    DIR/mlflow/<run id>/run.json      status, times, params, tags, full metric history, dataset inputs
    DIR/mlflow/<run id>/artifacts/    the run's artifacts
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import UserError
from evalkit.redact import redact
from evalkit.store import reads
from evalkit.store.db import Store
from evalkit.tracking.compare import resolve

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

FORMAT = "evalkit-export"
VERSION = 1
TABLES = ("runs", "case_results", "scores", "spans", "human_labels", "judge_calibrations")


def sql_list(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def table_query(table: str, ids: str) -> str:
    """Every stored row of the runs ``ids`` (a SQL list) in ``table``, all columns (outcomes included);
    spans by run or by the trace ids of the runs' cases."""
    if table == "spans":
        return f"SELECT * FROM spans WHERE run_id IN ({ids}) OR trace_id IN ({reads.trace_ids_sql(ids)})"
    return f"SELECT * FROM {table} WHERE run_id IN ({ids})"


def export_store(store: Store, run_ids: list[str], folder: Path) -> dict[str, int]:
    """Write the DuckDB rows of ``run_ids`` as Parquet; returns row counts per table."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = sql_list(run_ids)
    counts = {}
    for table in TABLES:
        path = str(folder / f"{table}.parquet").replace("'", "''")
        store.execute(f"COPY ({table_query(table, ids)}) TO '{path}' (FORMAT parquet)")
        counts[table] = int(store.execute(f"SELECT count(*) FROM read_parquet('{path}')")[0][0])
    return counts


def export_mlflow_run(c: MlflowClient, mlflow_run_id: str, folder: Path) -> dict[str, Any]:
    """Everything MLflow holds for one run, as JSON plus downloaded artifacts."""
    run = c.get_run(mlflow_run_id)
    exp = c.get_experiment(run.info.experiment_id)
    metrics = []
    for key in sorted(run.data.metrics):
        for m in c.get_metric_history(mlflow_run_id, key):
            metrics.append({"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step})
    inputs = []
    for di in run.inputs.dataset_inputs if run.inputs else []:
        d = di.dataset
        inputs.append({
            "dataset": {"name": d.name, "digest": d.digest, "source_type": d.source_type, "source": d.source,
                        "schema": d.schema, "profile": d.profile},
            "tags": {t.key: t.value for t in di.tags},
        })
    data = {
        "experiment": exp.name, "mlflow_run_id": mlflow_run_id, "run_name": run.info.run_name,
        "status": run.info.status, "start_time": run.info.start_time, "end_time": run.info.end_time,
        "params": dict(run.data.params), "tags": dict(run.data.tags), "metrics": metrics, "inputs": inputs,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    if c.list_artifacts(mlflow_run_id):
        art = folder / "artifacts"
        art.mkdir(exist_ok=True)
        c.download_artifacts(mlflow_run_id, "", str(art))
    return data


def export_runs(store: Store, run_ids: list[str], out: Path, *, c: MlflowClient | None = None,
                tracking_uri: str = "") -> dict[str, Any]:
    """Export runs (DuckDB rows and, when ``c`` is given, their MLflow runs) to ``out``."""
    rows = [store.get_run(r) for r in run_ids]  # resolves prefixes; raises on unknown ids
    ids = list(dict.fromkeys(r["run_id"] for r in rows))
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").exists():
        raise UserError(f"{out} exists and is not an evalkit export; choose an empty folder")
    counts = export_store(store, ids, out / "store")
    entries = []
    for row in rows:
        entry: dict[str, Any] = {"run_id": row["run_id"], "suite": row["suite"], "mlflow": False}
        if c is not None:
            try:
                mrun = resolve(c, row["run_id"], store)
            except UserError:
                mrun = None
            if mrun is not None:
                data = export_mlflow_run(c, mrun.info.run_id, out / "mlflow" / row["run_id"])
                entry.update(mlflow=True, experiment=data["experiment"], metrics=len(data["metrics"]))
        entries.append(entry)
    manifest = {"format": FORMAT, "version": VERSION, "exported_at": datetime.now(UTC).isoformat(),
                "source": {"store": store.label, "tracking_uri": redact(tracking_uri) if tracking_uri else tracking_uri}, "counts": counts, "runs": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest
