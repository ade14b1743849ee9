"""Errors of the MLflow side: the tracking server cannot be reached, or refused a request."""

from __future__ import annotations

from evalkit.errors import EXIT_INFRA, UserError


class TrackingError(UserError):
    """MLflow refused or failed a request. The run itself is safe in DuckDB; `evalkit sync` retries."""

    exit_code = EXIT_INFRA


class TrackingUnavailable(TrackingError):
    """The tracking server cannot be reached (connection refused, timed out, or unhealthy)."""
