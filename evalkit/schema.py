"""The serialised concepts: cases, scores, case results and run summaries."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalkit.safe_text import finite

Outcome = Literal["ok", "not_applicable", "error"]
"""A score's outcome: scored; the case lacks what the scorer needs (never a fail, never an error); or a fault."""

ErrorKind = Literal[
    "provider", "timeout", "judge_output_invalid", "scorer_exception", "target_exception", "cancelled", "internal",
]
"""Why a case or a score has no value."""

CaseOutcome = Literal["completed", "errored", "cancelled"]
"""Where one planned case × repeat ended in the run's ledger."""

_LEGACY_KINDS: tuple[tuple[str, ErrorKind], ...] = (
    ("provider_error", "provider"), ("judge_output_invalid", "judge_output_invalid"), ("timeout", "timeout"),
    ("not_scored: cancelled", "cancelled"), ("not_scored: target failed", "target_exception"),
)


def legacy_error_kind(error: str) -> ErrorKind:
    """The kind of an error message written before outcomes were typed (``"provider_error: ..."``)."""
    for prefix, kind in _LEGACY_KINDS:
        if error.startswith(prefix):
            return kind
    return "scorer_exception"


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    name: str | None = None


class ToolCall(BaseModel):
    """A tool call made by an agent, or expected of it."""

    model_config = ConfigDict(extra="forbid")
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Case(BaseModel):
    """One test case. ``id`` is stable: derived from the content when not given."""

    model_config = ConfigDict(extra="forbid")
    id: str = ""
    input: str | list[Message]
    expected: Any = None
    expected_tool_calls: list[ToolCall] | None = None
    context: str | list[str] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return v

    def model_post_init(self, __context: Any) -> None:
        if not self.id:
            self.id = content_id(self)

    @property
    def input_text(self) -> str:
        """The input as plain text (chat messages joined by role)."""
        if isinstance(self.input, str):
            return self.input
        return "\n".join(f"{m.role}: {m.content}" for m in self.input)

    @property
    def context_text(self) -> str:
        if self.context is None:
            return ""
        return self.context if isinstance(self.context, str) else "\n\n".join(self.context)


def content_id(case: Case) -> str:
    """A stable id from the case's content: everything but its id and tags."""
    body = case.model_dump(mode="json", exclude={"id", "tags"})
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return f"c-{digest[:12]}"


class Score(BaseModel):
    """One scorer's verdict on one case.

    ``outcome`` says what happened: ``ok`` (``value`` is set), ``not_applicable`` (the case lacks
    what the scorer needs: reported, never an error and never a fail) or ``error`` (``error_kind``
    and ``error`` say why). A score built with no value and no outcome is an error, and so is one
    whose value is not finite (NaN, ±inf: a ``scorer_exception``); non-finite numbers in
    ``metadata`` are stored as None (JSON has no NaN).
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    value: bool | float | None = None
    passed: bool | None = None
    rationale: str | None = None
    error: str | None = None
    outcome: Outcome = "ok"
    error_kind: ErrorKind | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _typed_outcome(self) -> Score:
        if self.outcome == "ok" and isinstance(self.value, float) and not math.isfinite(self.value):
            self.outcome, self.error_kind = "error", "scorer_exception"
            self.error = f"scorer returned a Score with value {self.value}: not a finite number"
        if self.metadata:
            self.metadata = finite(self.metadata)
        if self.outcome == "ok" and self.value is None:
            if self.error is not None and self.error.startswith("not_scored:") and not self.error.startswith(
                    ("not_scored: cancelled", "not_scored: target failed")):
                self.outcome = "not_applicable"
                self.error = self.error.removeprefix("not_scored:").strip()
            else:
                self.outcome = "error"
        if self.outcome == "error":
            self.error = self.error or "no value"
            self.error_kind = self.error_kind or legacy_error_kind(self.error)
        if self.outcome != "ok":
            self.value = self.passed = None
        if self.outcome != "error":
            self.error_kind = None
        return self

    @classmethod
    def not_applicable(cls, name: str, why: str) -> Score:
        """The case lacks what this scorer needs (no ``expected``, no spans, ...)."""
        return cls(name=name, outcome="not_applicable", error=why)

    @classmethod
    def failure(cls, name: str, kind: ErrorKind, message: str, **fields: Any) -> Score:
        """The scorer could not score the case for a fault of ``kind``."""
        return cls(name=name, outcome="error", error_kind=kind, error=message, **fields)

    @property
    def numeric(self) -> float | None:
        if self.value is None:
            return None
        return float(self.value)


class Usage(BaseModel):
    """Model usage accumulated by a case (target and judges together)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    llm_calls: int = 0
    cache_hits: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.llm_calls += other.llm_calls
        self.cache_hits += other.cache_hits


class CaseResult(BaseModel):
    """The outcome of running and scoring one case (one repeat of it)."""

    run_id: str
    case_id: str
    repeat: int = 0
    status: Literal["ok", "error", "cancelled"] = "ok"
    output: Any = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    scores: list[Score] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    latency_ms: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    trace_id: str | None = None
    started_at: datetime
    ended_at: datetime
    tags: list[str] = Field(default_factory=list)

    @property
    def outcome(self) -> CaseOutcome:
        """The ledger entry: cancelled, errored (the target or any scorer failed) or completed."""
        if self.status == "cancelled":
            return "cancelled"
        if self.status == "error" or any(s.outcome == "error" for s in self.scores):
            return "errored"
        return "completed"


class JudgeSummary(BaseModel):
    """An LLM-judge scorer's health in one run and, once calibrated, its agreement with human labels.

    Health: the share of invalid verdicts, position disagreement (pairwise judges: the verdict changed
    when the two outputs swapped places), the mean spread across ``samples: k`` and verbosity bias (the
    correlation of score with output length). With a calibration of this judge@version × model
    (``evalkit calibrate``): its agreement with humans and the pass rate corrected for the judge's
    measured sensitivity and specificity (Rogan–Gladen), whose interval carries both the run's and
    the calibration's uncertainty.
    """

    ref: str  # judge@version
    model: str | None = None
    invalid_rate: float | None = None
    position_disagreement: float | None = None
    mean_spread: float | None = None
    verbosity_corr: float | None = None
    calibration_id: str | None = None
    agreement: float | None = None
    agreement_metric: str | None = None
    calibration_items: int | None = None
    sensitivity: float | None = None
    specificity: float | None = None
    corrected_pass_rate: float | None = None
    corrected_pass_rate_ci: tuple[float, float] | None = None
    correction_note: str | None = None  # why no corrected rate, when calibrated but unusable


class ScorerSummary(BaseModel):
    """Aggregate of one scorer over a run (``judge``: set for LLM-judge scorers)."""

    name: str
    mean: float | None
    pass_rate: float | None
    scored: int
    errors: int
    passed: int
    not_applicable: int = 0
    mean_ci: tuple[float, float] | None = None
    pass_rate_ci: tuple[float, float] | None = None
    judge: JudgeSummary | None = None


class RunSummary(BaseModel):
    """What a run produced, in numbers."""

    run_id: str
    suite: str
    status: Literal["running", "completed", "interrupted", "failed"] = "completed"
    cases: int  # case × repeat results stored
    errors: int  # of them errored: the target or a scorer failed (the one error count)
    error_rate: float  # errors / (completed + errored): the one error rate, ``errors/rate``
    planned: int | None = None  # case × repeat the run planned (None: not known, e.g. an old store)
    completed: int = 0
    cancelled: int = 0
    missing: int = 0  # planned but neither completed, errored nor cancelled: a broken ledger
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    tokens_total: int = 0
    cost_usd_total: float = 0.0
    scorers: list[ScorerSummary] = Field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    notes: list[str] = Field(default_factory=list)  # what went wrong in the engine, for the reader

    def metrics(self) -> dict[str, float]:
        """Flat metric names as logged to MLflow and used by thresholds."""
        out: dict[str, float] = {
            "cases": float(self.cases),
            "cases/cancelled": float(self.cancelled),
            "errors/count": float(self.errors),
            "errors/rate": self.error_rate,
            "tokens/total": float(self.tokens_total),
            "cost_usd/total": self.cost_usd_total,
        }
        if self.latency_p50_ms is not None:
            out["latency_ms/p50"] = self.latency_p50_ms
        if self.latency_p95_ms is not None:
            out["latency_ms/p95"] = self.latency_p95_ms
        for s in self.scorers:
            if s.mean is not None:
                out[f"{s.name}/mean"] = s.mean
            if s.pass_rate is not None:
                out[f"{s.name}/pass_rate"] = s.pass_rate
            if s.mean_ci is not None:
                out[f"{s.name}/ci_low"], out[f"{s.name}/ci_high"] = s.mean_ci
            if s.pass_rate_ci is not None:
                out[f"{s.name}/pass_rate_ci_low"], out[f"{s.name}/pass_rate_ci_high"] = s.pass_rate_ci
            out[f"{s.name}/errors"] = float(s.errors)
            out[f"{s.name}/not_applicable"] = float(s.not_applicable)
            if s.judge is not None:
                out.update(_judge_metrics(s.name, s.judge))
        if self.planned is not None:
            out["cases/planned"] = float(self.planned)
            out["cases/missing"] = float(self.missing)
        return out

    @property
    def judges(self) -> list[tuple[str, JudgeSummary]]:
        """(scorer name, judge summary) of every LLM-judge scorer."""
        return [(s.name, s.judge) for s in self.scorers if s.judge is not None]

    @property
    def accounted(self) -> bool:
        """Every planned case × repeat ended completed, errored or cancelled."""
        return self.missing == 0


def _judge_metrics(name: str, j: JudgeSummary) -> dict[str, float]:
    """``<scorer>/judge/*`` health and agreement metrics and ``<scorer>/corrected_pass_rate*``."""
    out: dict[str, float] = {}
    for key, value in (("invalid_rate", j.invalid_rate), ("position_disagreement", j.position_disagreement),
                       ("spread", j.mean_spread), ("verbosity_corr", j.verbosity_corr),
                       ("agreement", j.agreement), ("sensitivity", j.sensitivity), ("specificity", j.specificity)):
        if value is not None:
            out[f"{name}/judge/{key}"] = float(value)
    if j.corrected_pass_rate is not None:
        out[f"{name}/corrected_pass_rate"] = j.corrected_pass_rate
    if j.corrected_pass_rate_ci is not None:
        out[f"{name}/corrected_pass_rate_ci_low"], out[f"{name}/corrected_pass_rate_ci_high"] = j.corrected_pass_rate_ci
    return out
