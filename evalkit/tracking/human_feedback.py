"""Human labels from MLflow: assessments with source type HUMAN on the traces evalkit logged.

Reviewers label evalkit's per-case traces in MLflow's UI (or with ``mlflow.log_feedback``);
:func:`read_human_labels` maps each label back to the evalkit run, case and repeat through the
traces' tags. These are the human judgements a judge is calibrated against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from evalkit.tracking.mlflow_traces import CASE_TAG, REPEAT_TAG, TRACE_TAG
from evalkit.tracking.payload import TAG as RUN_TAG

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class HumanLabel:
    """One human assessment of one evalkit case × repeat."""

    run_id: str
    case_id: str
    repeat: int
    name: str
    value: Any
    kind: Literal["feedback", "expectation"]
    rationale: str | None
    annotator: str | None  # the assessment's source id (e.g. the reviewer's e-mail)
    time: datetime | None
    mlflow_trace_id: str
    evalkit_trace_id: str | None  # the observability store's trace, when the case was traced
    assessment_id: str | None


def _client(client_or_uri: MlflowClient | str | None) -> MlflowClient:
    from evalkit.tracking.uri import client

    if client_or_uri is None or isinstance(client_or_uri, str):
        from evalkit.tracking.uri import resolve_tracking_uri

        return client(client_or_uri or resolve_tracking_uri(None))
    return client_or_uri


def _experiment_ids(c: MlflowClient, experiments: list[str] | None) -> list[str]:
    """Ids of the named (or id-given) experiments; every active experiment when None."""
    if experiments is None:
        return [e.experiment_id for e in c.search_experiments(max_results=1000)]
    ids = []
    for name in experiments:
        exp = c.get_experiment_by_name(name)
        if exp is None and name.isdigit():
            exp = c.get_experiment(name)
        if exp is not None:
            ids.append(exp.experiment_id)
    return ids


def _when(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def labels_of(trace_info: Any) -> list[HumanLabel]:
    """The valid HUMAN assessments of one evalkit-logged trace (none for other traces)."""
    tags = trace_info.tags
    if RUN_TAG not in tags or CASE_TAG not in tags:
        return []
    out = []
    for a in trace_info.assessments:
        if a.source is None or str(a.source.source_type) != "HUMAN" or a.valid is False:
            continue
        is_fb = a.feedback is not None
        if not is_fb and a.expectation is None:
            continue
        value = a.feedback.value if is_fb else a.expectation.value
        out.append(HumanLabel(
            run_id=tags[RUN_TAG], case_id=tags[CASE_TAG], repeat=int(tags.get(REPEAT_TAG, "0")), name=a.name,
            value=value, kind="feedback" if is_fb else "expectation", rationale=a.rationale,
            annotator=a.source.source_id, time=_when(a.last_update_time_ms or a.create_time_ms),
            mlflow_trace_id=trace_info.trace_id, evalkit_trace_id=tags.get(TRACE_TAG), assessment_id=a.assessment_id,
        ))
    return out


def read_human_labels(
    client_or_uri: MlflowClient | str | None = None,
    *,
    experiments: list[str] | None = None,
    run_id: str | None = None,
    name: str | None = None,
    max_traces: int = 100_000,
) -> list[HumanLabel]:
    """Human labels on evalkit's traces, oldest first.

    ``experiments``: names or ids (default: every experiment); ``run_id``: only this evalkit run;
    ``name``: only assessments of this name (e.g. a judge's scorer name).
    """
    c = _client(client_or_uri)
    ids = _experiment_ids(c, experiments)
    if not ids:
        return []
    where = f"tags.`{RUN_TAG}` = '{run_id.replace(chr(39), '')}'" if run_id else None
    labels: list[HumanLabel] = []
    token, seen = None, 0
    while seen < max_traces:
        page = c.search_traces(locations=ids, filter_string=where, max_results=min(500, max_traces - seen),
                               page_token=token, include_spans=False)
        seen += len(page)
        for t in page:
            labels.extend(lb for lb in labels_of(t.info) if name is None or lb.name == name)
        token = page.token
        if not token or not page:
            break
    return sorted(labels, key=lambda lb: (lb.time or datetime.min.replace(tzinfo=UTC), lb.run_id, lb.case_id))
