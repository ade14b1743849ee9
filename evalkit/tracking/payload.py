"""What one evalkit run becomes in MLflow: params, metrics, tags and the dataset description.

Pure with respect to MLflow (no import of it): built from the DuckDB rows of the run.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from evalkit.schema import RunSummary
from evalkit.store.db import Store
from evalkit.tracking.redact import redact, secret_values

TAG = "evalkit.run_id"  # the identity of an MLflow run: one per evalkit run
PARAM_MAX = 6000
TAG_MAX = 8000


@dataclass
class RunPayload:
    """Everything log_run writes, except artifacts."""

    run_id: str
    suite: str
    status: str
    start_ms: int | None
    end_ms: int | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)


def _ms(ts: Any) -> int | None:
    return int(ts.timestamp() * 1000) if isinstance(ts, datetime) else None


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else (v or {})


def agent_info(run: dict[str, Any]) -> tuple[str | None, str | None, list[str]]:
    """(agent name, version, models) from the run row and its config (CLI and Python API shapes)."""
    cfg = _json(run.get("config"))
    suite_raw = cfg.get("suite") if isinstance(cfg.get("suite"), dict) else {}
    agent = cfg.get("agent") or suite_raw.get("agent") or {}
    name = agent.get("name") or run.get("target")
    version = agent.get("version")
    models = list(cfg.get("models") or [])
    target = suite_raw.get("target", cfg.get("target"))
    if isinstance(target, dict):
        if not version and target.get("version"):
            version = str(target["version"])
        if target.get("model") and target["model"] not in models:
            models.append(str(target["model"]))
    return name, (str(version) if version else None), models


def judges(store: Store, run_id: str) -> list[dict[str, str]]:
    """Judges that scored the run: scorer name, judge ref (name@version), prompt hash, model."""
    rows = store.query(
        "SELECT name, json_extract_string(metadata, '$.judge') AS judge,"
        " max(json_extract_string(metadata, '$.prompt_sha256')) AS prompt_sha256,"
        " max(json_extract_string(metadata, '$.model')) AS model"
        " FROM scores WHERE run_id = ? AND metadata IS NOT NULL"
        " AND json_extract_string(metadata, '$.judge') IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
        [run_id],
    )
    return [{k: v for k, v in r.items() if v is not None} for r in rows]


def inline_digest(store: Store, run_id: str) -> str:
    """A digest of the cases of a run without a dataset file (ids, inputs, expectations)."""
    rows = store.execute(
        "SELECT DISTINCT case_id, CAST(input AS VARCHAR), CAST(expected AS VARCHAR) FROM case_results"
        " WHERE run_id = ? ORDER BY case_id", [run_id])
    return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()


def build_payload(store: Store, run: dict[str, Any], *, suite_file: Path | None = None,
                  team: str | None = None) -> RunPayload:
    """The MLflow view of a stored run (``run`` is ``store.get_run(run_id)``)."""
    run_id = run["run_id"]
    name, version, models = agent_info(run)
    js = judges(store, run_id)
    summary = RunSummary.model_validate(_json(run.get("summary"))) if run.get("summary") else None
    metrics = {k: float(v) for k, v in (summary.metrics() if summary else {}).items()
               if v is not None and math.isfinite(float(v))}
    judge_models = sorted({j["model"] for j in js if j.get("model")})
    params = {
        "target": run.get("target"),
        "agent_models": ",".join(models),
        "judge_models": ",".join(judge_models),
        "concurrency": run.get("concurrency"),
        "repeats": run.get("repeats"),
        "dataset_path": run.get("dataset_path"),
        "cases_total": run.get("cases_total"),
        "suite_file": str(suite_file) if suite_file else _json(run.get("config")).get("suite_file"),
    }
    sha = run.get("dataset_sha256") or inline_digest(store, run_id)
    gate = _json(run.get("gate"))
    tags: dict[str, Any] = {
        TAG: run_id,
        "evalkit.suite": run["suite"],
        "evalkit.status": run.get("status"),
        "evalkit.dataset_sha256": sha,
        "evalkit.agent": name,
        "evalkit.agent_version": version,
        "evalkit.agent_ref": f"{name}@{version}" if version else name,
        "evalkit.models": ",".join(models),
        "evalkit.judges": ",".join(sorted({j["judge"] for j in js})),
        "evalkit.version": run.get("evalkit_version"),
        "evalkit.team": team,
        "evalkit.gate": gate.get("status") or (("passed" if gate["passed"] else "failed") if "passed" in gate else None),
        "mlflow.source.git.commit": run.get("git_commit"),
        "evalkit.git_dirty": None if run.get("git_dirty") is None else str(bool(run["git_dirty"])).lower(),
        "mlflow.runName": run_id,
    }
    for j in js:
        key = f"evalkit.judge.{j['name']}"
        tags[key] = j["judge"]
        tags[f"{key}.prompt_sha256"] = j.get("prompt_sha256")
    secrets = secret_values()
    clean_params = redact({k: str(v)[:PARAM_MAX] for k, v in params.items() if v not in (None, "")}, secrets)
    clean_tags = redact({k: str(v)[:TAG_MAX] for k, v in tags.items() if v not in (None, "")}, secrets)
    ds_path = run.get("dataset_path")
    dataset = {
        "name": Path(ds_path).stem if ds_path else f"{run['suite']}-inline",
        "digest": sha[:36],
        "source": str(ds_path) if ds_path else f"evalkit:{store.path}#{run_id}",
        "sha256": sha,
        "cases": int(run.get("cases_total") or (summary.cases if summary else 0) or 0),
    }
    return RunPayload(
        run_id=run_id, suite=run["suite"], status=str(run.get("status") or "completed"),
        start_ms=_ms(run.get("started_at")), end_ms=_ms(run.get("ended_at")),
        params=clean_params, metrics=metrics, tags=clean_tags, dataset=dataset,
    )


def case_results_frame(store: Store, run_id: str) -> Any:
    """Per-case results with one column per scorer value (what the Parquet artifact holds)."""
    import polars as pl

    cases = store.frame(
        "SELECT case_id, repeat, status, CAST(input AS VARCHAR) AS input, CAST(expected AS VARCHAR) AS expected,"
        " CAST(output AS VARCHAR) AS output, error, latency_ms, input_tokens, output_tokens, cost_usd, llm_calls,"
        " trace_id, started_at, ended_at FROM case_results WHERE run_id = ? ORDER BY case_id, repeat", [run_id])
    scores = store.frame(
        "SELECT case_id, repeat, name, value, passed FROM scores WHERE run_id = ? ORDER BY case_id, repeat, name",
        [run_id])
    if scores.height == 0 or cases.height == 0:
        return cases
    wide = scores.pivot(on="name", index=["case_id", "repeat"], values=["value", "passed"], aggregate_function="first")
    wide = wide.rename({c: c.replace("value_", "score/", 1).replace("passed_", "passed/", 1) for c in wide.columns
                        if c not in ("case_id", "repeat")})
    return cases.join(wide, on=["case_id", "repeat"], how="left").with_columns(pl.lit(run_id).alias("run_id"))
