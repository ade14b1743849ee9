"""Whether the provider stack (litellm, the ``llm`` extra) is installed, checked without importing it.

litellm is an optional dependency: ``pip install 'evalkit[llm]'``. ``mock/<name>`` models never need
it; every other model string is routed through litellm, so a suite, judge or model target naming
one must say up front, as one :class:`~evalkit.errors.UserError`, that litellm is missing, before
any case runs (never a per-case error or a score).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.errors import UserError
from evalkit.llm import mock

if TYPE_CHECKING:
    from evalkit.suite import Suite

INSTALL_HINT = "pip install 'evalkit[llm]'"


def litellm_available() -> bool:
    """True when ``import litellm`` would find the package (nothing is imported)."""
    if sys.modules.get("litellm") is not None:
        return True
    try:
        return importlib.util.find_spec("litellm") is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as not installed
        return False


def needs_litellm(model: str) -> bool:
    """True when calling ``model`` goes through litellm: every model but ``mock/<name>``."""
    return not mock.is_mock(model)


def missing_litellm_hint(model: str, what: str = "model") -> str | None:
    """None when ``model`` can be called here, else one clause saying litellm is missing (for an error line).

    ``what`` names the model's role: ``"judge model"``, ``"target model"``, ...
    """
    if not needs_litellm(model) or litellm_available():
        return None
    return f"{what} '{model}' needs litellm, which is not installed: {INSTALL_HINT}"


def require_litellm(models: Iterable[tuple[str, str]], *, file: str | Path | None = None,
                    line: int | None = None) -> None:
    """Raise a :class:`UserError` for the first ``(model, what)`` that needs litellm when it is not installed."""
    for model, what in models:
        hint = missing_litellm_hint(model, what)
        if hint is not None:
            raise UserError(hint, file=file, line=line)


def scorer_role(fn: object, name: str) -> str:
    """How an error line names a scorer's model: ``judge model`` for LLM judges."""
    return "judge model" if getattr(fn, "judge_name", None) else f"scorer '{name}' model"


def check_suite(suite: Suite) -> None:
    """Before a run is planned: a :class:`UserError` (at the suite's target or scorers line) when its
    target or a scorer's model needs litellm and litellm is not installed.

    Suites loaded from a file were checked as they were built (model targets, judges); this also
    covers targets and scorers made in Python (``evalkit.evaluate(..., target=..., scorers=[...])``).
    """
    if litellm_available():
        return
    from evalkit.yaml_lines import line_of

    target = suite.target
    require_litellm(((m, "target model") for m in (target.models if target is not None else [])),
                    file=suite.path, line=line_of(suite.lines, ("target",)))
    for s in suite.scorers:
        model = getattr(s.fn, "model", None)
        if isinstance(model, str):
            require_litellm([(model, scorer_role(s.fn, s.name))], file=suite.path, line=line_of(suite.lines, ("scorers",)))
