"""What one evalkit run becomes in MLflow: params, metrics, tags and the dataset description.

Pure with respect to MLflow (no import of it): built from the DuckDB rows of the run, read through
:mod:`evalkit.store.reads`. The metrics are :meth:`RunSummary.metrics` of the run's summary: the one
error rate (``errors/rate``, ``errors/count``), per-scorer ``<scorer>/errors`` and
``<scorer>/not_applicable``, and the ledger (``cases/planned``, ``cases/cancelled``, ``cases/missing``),
rounded for reading, with the interval bounds in a group of their own (:func:`mlflow_metrics`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from evalkit.redact import redact_value
from evalkit.safe_text import markdown, markdown_code
from evalkit.schema import RunSummary
from evalkit.store import reads
from evalkit.store.db import Store
from evalkit.tracking.metric_names import mlflow_metrics

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
    grouped: dict[tuple[str, str], dict[str, str]] = {}
    for j in reads.judges(store, run_id):
        row = grouped.setdefault((j.scorer, j.judge), {"name": j.scorer, "judge": j.judge})
        for key, value in (("prompt_sha256", j.prompt_sha256), ("model", j.model)):
            if value is not None and value > row.get(key, ""):
                row[key] = value  # the largest, as SQL max() would pick
    return [grouped[k] for k in sorted(grouped)]


def inline_digest(store: Store, run_id: str) -> str:
    """A digest of the cases of a run without a dataset file (ids, inputs, expectations)."""
    return hashlib.sha256(json.dumps(reads.case_inputs(store, run_id), default=str).encode()).hexdigest()


_STATUSES = ("running", "completed", "interrupted", "failed")


def run_summary(store: Store, run: dict[str, Any]) -> RunSummary | None:
    """The run's summary: as stored when it was written with the run's ledger; otherwise (no summary
    yet, or one written before outcomes were typed, whose error counts missed scorer errors) counted
    again from the run's rows, keeping the stored intervals. None for a run with neither."""
    stored = _json(run.get("summary"))
    if stored and "completed" in stored:
        return RunSummary.model_validate(stored)
    from evalkit.aggregate import summarise

    run_id = run["run_id"]
    cases, scores = reads.case_frame(store, run_id), reads.score_frame(store, run_id)
    if cases.height == 0:
        return RunSummary.model_validate(stored) if stored else None
    status = run.get("status") if run.get("status") in _STATUSES else "completed"
    fresh = summarise(run_id, run["suite"], cases, scores, status=str(status), intervals=False,
                      started_at=run.get("started_at"), ended_at=run.get("ended_at"))
    old = {s.get("name"): s for s in (stored or {}).get("scorers") or [] if isinstance(s, dict)}
    scorers = [s.model_copy(update={k: old[s.name][k] for k in ("mean_ci", "pass_rate_ci")
                                    if old.get(s.name, {}).get(k) is not None})
               for s in fresh.scorers]
    return fresh.model_copy(update={"scorers": scorers})


def description(run: dict[str, Any], summary: dict[str, Any], gate: dict[str, Any]) -> str:
    """The MLflow run description (Markdown): the gate verdict, the ledger and each scorer's result."""
    def pct(v: Any) -> str:
        return "–" if v is None else f"{float(v):.3f}"

    status = gate.get("status") or "not gated"
    lines = [f"**Gate: {markdown(status)}** — {markdown(gate.get('reason') or '')}", ""]
    partial = _json(run.get("config")).get("partial")
    if partial:
        lines += [f"Partial run ({markdown(partial)}): its verdict covers that part only; it is not ranked.", ""]
    if summary:
        lines.append(f"{summary.get('planned', '?')} planned · {summary.get('completed', '?')} completed · "
                     f"{summary.get('errors', 0)} errored · {summary.get('cancelled', 0)} cancelled · "
                     f"{summary.get('missing', 0)} missing · run {markdown_code(run['run_id'])} ({markdown(run.get('status'))})")
        lines += ["", "| scorer | mean | 95% CI | pass rate | scored | n/a | errors |", "|---|---|---|---|---|---|---|"]
        for s in summary.get("scorers", []):
            ci = s.get("mean_ci") or [None, None]
            lines.append(f"| {markdown(s['name'])} | {pct(s.get('mean'))} | {pct(ci[0])}–{pct(ci[1])} | "
                         f"{pct(s.get('pass_rate'))} | {s.get('scored', 0)} | {s.get('not_applicable', 0)} | "
                         f"{s.get('errors', 0)} |")
    failed = [c for c in gate.get("checks", []) if not c.get("passed")]
    if failed:
        lines += ["", "Missed: " + "; ".join(markdown(c.get("message", "")) for c in failed)]
    lines += ["", "Per-case results: `results/cases.json` (table) · report: `report.html`"]
    return "\n".join(lines)


def build_payload(store: Store, run: dict[str, Any], *, suite_file: Path | None = None,
                  team: str | None = None) -> RunPayload:
    """The MLflow view of a stored run (``run`` is ``store.get_run(run_id)``)."""
    run_id = run["run_id"]
    name, version, models = agent_info(run)
    js = judges(store, run_id)
    summary = run_summary(store, run)
    metrics = mlflow_metrics(summary.metrics() if summary else {})
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
        "mlflow.source.git.branch": run.get("git_branch") or _json(run.get("config")).get("git_branch"),
        "evalkit.git_dirty": None if run.get("git_dirty") is None else str(bool(run["git_dirty"])).lower(),
        "mlflow.runName": run_id,
        "mlflow.note.content": description(run, _json(run.get("summary")), gate),
        "evalkit.partial": _json(run.get("config")).get("partial"),  # a shard or subset: not ranked
        "evalkit.primary": _json(run.get("config")).get("primary"),  # the metric the leaderboard ranks by
    }
    for j in js:
        key = f"evalkit.judge.{j['name']}"
        tags[key] = j["judge"]
        tags[f"{key}.prompt_sha256"] = j.get("prompt_sha256")
    clean_params = redact_value({k: str(v)[:PARAM_MAX] for k, v in params.items() if v not in (None, "")})
    clean_tags = redact_value({k: str(v)[:TAG_MAX] for k, v in tags.items() if v not in (None, "")})
    ds_path = run.get("dataset_path")
    dataset = {
        "name": Path(ds_path).stem if ds_path else f"{run['suite']}-inline",
        "digest": sha[:36],
        "source": str(ds_path) if ds_path else f"evalkit:{store.label}#{run_id}",
        "sha256": sha,
        "cases": int(run.get("cases_total") or (summary.cases if summary else 0) or 0),
    }
    return RunPayload(
        run_id=run_id, suite=run["suite"], status=str(run.get("status") or "completed"),
        start_ms=_ms(run.get("started_at")), end_ms=_ms(run.get("ended_at")),
        params=clean_params, metrics=metrics, tags=clean_tags, dataset=dataset,
    )


_WIDE = {"value": "score", "passed": "passed", "outcome": "outcome", "error_kind": "error_kind"}


def case_results_frame(store: Store, run_id: str) -> Any:
    """Per-case results (what the Parquet artifact holds): the case's ledger ``outcome`` and
    ``error_kind``, then per scorer ``score/<name>``, ``passed/<name>``, ``outcome/<name>`` (ok,
    not_applicable, error) and ``error_kind/<name>``."""
    import polars as pl

    cases = reads.result_frame(store, run_id)
    scores = reads.score_frame(store, run_id)
    if scores.height == 0 or cases.height == 0:
        return cases
    names = scores.get_column("name").unique(maintain_order=True).to_list()
    wide = scores.select("case_id", "repeat").unique(maintain_order=True)
    for name in names:  # one scorer at a time: column names never depend on how pivot spells them
        part = scores.filter(pl.col("name") == name).unique(["case_id", "repeat"], keep="first", maintain_order=True)
        wide = wide.join(part.select("case_id", "repeat", *(pl.col(c).alias(f"{w}/{name}") for c, w in _WIDE.items())),
                         on=["case_id", "repeat"], how="left")
    return cases.join(wide, on=["case_id", "repeat"], how="left").with_columns(pl.lit(run_id).alias("run_id"))
