"""Run evalkit commands in-process (mlflow is imported once per test session, not per command)."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from evalkit.cli.app import _mount, app
from evalkit.errors import UserError

_mounted = False


def cli(*args: str) -> tuple[int, str]:
    """(exit code, stdout) of ``evalkit ARGS``; user errors give their exit code and message."""
    global _mounted
    if not _mounted:
        _mount()
        _mounted = True
    res = CliRunner().invoke(app, list(args), standalone_mode=False)
    if isinstance(res.exception, UserError):
        return res.exception.exit_code, res.exception.format()
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    rv = res.return_value
    return (rv if isinstance(rv, int) else res.exit_code), res.stdout


def cli_json(*args: str) -> Any:
    code, out = cli(*args)
    assert code == 0, out
    return json.loads(out)
