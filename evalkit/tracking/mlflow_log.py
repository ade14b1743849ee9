"""Log one evalkit run as one MLflow run (batched writes), idempotently.

An MLflow run carries the tag ``evalkit.run_id``; a run is complete once it also carries
``evalkit.logged``. Logging looks the tag up first, so repeating it (``evalkit sync``) never
creates duplicates, and a half-written run (the server went away mid-way) is replaced.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.redact import default as redactor
from evalkit.redact import redact
from evalkit.safe_text import json_dumps
from evalkit.store.db import Store
from evalkit.tracking.errors import TrackingError
from evalkit.tracking.payload import TAG, RunPayload, build_payload, case_results_frame
from evalkit.tracking.sqlite_stats import maybe_analyze
from evalkit.tracking.uri import (
    artifact_root,
    bounded_http,
    client,
    experiment_name,
    probe,
    resolve_tracking_uri,
    slug,
    wrap,
)

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

DONE_TAG = "evalkit.logged"
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
STATUS = {"completed": "FINISHED", "interrupted": "KILLED", "failed": "FAILED", "running": "RUNNING"}
_experiments: dict[tuple[str, str], str] = {}


def run_filter(run_id: str) -> str:
    safe = run_id.replace("'", "")
    return f"tags.`{TAG}` = '{safe}'"


def ensure_experiment(c: MlflowClient, name: str, uri: str) -> str:
    """The id of experiment ``name``, created when missing (artifacts beside an embedded store)."""
    key = (uri, name)
    if key in _experiments:
        return _experiments[key]
    from mlflow.entities import LifecycleStage
    from mlflow.exceptions import MlflowException

    exp = c.get_experiment_by_name(name)
    if exp is not None and exp.lifecycle_stage == LifecycleStage.DELETED:
        c.restore_experiment(exp.experiment_id)
    if exp is None:
        root = artifact_root(uri)
        try:
            exp_id = c.create_experiment(name, artifact_location=f"{root}/{slug(name)}" if root else None,
                                         tags={"evalkit.suite": name.rsplit("/", 1)[-1]})
        except MlflowException:
            exp = c.get_experiment_by_name(name)  # created concurrently
            if exp is None:
                raise
            exp_id = exp.experiment_id
    else:
        exp_id = exp.experiment_id
    _experiments[key] = exp_id
    return exp_id


def find_runs(c: MlflowClient, experiment_ids: list[str], run_id: str) -> list[Run]:
    """MLflow runs tagged with this evalkit run id."""
    return list(c.search_runs(experiment_ids, run_filter(run_id), max_results=10))


def batches(metrics: list[Any], params: list[Any], tags: list[Any]) -> list[dict[str, Any]]:
    """``log_batch`` calls within MLflow's limits, the completion tag in the last one."""
    from mlflow.entities import RunTag

    tags = [t for t in tags if t.key not in (TAG, DONE_TAG)]
    out: list[dict[str, Any]] = []
    while metrics or params or tags:
        out.append({"metrics": metrics[:MAX_METRICS], "params": params[:MAX_PARAMS], "tags": tags[:MAX_TAGS]})
        metrics, params, tags = metrics[MAX_METRICS:], params[MAX_PARAMS:], tags[MAX_TAGS:]
    done = RunTag(DONE_TAG, "true")
    if out and len(out[-1]["tags"]) < MAX_TAGS:
        out[-1]["tags"].append(done)
    else:
        out.append({"metrics": [], "params": [], "tags": [done]})
    return out


def _log_inputs(c: Any, mid: str, inputs: list[Any], attempts: int = 4) -> None:
    """Link the run's datasets. MLflow's SQL store inserts a dataset it did not find, so two runs of one suite
    logging it at the same moment race on its key; by the next try it exists and is only linked."""
    import time

    for attempt in range(attempts):
        try:
            c.log_inputs(mid, datasets=inputs)
            return
        except Exception as exc:
            text = str(exc).lower()
            if attempt + 1 == attempts or not ("dataset_pk" in text or "unique constraint" in text
                                               or "duplicate key" in text):
                raise
            time.sleep(0.1 * (attempt + 1))


def write_run(
    c: MlflowClient,
    exp_id: str,
    *,
    run_id: str,
    run_name: str,
    start_ms: int | None,
    end_ms: int | None,
    status: str,
    metrics: list[Any],
    params: dict[str, str],
    tags: dict[str, str],
    inputs: list[Any],
    artifacts: Path | None,
) -> str:
    """Create an MLflow run tagged with ``run_id`` and write it in a handful of batched calls."""
    from mlflow.entities import Param, RunTag

    identity = {TAG: run_id, "mlflow.runName": run_name}
    if "evalkit.suite" in tags:
        identity["evalkit.suite"] = tags["evalkit.suite"]
    mid = str(c.create_run(exp_id, start_time=start_ms, tags=identity, run_name=run_name).info.run_id)
    if inputs:
        _log_inputs(c, mid, inputs)
    if artifacts is not None and artifacts.is_dir() and any(artifacts.iterdir()):
        c.log_artifacts(mid, str(artifacts))
    rest = [RunTag(k, v) for k, v in sorted(tags.items()) if k not in identity]
    for batch in batches(metrics, [Param(k, v) for k, v in sorted(params.items())], rest):
        c.log_batch(mid, **batch)
    if status != "RUNNING":
        c.set_terminated(mid, status=status, end_time=end_ms or start_ms)
    return mid


def _dataset_input(payload: RunPayload) -> Any:
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource  # type: ignore[attr-defined]
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.types import ColSpec, Schema

    d = payload.dataset
    schema = Schema([ColSpec("string", n) for n in ("id", "input", "expected")])
    source = LocalArtifactDatasetSource(d["source"])
    meta = MetaDataset(source, name=d["name"], digest=d["digest"], schema=schema)  # type: ignore[abstract]
    entity = Dataset(**meta.to_dict(), profile=json.dumps({"num_rows": d["cases"], "sha256": d["sha256"]}))
    return DatasetInput(entity, tags=[InputTag("mlflow.data.context", "eval")])


def _suite_file(run: dict[str, Any], suite_file: Path | None) -> Path | None:
    if suite_file is not None:
        return Path(suite_file)
    cfg = run.get("config") or {}
    if isinstance(cfg, str):
        cfg = json.loads(cfg)
    p = cfg.get("suite_file") if isinstance(cfg, dict) else None
    return Path(p) if p and Path(p).is_file() else None


def _write_artifacts(store: Store, run: dict[str, Any], suite_file: Path | None, folder: Path) -> None:
    results = folder / "results"
    results.mkdir()
    import polars as pl

    frame, red = case_results_frame(store, run["run_id"]), redactor()
    text_cols = [c for c, t in frame.schema.items() if t == pl.String]
    frame.with_columns(red.column(pl.col(c)) for c in text_cols).write_parquet(results / "case_results.parquet")
    (results / CASES_TABLE.rsplit("/", 1)[-1]).write_text(json_dumps(case_table(store, run["run_id"])),
                                                          encoding="utf-8")
    from evalkit.report.html import write_report

    write_report(store, run["run_id"], folder / "report.html")
    sf = _suite_file(run, suite_file)
    if sf is not None:
        (folder / "suite").mkdir()
        text = sf.read_text(encoding="utf-8", errors="replace")
        (folder / "suite" / sf.name).write_text(redact(text), encoding="utf-8")


CASES_TABLE = "results/cases.json"  # MLflow's table artifact (pandas "split" JSON): previewed in the UI
TABLE_CELL = 2000
TABLE_ROWS = 5000  # failures first; the full per-case data is case_results.parquet and the store


def case_table(store: Store, run_id: str) -> dict[str, Any]:
    """One row per case × repeat (failures first, at most :data:`TABLE_ROWS`): outcome, each score, input,
    output and trace id."""
    from evalkit.store.reads import cases_with_scores

    cases = cases_with_scores(store, run_id)
    names = sorted({s["name"] for c in cases for s in c["scores"]})
    red = redactor()

    def cell(v: Any) -> Any:
        if v is None or isinstance(v, bool | int | float):
            return v
        text = v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)
        text = red.text(text)
        return text if len(text) <= TABLE_CELL else text[:TABLE_CELL] + "…"

    rows = []
    for c in cases[:TABLE_ROWS]:
        by_name = {s["name"]: s for s in c["scores"]}
        scores = [by_name[n]["value"] if n in by_name and by_name[n]["outcome"] == "ok" else
                  (by_name[n]["outcome"] if n in by_name else None) for n in names]
        rows.append([c["case_id"], c["repeat"], "failed" if c["failed"] else "passed", c["outcome"], *scores,
                     cell(c.get("input")), cell(c.get("expected")), cell(c.get("output")), cell(c.get("error")),
                     c.get("latency_ms"), c.get("trace_id")])
    columns = ["case_id", "repeat", "verdict", "outcome", *names, "input", "expected", "output", "error",
               "latency_ms", "trace_id"]
    return {"columns": columns, "data": rows}


def log_payload(c: MlflowClient, exp_id: str, payload: RunPayload, artifacts: Path | None) -> str:
    """Write a :class:`RunPayload` as a new MLflow run; returns its id."""
    from mlflow.entities import Metric

    end = payload.end_ms or payload.start_ms or 0
    return write_run(
        c, exp_id, run_id=payload.run_id, run_name=payload.run_id, start_ms=payload.start_ms, end_ms=end,
        status=STATUS.get(payload.status, "FINISHED"),
        metrics=[Metric(k, v, end, 0) for k, v in sorted(payload.metrics.items())],
        params=payload.params, tags=payload.tags,
        inputs=[_dataset_input(payload)] if payload.dataset else [], artifacts=artifacts,
    )


def log_run(
    store: Store,
    run_id: str,
    *,
    tracking_uri: str | None = None,
    suite_file: Path | None = None,
    team: str | None = None,
) -> str:
    """Log a stored run to MLflow and record the MLflow run id in ``runs.mlflow_run_id``.

    Uses ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the embedded store
    ``sqlite:///<store folder>/mlflow.db``. Idempotent: a run already logged is found by its
    ``evalkit.run_id`` tag and not logged again. Raises :class:`TrackingUnavailable` quickly when
    the server cannot be reached, :class:`TrackingError` when it refuses a request.
    """
    run = store.get_run(run_id)
    uri = resolve_tracking_uri(store.path, tracking_uri)
    probe(uri)
    payload = build_payload(store, run, suite_file=suite_file, team=team)
    with bounded_http():
        try:
            c = client(uri)
            exp_id = ensure_experiment(c, experiment_name(run["suite"], team), uri)
            mid = _existing(c, exp_id, run["run_id"])
            if mid is None:
                payload.tags["mlflow.loggedArtifacts"] = json.dumps([{"path": CASES_TABLE, "type": "table"}])
                with tempfile.TemporaryDirectory(prefix="evalkit-mlflow-") as tmp:
                    _write_artifacts(store, run, suite_file, Path(tmp))
                    mid = log_payload(c, exp_id, payload, Path(tmp))
        except TrackingError:
            raise
        except Exception as exc:
            raise wrap(exc, uri) from None
    store.update_run(run["run_id"], mlflow_run_id=mid)
    maybe_analyze(uri)
    return mid


def _existing(c: MlflowClient, exp_id: str, run_id: str) -> str | None:
    """The complete MLflow run of ``run_id``, deleting half-written ones; None when there is none."""
    found = find_runs(c, [exp_id], run_id)
    complete = [r for r in found if r.data.tags.get(DONE_TAG) == "true"]
    keep = {r.info.run_id for r in complete}
    for r in found:
        if r.info.run_id not in keep:
            c.delete_run(r.info.run_id)
    if not complete:
        return None
    first = complete[0]
    if first.info.status == "RUNNING":
        c.set_terminated(first.info.run_id, status="FINISHED")
    return str(first.info.run_id)
