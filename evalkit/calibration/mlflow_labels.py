"""Human assessments from MLflow as labels: what reviewers gave evalkit's traces in MLflow becomes label rows.

Reviewers label a run's per-case traces in MLflow's UI (or with ``mlflow.log_feedback``);
:func:`evalkit.tracking.human_feedback.read_human_labels` maps each HUMAN assessment back to the evalkit
run, case and repeat. An assessment whose name is one of the run's LLM-judge scorers (a score whose
metadata names a ``judge``) is a judgement under that judge's rubric: it becomes a :class:`Label` with
``judge`` the judge@version the run used, the value fitted to the judge's scale
(:func:`evalkit.calibration.labels.normalise_value`; a pairwise judge's 0 / 0.5 / 1 is B / tie / A),
``annotator`` the assessment's source id, ``labelled_at`` its time and ``note`` its rationale.
Anything else (expectations, other names, values off the scale) is left out, each with a reason.
``evalkit labels import --from-mlflow RUN_ID`` stores the labels as a file import does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from evalkit.calibration.labels import Label, normalise_value
from evalkit.errors import UserError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from evalkit.store.db import Store
    from evalkit.tracking.human_feedback import HumanLabel

PAIRWISE_NAMES = {0.0: "B", 0.5: "tie", 1.0: "A"}  # a pairwise judge's score scale (the candidate's preference)
SOURCE = "mlflow"


@dataclass(frozen=True)
class JudgeScorer:
    """One LLM-judge scorer of a run: its name, the judge@version labels name, and the judge's output kind."""

    scorer: str
    judge: str
    output_kind: str


@dataclass
class Converted:
    """The labels made from a run's human assessments, and one line per assessment left out."""

    labels: list[Label] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def judge_scorers(store: Store, run_id: str) -> dict[str, JudgeScorer]:
    """The LLM-judge scorers of a stored run by scorer name (the judge@version most of its scores name)."""
    from evalkit.report.data import LABEL_JUDGE, kind_evidence, output_kind
    from evalkit.store.reads import score_rows

    refs: dict[str, Counter[str]] = {}
    evidence: dict[str, set[str | None]] = {}
    for s in score_rows(store, run_id):
        ref = s["metadata"].get("judge")
        if not ref:
            continue
        ref = str(ref)
        refs.setdefault(s["name"], Counter())[ref] += 1
        value = s["value"] if s["outcome"] == "ok" else None
        evidence.setdefault(ref, set()).add(kind_evidence(s["metadata"], value, bool(s["is_bool"])))
    out = {}
    for scorer, counts in sorted(refs.items()):
        ref = counts.most_common(1)[0][0]
        version = ref.partition("@")[2]
        judge = f"{scorer}@{version}" if version else scorer  # labels name judges by their scorer's name
        if LABEL_JUDGE.fullmatch(judge):
            out[scorer] = JudgeScorer(scorer, judge, output_kind(ref, evidence.get(ref, set())))
    return out


def label_value(value: Any, output_kind: str) -> bool | int | str:
    """An assessment's value on a judge's scale (ValueError when it does not fit)."""
    if output_kind == "pairwise" and isinstance(value, int | float) and not isinstance(value, bool):
        name = PAIRWISE_NAMES.get(float(value))
        if name is not None:
            return name
    if isinstance(value, str) and output_kind == "scale_1_5":
        try:
            number = float(value.strip())
        except ValueError:
            pass
        else:
            value = number  # "4.0" as MLflow's UI may store it
    return normalise_value(value, output_kind)


def labels_from_assessments(human: Iterable[HumanLabel], judges: Mapping[str, JudgeScorer]) -> Converted:
    """Label rows from :func:`~evalkit.tracking.human_feedback.read_human_labels`' output: the feedback
    whose name is one of ``judges`` (:func:`judge_scorers`); a reviewer's newer assessment of the same
    case, repeat and judge replaces an older one."""
    out = Converted()
    newest: dict[tuple[Any, ...], Label] = {}
    oldest_first = sorted(human, key=lambda h: h.time or datetime.min.replace(tzinfo=UTC))
    for h in oldest_first:
        where = f"case '{h.case_id}' repeat {h.repeat}, assessment '{h.name}'"
        if h.kind != "feedback":
            out.skipped.append(f"{where}: an expectation, not a judgement")
            continue
        js = judges.get(h.name)
        if js is None:
            out.skipped.append(f"{where}: names no LLM-judge scorer of run {h.run_id}")
            continue
        try:
            value = label_value(h.value, js.output_kind)
        except ValueError as exc:
            out.skipped.append(f"{where}: {exc} (judge {js.judge}, {js.output_kind})")
            continue
        try:
            label = Label(case_id=h.case_id, judge=js.judge, value=value,
                          annotator=(h.annotator or "").strip() or "anonymous", labelled_at=h.time,
                          repeat=h.repeat, note=h.rationale or None, run_id=h.run_id)
        except ValidationError as exc:
            out.skipped.append(f"{where}: {exc.errors()[0]['msg']}")
            continue
        newest[(*label.key, label.run_id)] = label
    out.labels = sorted(newest.values(), key=lambda lb: (lb.case_key, lb.repeat, lb.judge, lb.annotator))
    return out


def import_from_mlflow(store: Store, run_id: str, *, store_path: Path | str | None = None,
                       tracking_uri: str | None = None,
                       client: MlflowClient | None = None) -> tuple[str, Converted]:
    """The labels of stored run ``run_id`` (an id or unique prefix) from MLflow (``tracking_uri``, else the
    default beside ``store_path``); returns the run's full id and what was converted. Nothing is stored."""
    from evalkit.tracking.errors import TrackingError, as_user_error
    from evalkit.tracking.human_feedback import read_human_labels
    from evalkit.tracking.uri import resolve_tracking_uri, wrap

    run = store.get_run(run_id)["run_id"]
    judges = judge_scorers(store, run)
    if not judges:
        raise UserError(f"run {run} has no LLM-judge scores: there is no judge to label")
    uri = resolve_tracking_uri(store_path, tracking_uri)
    try:
        human = read_human_labels(client or uri, run_id=run)
    except TrackingError as exc:
        raise as_user_error(exc) from None
    except Exception as exc:  # an MLflow or HTTP failure: one line, exit code 3
        raise as_user_error(wrap(exc, uri)) from None
    return run, labels_from_assessments(human, judges)
