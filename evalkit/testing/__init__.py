"""Helpers for evalkit's pytest plugin: ``cases`` (parametrise a test over a suite), the
``evaluate`` fixture's :class:`Evaluator` and its :class:`CaseEval` results.

Importing this package is cheap: ``cases`` loads nothing until pytest collects the test.
"""

from __future__ import annotations

from typing import Any

from evalkit.testing.cases import cases

__all__ = ["CaseEval", "Evaluator", "cases"]


def __getattr__(name: str) -> Any:
    if name == "CaseEval":
        from evalkit.testing.result import CaseEval

        return CaseEval
    if name == "Evaluator":
        from evalkit.testing.evaluator import Evaluator

        return Evaluator
    raise AttributeError(name)
