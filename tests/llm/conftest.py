"""Fast, offline settings for the model-facade tests: tiny backoff, a private cache, clean state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evalkit.llm import cache, limiter, mock

API = {"api_key": "sk-test"}


@pytest.fixture(autouse=True)
def _llm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "llm_cache.sqlite"))
    monkeypatch.setenv("EVALKIT_BACKOFF_BASE", "0.005")
    monkeypatch.setenv("EVALKIT_BACKOFF_MAX", "0.05")
    monkeypatch.setenv("EVALKIT_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("EVALKIT_TIMEOUT", "5")
    monkeypatch.delenv("EVALKIT_JUDGE_MODEL", raising=False)
    monkeypatch.delenv("EVALKIT_API_BASE", raising=False)
    monkeypatch.delenv("EVALKIT_API_KEY", raising=False)
    cache.set_enabled(True)
    limiter.reset()
    mock.unregister_mock()
    yield tmp_path
    cache.close()
    mock.unregister_mock()
    cache.set_enabled(True)
