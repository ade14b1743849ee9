"""Errors of the MLflow side: the tracking server cannot be reached, or refused a request.

They are not :class:`~evalkit.errors.UserError`: for ``evalkit run`` a tracking failure is a
warning (the run is safe in DuckDB and ``evalkit sync`` logs it later). The MLflow commands
turn them into one-line errors with exit code 3 (:func:`as_user_error`).
"""

from __future__ import annotations

from evalkit.errors import EXIT_INFRA, UserError
from evalkit.redact import redact


class TrackingError(Exception):
    """MLflow refused or failed a request. The run itself is safe in DuckDB; `evalkit sync` retries."""

    exit_code = EXIT_INFRA

    def __init__(self, message: str) -> None:
        self.message = redact(message)
        super().__init__(self.message)


class TrackingUnavailable(TrackingError):
    """The tracking server cannot be reached (connection refused, timed out, or unhealthy)."""


class TrackingCommandError(UserError):
    """A tracking failure reported by an MLflow command: one line, exit code 3."""

    exit_code = EXIT_INFRA


def as_user_error(exc: TrackingError) -> UserError:
    return TrackingCommandError(exc.message)
