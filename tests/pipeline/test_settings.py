"""One precedence rule for run settings: explicit > EVALKIT_* environment > suite defaults > built-in."""

from __future__ import annotations

import pytest

from evalkit.errors import UserError
from evalkit.pipeline.settings import PLAN_KEYS, RunSettings, resolve_settings


def test_each_layer_beats_the_one_below() -> None:
    suite = {"concurrency": 4, "repeats": 2, "timeout_s": 5.0}
    env = {"EVALKIT_CONCURRENCY": "8", "EVALKIT_NO_MLFLOW": "yes", "EVALKIT_CASE_TIMEOUT": "7.5"}
    settings, explicit = resolve_settings({"repeats": 3, "limit": None}, suite, env)
    assert (settings.repeats, settings.concurrency, settings.timeout_s) == (3, 8, 7.5)
    assert settings.mlflow is False and settings.max_error_rate == RunSettings().max_error_rate
    assert explicit == {"repeats"}  # None means "not given"


def test_negated_switches_and_bad_values_name_their_source() -> None:
    assert resolve_settings({}, None, {"EVALKIT_NO_TRACE": "0"})[0].tracing is True
    with pytest.raises(UserError, match="EVALKIT_NO_TRACE='maybe'"):
        resolve_settings({}, None, {"EVALKIT_NO_TRACE": "maybe"})
    with pytest.raises(UserError, match="EVALKIT_CONCURRENCY in the environment"):
        resolve_settings({}, None, {"EVALKIT_CONCURRENCY": "lots"})
    with pytest.raises(UserError, match="'max_error_rate' in the suite's defaults"):
        resolve_settings({}, {"max_error_rate": 2}, {})
    with pytest.raises(UserError, match="'repeats' in the arguments"):
        resolve_settings({"repeats": 0}, None, {})


def test_the_stored_plan_part_is_what_resume_inherits() -> None:
    settings, _ = resolve_settings({"repeats": 2, "thresholds": ["x/mean>=1"], "concurrency": 3}, None, {})
    assert set(settings.plan_part()) == set(PLAN_KEYS) and "concurrency" not in settings.plan_part()
    assert settings.plan_part()["thresholds"] == ["x/mean>=1"]
