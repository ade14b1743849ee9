"""Tracing tests: an isolated workspace, no LLM cache, no MLflow, the span scorers registered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import evalkit.scorers.spans_scorers  # noqa: F401  (registers no_error_spans & co. until the registry imports it)
from evalkit.llm import mock


@pytest.fixture(autouse=True)
def _tracing_env(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("EVALKIT_JUDGE_MODEL", raising=False)
    monkeypatch.delenv("EVALKIT_TRACE_CONTENT", raising=False)
    monkeypatch.setenv("EVALKIT_NO_MLFLOW", "1")  # evaluate() logs to MLflow like `evalkit run`; these tests are about spans
    mock.unregister_mock()
    yield workspace
    mock.unregister_mock()
