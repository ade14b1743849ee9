"""The serialised concepts: cases, scores, case results and run summaries."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


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
    """One scorer's verdict on one case. ``value is None`` means not scored; then ``error`` says why."""

    model_config = ConfigDict(extra="forbid")
    name: str
    value: bool | float | None = None
    passed: bool | None = None
    rationale: str | None = None
    error: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

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
    scores: list[Score] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    latency_ms: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    trace_id: str | None = None
    started_at: datetime
    ended_at: datetime
    tags: list[str] = Field(default_factory=list)


class ScorerSummary(BaseModel):
    """Aggregate of one scorer over a run."""

    name: str
    mean: float | None
    pass_rate: float | None
    scored: int
    errors: int
    passed: int
    mean_ci: tuple[float, float] | None = None
    pass_rate_ci: tuple[float, float] | None = None


class RunSummary(BaseModel):
    """What a run produced, in numbers."""

    run_id: str
    suite: str
    status: Literal["running", "completed", "interrupted", "failed"] = "completed"
    cases: int
    errors: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    tokens_total: int = 0
    cost_usd_total: float = 0.0
    scorers: list[ScorerSummary] = Field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def metrics(self) -> dict[str, float]:
        """Flat metric names as logged to MLflow and used by thresholds."""
        out: dict[str, float] = {
            "cases": float(self.cases),
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
        return out
