"""Facade settings, read from the environment on each use (so tests can change them)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw not in (None, "") else default
    except ValueError:
        return default


def _int(name: str, default: int) -> int:
    return int(_float(name, default))


@dataclass(frozen=True)
class Settings:
    max_attempts: int
    backoff_base_s: float
    backoff_max_s: float
    retry_after_max_s: float
    timeout_s: float
    model_concurrency: int


def settings() -> Settings:
    """Current settings: ``EVALKIT_MAX_ATTEMPTS`` (4), ``EVALKIT_BACKOFF_BASE`` (0.5 s),
    ``EVALKIT_BACKOFF_MAX`` (20 s), ``EVALKIT_RETRY_AFTER_MAX`` (60 s), ``EVALKIT_TIMEOUT`` (60 s),
    ``EVALKIT_MODEL_CONCURRENCY`` (32 calls in flight per model)."""
    return Settings(
        max_attempts=max(1, _int("EVALKIT_MAX_ATTEMPTS", 4)),
        backoff_base_s=max(0.0, _float("EVALKIT_BACKOFF_BASE", 0.5)),
        backoff_max_s=max(0.0, _float("EVALKIT_BACKOFF_MAX", 20.0)),
        retry_after_max_s=max(0.0, _float("EVALKIT_RETRY_AFTER_MAX", 60.0)),
        timeout_s=max(0.001, _float("EVALKIT_TIMEOUT", 60.0)),
        model_concurrency=max(1, _int("EVALKIT_MODEL_CONCURRENCY", 32)),
    )
