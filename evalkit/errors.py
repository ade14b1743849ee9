"""Errors a user can fix, with the place they come from, and the CLI's exit codes."""

from __future__ import annotations

from pathlib import Path

from evalkit.redact import redact

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Bad input or misconfiguration: printed as one line, no traceback, exit code 2."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
            where += ": "
        what = f"field '{self.field}' " if self.field and f"'{self.field}'" not in self.message else ""
        return redact(f"{where}{what}{self.message}".replace("\n", " "))

    def lines(self) -> list[str]:
        """The lines the CLI prints, each after ``error: ``."""
        return [self.format()]


class UserErrors(UserError):
    """Several mistakes in one file, reported together: one located line each."""

    def __init__(self, problems: list[UserError]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(first.message, file=first.file, line=first.line, field=first.field)

    def format(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        return [p.format() for p in self.problems]


class StoreError(UserError):
    """The results store cannot be opened or written (locked, read-only, disk full)."""

    exit_code = EXIT_INFRA


class StoreCorrupt(StoreError):
    """The store file is damaged (truncated, a checksum mismatch, not a DuckDB file); ``evalkit doctor`` says what to do."""

    reason: str = ""  # what DuckDB found, without the advice


class StoreLocked(StoreError):
    """Another process holds the store's write lock."""


def describe_exception(exc: BaseException) -> str:
    """``Type: first line of the message`` (``SystemExit(2)`` for exits), for one-line error records."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) raised by user code"
    try:
        text = str(exc).strip()
    except Exception:  # an exception whose message itself fails is still a one-line record
        text = "<message could not be printed>"
    first = redact(text.splitlines()[0]) if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
