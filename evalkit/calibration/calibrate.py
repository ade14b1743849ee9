"""Calibrate a judge: pair its stored scores with human labels and measure how well they agree.

A calibration is always measured on a stored run: the run's scores from one judge@version × model
are joined with the labels on case id and repeat. ``evalkit calibrate --builtin`` (or ``--set``)
first makes that run: the calibration set's fixed responses are replayed as the target and scored
by the judge through the same pipeline as any run (retries, typed errors, traces, the store).

The human value of a case is the labels' consensus: the median on a 1-5 scale (the lower of the two
middle values), else the majority (a tied vote is left out and counted). Pairwise values are the
candidate's preference (B = 0, tie = 0.5, A = 1), the scale the judge's scores use.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import uuid
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from evalkit.calibration.agreement import AgreementReport, Level, agreement_report, inter_annotator
from evalkit.calibration.labels import Label, normalise_value
from evalkit.errors import UserError
from evalkit.judging.model import JudgeDef
from evalkit.store.db import Store

PAIRWISE = {"B": 0.0, "tie": 0.5, "A": 1.0}
PAIRWISE_NAMES = {v: k for k, v in PAIRWISE.items()}
MIN_ITEMS = 10  # fewer labelled pairs than this give no calibration: the intervals would be meaningless


@dataclass(frozen=True)
class Scale:
    """How one judge's values are compared: the levels, whether they are ordered, the pass threshold."""

    categories: tuple[Hashable, ...]
    ordinal: bool
    threshold: float | None

    @classmethod
    def of(cls, judge: JudgeDef) -> Scale:
        if judge.output == "scale_1_5":
            return cls((1, 2, 3, 4, 5), True, judge.threshold if judge.threshold is not None else 4.0)
        if judge.output == "pairwise":
            return cls((0.0, 0.5, 1.0), True, judge.threshold if judge.threshold is not None else 0.5)
        return cls((False, True), False, None)

    @property
    def metric(self) -> str:
        """The headline agreement statistic: quadratic-weighted kappa on ordered scales, else Cohen's kappa."""
        return "weighted_kappa" if self.ordinal else "kappa"


def judge_level(judge: JudgeDef, value: float) -> Hashable:
    """A stored score value as a level of the judge's scale (a mean of samples goes to the nearest level)."""
    if judge.output == "scale_1_5":
        return int(min(5, max(1, math.floor(value + 0.5))))
    if judge.output == "pairwise":
        return min(PAIRWISE_NAMES, key=lambda v: abs(v - value))
    return bool(value >= 0.5)


def human_level(judge: JudgeDef, value: Any) -> Hashable:
    """A label value as a level of the judge's scale (ValueError when it does not fit)."""
    v = normalise_value(value, judge.output)
    return PAIRWISE[str(v)] if judge.output == "pairwise" else v


def _consensus(values: list[Hashable], ordinal: bool) -> Hashable | None:
    if ordinal:
        return statistics.median_low(values)  # type: ignore[type-var]
    top = Counter(values).most_common(2)
    if len(top) > 1 and top[0][1] == top[1][1]:
        return None  # a tied vote: no consensus
    return top[0][0]


@dataclass(frozen=True)
class Pairs:
    """Judge and human levels of the labelled cases of one run, and what could not be paired."""

    keys: list[tuple[str, int]]
    judge: list[Hashable]
    human: list[Hashable]
    judge_passed: list[bool]
    units: list[dict[str, Hashable]]  # annotator → level per labelled case, for inter-annotator agreement
    model: str | None
    judge_ref: str | None
    unlabelled: int = 0  # scored cases with no label
    unscored: int = 0  # labelled cases the judge gave no verdict on (errors, not applicable, not in the run)
    tied: int = 0  # cases whose annotators split evenly


def pair_run(store: Store, run_id: str, judge: JudgeDef, labels: Sequence[Label]) -> Pairs:
    """Pair the run's scores from ``judge`` with ``labels`` (for that judge, by name) on case and repeat."""
    scale = Scale.of(judge)
    rows = store.query(
        "SELECT case_id, repeat, value, passed, json_extract_string(metadata, '$.judge') AS judge_ref,"
        " json_extract_string(metadata, '$.model') AS model FROM scores"
        " WHERE run_id = ? AND name = ? AND outcome = 'ok' ORDER BY case_id, repeat", [run_id, judge.name])
    refs = {r["judge_ref"] for r in rows if r["judge_ref"]}
    models = {r["model"] for r in rows if r["model"]}
    if len(models) > 1:
        raise UserError(f"run {run_id}: judge {judge.name} scored with several models ({', '.join(sorted(models))}); "
                        "calibrate one judge × model at a time")
    wanted = [lb for lb in labels if lb.judge_name == judge.name]
    versions = {lb.judge_version for lb in wanted if lb.judge_version}
    by_key: dict[tuple[str, int], dict[str, Hashable]] = {}
    for lb in wanted:
        try:
            level = human_level(judge, lb.value)
        except ValueError as exc:
            raise UserError(f"label for case '{lb.case_key}' by {lb.annotator}: {exc} (judge {judge.ref})") from None
        by_key.setdefault((lb.case_key, lb.repeat), {})[lb.annotator] = level
    if versions and refs and not any(ref.partition("@")[2] in versions for ref in refs):
        raise UserError(f"the labels name judge version(s) {', '.join(sorted(versions))}; run {run_id} scored with "
                        f"{', '.join(sorted(refs))}")
    keys, jv, hv, jp = [], [], [], []
    units = [dict(given) for given in by_key.values()]  # every labelled case, tied ones included
    tied = 0
    scored = set()
    for r in rows:
        key = (r["case_id"], int(r["repeat"]))
        scored.add(key)
        given = by_key.get(key) or (by_key.get((r["case_id"], 0)) if r["repeat"] else None)
        if not given:
            continue
        human = _consensus(list(given.values()), scale.ordinal)
        if human is None:
            tied += 1
            continue
        keys.append(key)
        jv.append(judge_level(judge, float(r["value"])))
        hv.append(human)
        jp.append(bool(r["passed"]))
    unscored = sum(1 for k in by_key if k not in scored)
    return Pairs(keys=keys, judge=jv, human=hv, judge_passed=jp, units=units,
                 model=next(iter(models), None), judge_ref=next(iter(refs), None),
                 unlabelled=len(rows) - len(keys) - tied, unscored=unscored, tied=tied)


@dataclass(frozen=True)
class Calibration:
    """One measured agreement of a judge@version × model with human labels."""

    calibration_id: str
    judge: JudgeDef
    model: str
    run_id: str
    scale: Scale
    report: AgreementReport
    pairs: Pairs
    inter_annotator: dict[str, Any] | None
    labels_sha256: str
    source: str
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def agreement(self) -> float:
        value = self.report.weighted_kappa if self.scale.ordinal else self.report.kappa
        return float("nan") if value is None else float(value)

    def as_row(self) -> dict[str, Any]:
        """The ``judge_calibrations`` row."""
        c = self.report.pass_confusion
        return {
            "calibration_id": self.calibration_id, "judge": self.judge.name, "judge_version": self.judge.version,
            "prompt_sha256": self.judge.prompt_sha256, "model": self.model, "output_kind": self.judge.output,
            "threshold": self.scale.threshold, "items": self.report.n, "agreement": _finite(self.agreement),
            "agreement_metric": self.scale.metric, "sensitivity": _finite(self.report.sensitivity),
            "specificity": _finite(self.report.specificity),
            "tp": c.tp if c else None, "fp": c.fp if c else None, "fn": c.fn if c else None, "tn": c.tn if c else None,
            "report": self.as_json(), "labels_sha256": self.labels_sha256, "run_id": self.run_id,
            "source": self.source, "created_at": self.created_at,
        }

    def as_json(self) -> dict[str, Any]:
        """Everything measured, JSON-able (what ``--json`` prints and the MLflow artifact holds)."""
        r = self.report
        names = [PAIRWISE_NAMES.get(c, c) if self.judge.output == "pairwise" else c for c in r.categories]  # type: ignore[call-overload]
        return {
            "calibration_id": self.calibration_id, "judge": self.judge.ref, "prompt_sha256": self.judge.prompt_sha256,
            "model": self.model, "run_id": self.run_id, "source": self.source, "items": r.n,
            "agreement_metric": self.scale.metric, "agreement": _finite(self.agreement),
            "accuracy": _finite(r.accuracy), "accuracy_ci": r.accuracy_ci,
            "kappa": _finite(r.kappa), "kappa_ci": r.kappa_ci,
            "weighted_kappa": _finite(r.weighted_kappa), "weighted_kappa_ci": r.weighted_kappa_ci,
            "sensitivity": _finite(r.sensitivity), "sensitivity_ci": r.sensitivity_ci,
            "specificity": _finite(r.specificity), "specificity_ci": r.specificity_ci,
            "threshold": self.scale.threshold, "categories": names, "confusion_matrix": r.matrix,
            "pass_confusion": None if r.pass_confusion is None else {
                "tp": r.pass_confusion.tp, "fp": r.pass_confusion.fp, "fn": r.pass_confusion.fn,
                "tn": r.pass_confusion.tn},
            "inter_annotator": self.inter_annotator, "unlabelled": self.pairs.unlabelled,
            "unscored": self.pairs.unscored, "tied": self.pairs.tied, "confidence": r.confidence,
            "resamples": r.resamples, "labels_sha256": self.labels_sha256,
            "created_at": self.created_at.isoformat(),
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def labels_digest(labels: Sequence[Label]) -> str:
    """A digest of the labels a calibration used (order-independent)."""
    rows = sorted(json.dumps(lb.model_dump(mode="json"), sort_keys=True) for lb in labels)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def calibrate(store: Store, run_id: str, judge: JudgeDef, labels: Sequence[Label], *, source: str,
              resamples: int = 2000, seed: int = 0, save: bool = True) -> Calibration:
    """Measure ``judge``'s agreement with ``labels`` on run ``run_id`` and (``save``) store it."""
    pairs = pair_run(store, run_id, judge, labels)
    if len(pairs.keys) < MIN_ITEMS:
        raise UserError(f"judge {judge.ref}: only {len(pairs.keys)} labelled case(s) with a verdict in run {run_id} "
                        f"(need at least {MIN_ITEMS}; {pairs.unscored} labelled case(s) had no verdict)")
    scale = Scale.of(judge)
    report = agreement_report(pairs.judge, pairs.human, categories=scale.categories, ordinal=scale.ordinal,
                              threshold=scale.threshold, resamples=resamples, seed=seed)
    ia = None
    if any(len(u) > 1 for u in pairs.units):
        level: Level = "ordinal" if scale.ordinal else "nominal"
        raw = inter_annotator(pairs.units, level=level)
        ia = {"level": raw["level"], "alpha": _finite(raw["alpha"]),
              "mean_pairwise_kappa": _finite(raw["mean_pairwise_kappa"]),
              "pairwise_kappa": {f"{a} × {b}": _finite(v) for (a, b), v in raw["pairwise_kappa"].items()},
              "annotators": raw["annotators"], "units": raw["units"]}
    cal = Calibration(calibration_id=uuid.uuid4().hex[:16], judge=judge, model=pairs.model or "unknown",
                      run_id=run_id, scale=scale, report=report, pairs=pairs, inter_annotator=ia,
                      labels_sha256=labels_digest([lb for lb in labels if lb.judge_name == judge.name]), source=source)
    if save:
        from evalkit.calibration.records import save_calibration

        save_calibration(store, cal.as_row())
    return cal
