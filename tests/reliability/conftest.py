"""Collects the reliability figures and prints them in pytest's terminal summary."""

from __future__ import annotations

from typing import Any

import pytest

FIGURES: dict[str, dict[str, Any]] = {}


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A dict the test fills; it is printed at the end of the session."""
    return FIGURES.setdefault(request.node.name, {})


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("evalkit reliability figures")
    for name, figs in FIGURES.items():
        if figs:
            terminalreporter.write_line(f"{name}: " + ", ".join(f"{k} {v}" for k, v in figs.items()))
