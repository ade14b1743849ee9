"""``import``: runs exported by ``export`` into this workspace and tracking server, without duplicates."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import UserError
from evalkit.store import reads
from evalkit.store.db import Store
from evalkit.tracking.export_runs import FORMAT, TABLES, VERSION, sql_list
from evalkit.tracking.mlflow_log import DONE_TAG, ensure_experiment, find_runs, log_run, write_run
from evalkit.tracking.uri import experiment_name

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


@dataclass
class ImportReport:
    store_added: list[str] = field(default_factory=list)
    store_skipped: list[str] = field(default_factory=list)
    mlflow_added: dict[str, str] = field(default_factory=dict)
    mlflow_skipped: dict[str, str] = field(default_factory=dict)
    logged: dict[str, str] = field(default_factory=dict)  # exported without MLflow data: logged from DuckDB


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise UserError(f"{folder}: not an evalkit export (no manifest.json)")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT or int(manifest.get("version", 0)) > VERSION:
        raise UserError(f"{path}: unsupported export format {manifest.get('format')} v{manifest.get('version')}")
    return manifest


# scores before case results: a case's outcome, when an older export lacks it, follows from its scores
IMPORT_ORDER = ("runs", "scores", "case_results", "spans", "human_labels", "judge_calibrations")


def _columns(store: Store, src: str) -> set[str]:
    return {r[0] for r in store.execute(f"DESCRIBE SELECT * FROM read_parquet('{src}')")}


def _select(store: Store, table: str, src: str) -> str:
    """The rows to insert from an exported table; outcomes derived (as migration 2 derives them) when
    the export predates them."""
    cols = _columns(store, src)
    if table == "scores" and "outcome" not in cols:
        return (f"SELECT p.*, {reads.LEGACY_SCORE_OUTCOME} AS outcome, {reads.LEGACY_SCORE_ERROR_KIND} AS error_kind"
                f" FROM read_parquet('{src}') p")
    if table == "case_results" and "outcome" not in cols:
        return (f"SELECT p.*, {reads.legacy_case_outcome('p')} AS outcome, {reads.LEGACY_CASE_ERROR_KIND} AS error_kind"
                f" FROM read_parquet('{src}') p")
    return f"SELECT p.* FROM read_parquet('{src}') p"


def import_store(store: Store, folder: Path, run_ids: list[str]) -> tuple[list[str], list[str]]:
    """Insert the exported rows of runs this store lacks, in one transaction; (added, skipped).

    Exports written before outcomes were typed (no ``outcome`` / ``error_kind`` columns) are read the
    way migration 2 back-fills a store.
    """
    present = {r[0] for r in store.execute(f"SELECT run_id FROM runs WHERE run_id IN ({sql_list(run_ids)})")} \
        if run_ids else set()
    new = [r for r in run_ids if r not in present]
    if new:
        ids = sql_list(new)
        stmts = []
        for table in sorted(TABLES, key=IMPORT_ORDER.index):
            path = folder / f"{table}.parquet"
            if not path.exists():
                continue
            src = str(path).replace("'", "''")
            cond = f"p.run_id IN ({ids})"
            if table == "spans":  # spans of new runs that are not here yet
                cases = str(folder / "case_results.parquet").replace("'", "''")
                cond = (f"({cond} OR p.trace_id IN (SELECT trace_id FROM read_parquet('{cases}')"
                        f" WHERE run_id IN ({ids}))) AND p.span_id NOT IN (SELECT span_id FROM spans)")
            stmts.append(f"INSERT INTO {table} BY NAME {_select(store, table, src)} WHERE {cond}")
        # the source's MLflow ids mean nothing here: linked again below, or by `evalkit sync`
        stmts.append(f"UPDATE runs SET mlflow_run_id = NULL WHERE run_id IN ({ids})")
        store.execute("BEGIN TRANSACTION; " + "; ".join(stmts) + "; COMMIT")
    return new, sorted(present)


def import_mlflow_run(c: MlflowClient, uri: str, folder: Path, experiment: str) -> tuple[str, bool]:
    """Recreate one exported MLflow run (skipped when its evalkit run id is already there); (id, created)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric

    data = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    tags: dict[str, str] = data["tags"]
    run_id = tags.get("evalkit.run_id") or folder.name
    exp_id = ensure_experiment(c, experiment, uri)
    found = [r for r in find_runs(c, [exp_id], run_id) if r.data.tags.get(DONE_TAG) == "true"]
    if found:
        return str(found[0].info.run_id), False
    inputs = [DatasetInput(Dataset(**i["dataset"]), tags=[InputTag(k, v) for k, v in i["tags"].items()])
              for i in data.get("inputs", [])]
    metrics = [Metric(m["key"], m["value"], m["timestamp"], m["step"]) for m in data["metrics"]]
    art = folder / "artifacts"
    mid = write_run(
        c, exp_id, run_id=run_id, run_name=data.get("run_name") or run_id, start_ms=data.get("start_time"),
        end_ms=data.get("end_time"), status=data.get("status") or "FINISHED", metrics=metrics,
        params=data["params"], tags=tags, inputs=inputs, artifacts=art if art.is_dir() else None,
    )
    return mid, True


def import_runs(store: Store, folder: Path, *, c: MlflowClient | None = None, uri: str = "",
                team: str | None = None) -> ImportReport:
    """Import an export folder: DuckDB rows first, then MLflow runs (when ``c`` is given)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    entries = manifest["runs"]
    report = ImportReport()
    report.store_added, report.store_skipped = import_store(store, folder / "store", [e["run_id"] for e in entries])
    if c is None:
        return report
    for e in entries:
        rid = e["run_id"]
        if not e.get("mlflow"):
            report.logged[rid] = log_run(store, rid, tracking_uri=uri or None, team=team)
            continue
        exp = experiment_name(e["suite"], team) if team else e.get("experiment") or experiment_name(e["suite"])
        mid, created = import_mlflow_run(c, uri, folder / "mlflow" / rid, exp)
        (report.mlflow_added if created else report.mlflow_skipped)[rid] = mid
        store.update_run(rid, mlflow_run_id=mid)
    return report
