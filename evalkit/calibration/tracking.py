"""Log a calibration to MLflow: one run per calibration in the judge-calibration experiment."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from evalkit.calibration.calibrate import Calibration
from evalkit.redact import redact, redact_value
from evalkit.safe_text import json_dumps

EXPERIMENT = "evalkit-judge-calibration"


def log_calibration(cal: Calibration, *, store_path: Path | None, tracking_uri: str | None = None,
                    team: str | None = None) -> str:
    """Log ``cal`` (metrics with their interval ends, the judge and model as tags, the full report as an
    artifact); returns the MLflow run id. Raises :class:`~evalkit.tracking.errors.TrackingError`."""
    from mlflow.entities import Metric, Param, RunTag

    from evalkit.tracking.mlflow_log import ensure_experiment
    from evalkit.tracking.uri import bounded_http, client, experiment_name, probe, resolve_tracking_uri, wrap

    uri = resolve_tracking_uri(store_path, tracking_uri)
    probe(uri)
    report = cal.as_json()
    now = int(time.time() * 1000)
    metrics = []
    for key in ("agreement", "accuracy", "kappa", "weighted_kappa", "sensitivity", "specificity"):
        if report.get(key) is not None:
            metrics.append(Metric(key, float(report[key]), now, 0))
        ci = report.get(f"{key}_ci")
        if ci:
            metrics += [Metric(f"{key}_ci_low", float(ci[0]), now, 0), Metric(f"{key}_ci_high", float(ci[1]), now, 0)]
    metrics.append(Metric("items", float(report["items"]), now, 0))
    ia = report.get("inter_annotator") or {}
    if ia.get("alpha") is not None:
        metrics.append(Metric("inter_annotator_alpha", float(ia["alpha"]), now, 0))
    params = [Param(k, redact(str(report[k]))) for k in ("judge", "model", "agreement_metric", "threshold",
                                                                 "source", "labels_sha256", "prompt_sha256")]
    tags = [RunTag("evalkit.judge", cal.judge.name), RunTag("evalkit.judge_version", cal.judge.version),
            RunTag("evalkit.judge_model", redact(cal.model)), RunTag("evalkit.run_id", cal.run_id),
            RunTag("evalkit.calibration_id", cal.calibration_id)]
    with bounded_http():
        try:
            c = client(uri)
            exp_id = ensure_experiment(c, experiment_name(EXPERIMENT, team), uri)
            run = c.create_run(exp_id, run_name=f"{cal.judge.ref} · {redact(cal.model)}", tags={
                t.key: t.value for t in tags})
            mid = run.info.run_id
            c.log_batch(mid, metrics=metrics, params=params)
            with tempfile.TemporaryDirectory(prefix="evalkit-calibration-") as tmp:
                path = Path(tmp) / "calibration.json"
                path.write_text(json_dumps(json.loads(json.dumps(redact_value(report), default=str)), indent=2))
                c.log_artifact(mid, str(path))
            c.set_terminated(mid, status="FINISHED")
        except Exception as exc:
            raise wrap(exc, uri) from None
    return str(mid)
