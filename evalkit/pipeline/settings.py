"""One run-settings type for every door (CLI flags, pytest options, ``evaluate()`` arguments).

Precedence, the same everywhere: an explicit setting (flag, option, argument) beats the
``EVALKIT_*`` environment, which beats the suite's ``defaults:``, which beat the built-ins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from evalkit.errors import UserError
from evalkit.suite import RunDefaults

# settings that define what a run is: a resumed run keeps them, and a conflicting flag is bad input
PLAN_KEYS = ("repeats", "limit", "shard", "thresholds", "lower_bound", "max_error_rate", "timeout_s",
             "min_judge_agreement")
# settings a suite's ``defaults:`` may fix
SUITE_KEYS = tuple(RunDefaults.model_fields)
# environment variables: name, and how a switch reads ("off": a true value turns the setting off)
ENV: dict[str, tuple[str, str]] = {
    "concurrency": ("EVALKIT_CONCURRENCY", "value"),
    "timeout_s": ("EVALKIT_CASE_TIMEOUT", "value"),  # EVALKIT_TIMEOUT is one model call's
    "repeats": ("EVALKIT_REPEAT", "value"),
    "max_error_rate": ("EVALKIT_MAX_ERROR_RATE", "value"),
    "min_judge_agreement": ("EVALKIT_MIN_JUDGE_AGREEMENT", "value"),
    "mlflow": ("EVALKIT_NO_MLFLOW", "off"),
    "tracing": ("EVALKIT_NO_TRACE", "off"),
    "cache": ("EVALKIT_NO_CACHE", "off"),
    "capture_content": ("EVALKIT_TRACE_CONTENT", "on"),
    "team": ("EVALKIT_TEAM", "value"),
    "mlflow_traces": ("EVALKIT_MLFLOW_TRACES", "value"),
    "workers": ("EVALKIT_WORKERS", "value"),
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class RunSettings(RunDefaults):
    """How one run is planned, executed, gated and reported (the suite's ``defaults:`` are its first fields)."""

    limit: int | None = Field(default=None, ge=1)
    shard: str | None = None
    thresholds: list[str] = Field(default_factory=list)  # beyond the suite's own
    lower_bound: bool = False
    baseline: str | None = None
    fail_on_regression: bool = False
    require_baseline: bool = False  # a keyword baseline that finds no run is exit 2, not a notice
    min_effect: float = Field(default=0.0, ge=0)
    resume: str | None = None
    retry_errors: str | None = None
    cache: bool = True
    tracing: bool = True
    capture_content: bool = True
    mlflow: bool = True
    mlflow_traces: str = "all:1000"  # see evalkit.tracking.mlflow_traces.DEFAULT_MODE
    team: str | None = None
    engine: Literal["local", "ray"] = "local"
    # local worker processes (1: in this process; "auto": see evalkit.batch.local_workers.auto_workers),
    # or with engine "ray" the Ray workers ("auto": the cluster's CPUs)
    workers: int | Literal["auto"] = "auto"
    ray_address: str | None = None
    collect: int | None = Field(default=None, ge=0, le=65535)
    junit: Path | None = None
    markdown: Path | None = None
    json_file: Path | None = None
    html: Path | None = None

    @field_validator("mlflow_traces", mode="before")
    @classmethod
    def _trace_mode(cls, v: Any) -> str:
        from evalkit.tracking.mlflow_traces import parse_mode

        try:
            return str(parse_mode(str(v)))
        except UserError as exc:
            raise ValueError(exc.message) from None

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, v: Any) -> int | str:
        text = str(v).strip().lower() if not isinstance(v, bool) else ""
        if text == "auto":
            return "auto"
        if text.isdigit() and 1 <= int(text) <= 1024:
            return int(text)
        raise ValueError(f"workers {v!r}: expected a number of worker processes (1 to 1024) or 'auto'")

    def plan_part(self) -> dict[str, Any]:
        """The settings stored with a run and inherited by ``--resume`` (JSON)."""
        return self.model_dump(mode="json", include=set(PLAN_KEYS))


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (var, how) in ENV.items():
        raw = env.get(var)
        if raw is None:
            continue
        if how != "value":
            low = raw.strip().lower()
            if low not in _TRUE + _FALSE:
                raise UserError(f"environment variable {var}={raw!r}: expected 1/0, true/false, yes/no")
            out[key] = (low in _TRUE) == (how == "on")
        elif raw.strip():
            out[key] = raw.strip()
    return out


def resolve_settings(
    explicit: Mapping[str, Any], suite_defaults: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
) -> tuple[RunSettings, frozenset[str]]:
    """Merge the layers (explicit > environment > suite > built-in); returns the settings and the explicit keys.

    ``None`` in ``explicit`` means "not given". Bad values are a :class:`UserError` naming their source.
    """
    given = {k: v for k, v in explicit.items() if v is not None}
    layers: list[tuple[str, dict[str, Any]]] = [
        ("the suite's defaults", {k: v for k, v in (suite_defaults or {}).items() if k in SUITE_KEYS}),
        ("the environment", _from_env(os.environ if env is None else env)),
        ("the arguments", given),
    ]
    merged: dict[str, Any] = {}
    for _, layer in layers:
        merged.update(layer)
    try:
        settings = RunSettings.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        source = next((name for name, layer in reversed(layers) if key in layer), "the arguments")
        var = ENV.get(key, ("", ""))[0]
        where = f"{var} in the environment" if source == "the environment" and var else f"'{key}' in {source}"
        msg = ("is not a known setting" if err["type"] == "extra_forbidden"
               else err["msg"].lower().removeprefix("value error, "))
        raise UserError(f"{where}: {msg}") from None
    return settings, frozenset(given)
