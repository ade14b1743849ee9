"""Plain data types of the model facade: completions, call records and the error callers see."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ErrorKind = Literal[
    "rate_limited",
    "server_error",
    "timeout",
    "connection",
    "bad_request",
    "auth",
    "not_found",
    "context_window",
    "content_policy",
    "mock",
    "unknown",
]

RETRIABLE: frozenset[str] = frozenset({"rate_limited", "server_error", "timeout", "connection"})


@dataclass
class Completion:
    """One model answer, with its accounting. ``cost_usd`` is 0 for cache hits (nothing was spent)."""

    text: str
    model: str
    response_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    cache_hit: bool = False
    finish_reason: str | None = None
    attempts: int = 1


class ModelError(Exception):
    """A model call that failed for good (after retries when retriable). Messages are scrubbed of secrets."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        self.kind = kind
        self.message = message
        self.status = status
        self.attempts = attempts
        self.retry_after = retry_after
        super().__init__(f"{kind}: {message}")

    @property
    def retriable(self) -> bool:
        return self.kind in RETRIABLE

    @property
    def error_kind(self) -> str:
        """The ledger's error kind for a case or score this failure leaves without a value."""
        return "timeout" if self.kind == "timeout" else "provider"


@dataclass
class CallRecord:
    """What listeners (e.g. tracing) learn about one facade call. Never holds API keys."""

    model: str
    provider: str
    request_model: str
    response_model: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    messages: list[dict[str, Any]]
    completion: str | None
    error_type: str | None
    start_time_ns: int
    end_time_ns: int
    cache_hit: bool = False
    attempts: int = 1
    finish_reason: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    case_id: str | None = None
    run_id: str | None = None
