"""Scorers: built-in deterministic ones and the registry for user scorers."""

from evalkit.scorers._util import NotScored
from evalkit.scorers.registry import (
    BoundScorer,
    RunInfo,
    build_scorer,
    register,
    registered,
    scorer,
    scorer_factory,
)

__all__ = ["BoundScorer", "NotScored", "RunInfo", "build_scorer", "register", "registered", "scorer", "scorer_factory"]
