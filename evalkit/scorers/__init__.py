"""Scorers: built-in deterministic ones and the registry for user scorers."""

from evalkit.scorers.registry import BoundScorer, RunInfo, build_scorer, register, registered, scorer

__all__ = ["BoundScorer", "RunInfo", "build_scorer", "register", "registered", "scorer"]
