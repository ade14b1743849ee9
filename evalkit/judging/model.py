"""The judge definition (a versioned YAML file) and the verdict shapes judges must answer with."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

OutputKind = Literal["scale_1_5", "yes_no", "pairwise"]

#: Placeholders a judge prompt may use. Every value is untrusted and rendered inside delimiters.
FIELDS = (
    "input",
    "output",
    "expected",
    "context",
    "rules",
    "tool_calls",
    "expected_tool_calls",
    "output_a",
    "output_b",
)
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class JudgeDef(BaseModel):
    """One judge: its rubric prompt, verdict shape, pass threshold and default model."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    version: str
    description: str
    output: OutputKind
    system: str = "You are a careful, impartial evaluator of AI assistant outputs."
    prompt: str
    threshold: float | None = None
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0})
    requires: list[str] = Field(default_factory=list)
    source: str | None = Field(default=None, exclude=True)

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _check(self) -> JudgeDef:
        unknown = sorted({m for m in PLACEHOLDER.findall(self.prompt) if m not in FIELDS})
        if unknown:
            raise ValueError(
                f"prompt uses unknown placeholder '{{{unknown[0]}}}' (known: {', '.join(FIELDS)})"
            )
        bad = [r for r in self.requires if r not in FIELDS]
        if bad:
            raise ValueError(f"requires names unknown field '{bad[0]}'")
        if self.output == "scale_1_5" and self.threshold is not None and not 1 <= self.threshold <= 5:
            raise ValueError("threshold of a scale_1_5 judge must be between 1 and 5")
        if self.output == "pairwise" and not {"output_a", "output_b"} <= set(
            PLACEHOLDER.findall(self.prompt)
        ):
            raise ValueError("a pairwise judge's prompt must use {output_a} and {output_b}")
        return self

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def prompt_sha256(self) -> str:
        """SHA-256 of the prompt template (system + user), the identity of the rubric."""
        return hashlib.sha256(f"{self.system}\n\x00\n{self.prompt}".encode()).hexdigest()

    @property
    def placeholders(self) -> list[str]:
        return list(dict.fromkeys(PLACEHOLDER.findall(self.prompt)))


class _Verdict(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rationale: str = Field(min_length=1)


class ScaleVerdict(_Verdict):
    """Answer of a ``scale_1_5`` judge."""

    score: int = Field(ge=1, le=5)


class YesNoVerdict(_Verdict):
    """Answer of a ``yes_no`` judge."""

    verdict: Literal["yes", "no"]

    @field_validator("verdict", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v


class PairwiseVerdict(_Verdict):
    """Answer of a ``pairwise`` judge: which response is better."""

    preference: Literal["A", "B", "tie"]

    @field_validator("preference", mode="before")
    @classmethod
    def _norm(cls, v: Any) -> Any:
        if isinstance(v, str):
            s = v.strip()
            return "tie" if s.lower() == "tie" else s.upper()
        return v


VERDICTS: dict[str, type[_Verdict]] = {
    "scale_1_5": ScaleVerdict,
    "yes_no": YesNoVerdict,
    "pairwise": PairwiseVerdict,
}

_SHAPES = {
    "scale_1_5": (
        '{"rationale": "<one or two sentences>", "score": <integer 1-5>}',
        {"type": "integer", "minimum": 1, "maximum": 5},
        "score",
    ),
    "yes_no": (
        '{"rationale": "<one or two sentences>", "verdict": "yes" | "no"}',
        {"type": "string", "enum": ["yes", "no"]},
        "verdict",
    ),
    "pairwise": (
        '{"rationale": "<one or two sentences>", "preference": "A" | "B" | "tie"}',
        {"type": "string", "enum": ["A", "B", "tie"]},
        "preference",
    ),
}


def answer_shape(kind: str) -> str:
    """The JSON shape shown to the judge in plain-text instructions."""
    return _SHAPES[kind][0]


def json_schema(kind: str) -> dict[str, Any]:
    """The strict JSON schema of a verdict, for ``response_format``."""
    _, prop, key = _SHAPES[kind]
    return {
        "type": "object",
        "properties": {"rationale": {"type": "string"}, key: prop},
        "required": ["rationale", key],
        "additionalProperties": False,
    }
