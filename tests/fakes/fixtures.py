"""Pytest fixtures for the fake OpenAI server. Import into a conftest::

    from tests.fakes.fixtures import openai_server  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_server import FakeOpenAIServer


@pytest.fixture(scope="session")
def _openai_server_session() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture
def openai_server(_openai_server_session: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """A loopback OpenAI-compatible server, reset for each test (``.url``, ``.script()``, ``.requests``)."""
    _openai_server_session.reset()
    yield _openai_server_session
    _openai_server_session.reset()
