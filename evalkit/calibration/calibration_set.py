"""Calibration sets: cases with a response under judgement and the label a careful human gave it.

A calibration set is a UTF-8 JSONL file, one item a line. An item is a dataset case (``id``,
``input``, ``expected``, ``expected_tool_calls``, ``context``, ``metadata``, ``tags``) plus what
the judge is shown of the run and the human verdict::

    {"id": "correctness-01", "input": "...", "expected": "...", "output": "...",
     "label": 5, "annotator": "evalkit-maintainers", "note": "paraphrase with identical facts"}

- ``output``: the response under judgement (required; for a pairwise judge, response A, the candidate);
- ``tool_calls``: the calls the agent made (``[{"name": ..., "arguments": {...}}]``), which the judge
  sees as ``{tool_calls}``; the expected ones are the case's ``expected_tool_calls``;
- ``rules``: the guidelines (a list of strings) a ``guideline_adherence`` judge checks, which a suite
  passes as the scorer's ``rules:`` argument;
- pairwise items put response B in ``metadata.baseline_output``, where the judge scorer looks for
  the other output, and label ``"A"`` (the ``output`` is better), ``"B"`` or ``"tie"``;
- ``label``: the human value (1-5, yes/no, A/B/tie), ``annotator`` (default ``anonymous``) and a
  ``note`` saying what the item probes.

The id is required (labels are keyed by it) and unique in the file. Problems are one line each,
naming the file, line and field, as for datasets and labels.
"""

from __future__ import annotations

import difflib
import importlib.resources
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evalkit.calibration.labels import (
    Label,
    LabelValue,
    canonical_value,
    iter_jsonl_records,
    label_error,
    located,
    normalise_value,
    raise_problems,
    validation_problems,
)
from evalkit.errors import UserError
from evalkit.judging.model import JudgeDef
from evalkit.schema import Case, ToolCall

CASE_FIELDS = tuple(Case.model_fields)
#: Keys of an item besides the case's.
ITEM_FIELDS = ("output", "tool_calls", "rules", "label", "annotator", "note")
KNOWN = (*CASE_FIELDS, *ITEM_FIELDS)
REFERENCE_KEY = "baseline_output"  # the judge scorer's default metadata key for a pairwise judge's other output
MAX_PROBLEMS = 20
_REPO_CALIBRATION = Path(__file__).resolve().parents[2] / "judges" / "calibration"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")

#: Where each judge field comes from in an item (for messages about what an item lacks).
SOURCE_OF = {
    "input": "input",
    "output": "output",
    "expected": "expected",
    "context": "context",
    "rules": "rules",
    "tool_calls": "tool_calls",
    "expected_tool_calls": "expected_tool_calls",
    "output_a": "output",
    "output_b": f"metadata.{REFERENCE_KEY}",
}


class CalibrationItem(BaseModel):
    """One case, the response under judgement (and the run's tool calls) and the human label."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    case: Case
    output: Any
    tool_calls: list[ToolCall] = Field(default_factory=list)
    rules: list[str] | None = None
    label: LabelValue
    annotator: str = "anonymous"
    note: str | None = None

    @field_validator("label", mode="before")
    @classmethod
    def _label(cls, v: Any) -> Any:
        try:
            return canonical_value(v)
        except ValueError as exc:
            raise label_error(str(exc)) from None

    @field_validator("annotator", mode="before")
    @classmethod
    def _annotator(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip():
            raise label_error("must not be empty (leave it out for 'anonymous')")
        return v

    @property
    def id(self) -> str:
        return self.case.id

    def fields(self, judge: JudgeDef, reference: str | None = None) -> dict[str, Any]:
        """The fields the judge scorer would give ``judge`` for this case and output
        (``reference``: the metadata key of a pairwise judge's other output, as the scorer's argument)."""
        from evalkit.judging.scorer import _fields
        from evalkit.scorers.registry import RunInfo

        ref_key = reference or REFERENCE_KEY
        ref = self.case.metadata.get(ref_key, self.case.expected) if judge.output == "pairwise" else None
        return _fields(self.case, self.output, RunInfo(tool_calls=list(self.tool_calls)), self.rules, ref)

    def missing(self, judge: JudgeDef, reference: str | None = None) -> list[str]:
        """The fields ``judge`` requires that this item does not give (the scorer would skip it)."""
        fields = self.fields(judge, reference)
        return [f for f in judge.requires if fields.get(f) in (None, "", [])]


def _parse(
    raw: dict[str, Any], path: Path, line: int, judge: JudgeDef | None
) -> CalibrationItem | list[UserError]:
    unknown = [k for k in raw if k not in KNOWN]
    problems: list[UserError] = []
    for key in unknown:
        close = difflib.get_close_matches(key, KNOWN, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        problems.append(
            located(f"field '{key}' is not a known field ({hint}known: {', '.join(KNOWN)})", path, line, key)
        )
    for key in ("id", "output", "label"):
        if key not in raw:
            why = " (labels are keyed by it)" if key == "id" else ""
            problems.append(located(f"field '{key}' is required{why}", path, line, key))
    if "id" in raw and (not isinstance(raw["id"], str | int) or isinstance(raw["id"], bool) or raw["id"] == ""):
        problems.append(located("must be a non-empty text", path, line, "id"))
    if problems:
        return problems
    try:
        case = Case.model_validate({k: raw[k] for k in CASE_FIELDS if k in raw})
    except ValidationError as exc:
        return validation_problems(exc, path, line, KNOWN)
    try:
        item = CalibrationItem.model_validate({**{k: raw[k] for k in ITEM_FIELDS if k in raw}, "case": case})
    except ValidationError as exc:
        return validation_problems(exc, path, line, KNOWN)
    if judge is None:
        return item
    try:
        value = normalise_value(item.label, judge.output)
    except ValueError as exc:
        return [located(f"{exc} (judge {judge.ref})", path, line, "label")]
    if type(value) is not type(item.label) or value != item.label:
        item = item.model_copy(update={"label": value})
    return [
        located(f"judge {judge.ref} needs its '{f}', which this item does not give", path, line, SOURCE_OF[f])
        for f in item.missing(judge)
    ] or item


def load_calibration_set(path: str | Path, judge: JudgeDef | None = None) -> list[CalibrationItem]:
    """Read and validate a calibration set (JSONL). With ``judge``, every label is fitted to its
    scale (:func:`~evalkit.calibration.labels.normalise_value`) and every item must give what the
    judge requires. Problems raise :class:`UserError` (several: ``UserErrors``), one line each."""
    p = Path(path)
    if p.suffix.lower() not in (".jsonl", ".ndjson"):
        raise UserError(f"a calibration set is a .jsonl file, not '{p.suffix}'", file=p)
    problems: list[UserError] = []
    items: list[CalibrationItem] = []
    seen: dict[str, int] = {}
    for line, raw in iter_jsonl_records(p, "calibration item", "calibration set"):
        if isinstance(raw, UserError):
            problems.append(raw)
        else:
            parsed = _parse(raw, p, line, judge)
            if isinstance(parsed, list):
                problems.extend(parsed)
            elif parsed.id in seen:
                problems.append(located(f"duplicate id '{parsed.id}' (first at line {seen[parsed.id]})", p, line, "id"))
            else:
                seen[parsed.id] = line
                items.append(parsed)
        if len(problems) >= MAX_PROBLEMS:
            break
    raise_problems(problems)
    return items


def builtin_calibration_dir() -> Path | None:
    """Where the built-in calibration sets live: package data ``evalkit/builtin_judges/calibration``,
    else the repo's ``judges/calibration``."""
    try:
        res = importlib.resources.files("evalkit") / "builtin_judges" / "calibration"
        if res.is_dir():
            return Path(str(res))
    except (ModuleNotFoundError, TypeError, FileNotFoundError):
        pass
    return _REPO_CALIBRATION if _REPO_CALIBRATION.is_dir() else None


def builtin_calibration_set(judge_name: str) -> Path | None:
    """The calibration set shipped for built-in judge ``judge_name`` (a name, or ``name@version``), or None."""
    name = judge_name.partition("@")[0]
    if not _NAME.fullmatch(name):
        return None
    for d in (builtin_calibration_dir(), _REPO_CALIBRATION):
        if d is not None and (d / f"{name}.jsonl").is_file():
            return d / f"{name}.jsonl"
    return None


def as_labels(items: Iterable[CalibrationItem], judge_ref: str | JudgeDef) -> list[Label]:
    """The set's labels as :class:`Label` rows keyed by case id, for ``judge_ref`` (``name`` or
    ``name@version``; a :class:`JudgeDef` also fits each value to its scale)."""
    ref = judge_ref.ref if isinstance(judge_ref, JudgeDef) else judge_ref
    out = []
    for item in items:
        value: Any = item.label
        if isinstance(judge_ref, JudgeDef):
            value = normalise_value(value, judge_ref.output)
        out.append(Label(case_id=item.id, judge=ref, value=value, annotator=item.annotator, note=item.note))
    return out
