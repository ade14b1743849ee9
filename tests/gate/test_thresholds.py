"""Threshold parsing and checking."""

from __future__ import annotations

import pytest

from evalkit.errors import EXIT_USAGE, UserError
from evalkit.gate import (
    Threshold,
    check_thresholds,
    known_metric_names,
    parse_threshold,
    parse_thresholds,
    validate_metric_names,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("correctness/mean>=0.8", Threshold(metric="correctness/mean", op=">=", value=0.8)),
        ("errors/rate<=0.02", Threshold(metric="errors/rate", op="<=", value=0.02)),
        ("errors/rate <= 2%", Threshold(metric="errors/rate", op="<=", value=0.02)),
        (" latency_ms/p95 < 1.5e3 ", Threshold(metric="latency_ms/p95", op="<", value=1500.0)),
        (
            "correctness/pass_rate>=0.9@lower_bound",
            Threshold(metric="correctness/pass_rate", op=">=", value=0.9, mode="lower_bound"),
        ),
    ],
)
def test_parse_cli_strings(text: str, expected: Threshold) -> None:
    t = parse_threshold(text)
    assert t == expected


@pytest.mark.parametrize(
    "bad", ["correctness/mean", "correctness/mean=>0.8", ">=0.8", "x>=abc", "x>=0.8@upper"]
)
def test_bad_strings_are_usage_errors(bad: str) -> None:
    with pytest.raises(UserError) as exc:
        parse_threshold(bad)
    assert exc.value.exit_code == EXIT_USAGE


def test_suite_yaml_forms() -> None:
    long = parse_thresholds(
        [
            {"metric": "correctness/mean", "op": ">=", "value": 0.8, "mode": "lower_bound"},
            "errors/rate<=0.02",
        ]
    )
    short = parse_thresholds(
        {"correctness/mean": ">=0.8@lower_bound", "errors/rate": {"op": "<=", "value": 0.02}}
    )
    assert long == short
    assert long[0].mode == "lower_bound" and long[1].mode == "point"
    assert parse_thresholds(None) == []
    assert parse_thresholds(["a/mean>=1"], mode="lower_bound")[0].mode == "lower_bound"
    with pytest.raises(UserError, match="op"):
        parse_thresholds([{"metric": "a/mean", "op": "=", "value": 1}], source="suite.yaml")
    with pytest.raises(UserError, match="mode"):
        parse_thresholds([{"metric": "a/mean", "op": ">=", "value": 1, "mode": "median"}])
    with pytest.raises(UserError):
        parse_thresholds(3)


def test_unknown_metric_is_a_usage_error_with_a_hint() -> None:
    metrics = {"correctness/mean": 0.9, "errors/rate": 0.0}
    with pytest.raises(UserError, match="did you mean correctness/mean") as exc:
        check_thresholds(parse_thresholds(["corectness/mean>=0.8"]), metrics)
    assert exc.value.exit_code == EXIT_USAGE
    # Before the run, from the suite's scorer names alone:
    validate_metric_names(
        parse_thresholds(["correctness/pass_all_k>=0.5"]), known_metric_names(["correctness"])
    )
    with pytest.raises(UserError):
        validate_metric_names(parse_thresholds(["tone/mean>=3"]), known_metric_names(["correctness"]))


def test_lower_bound_uses_the_conservative_end() -> None:
    metrics = {"q/mean": 0.85, "errors/rate": 0.01, "latency_ms/p95": 300.0}
    intervals = {"q/mean": (0.78, 0.91), "errors/rate": (0.002, 0.06)}
    checks = check_thresholds(
        parse_thresholds(["q/mean>=0.8", "q/mean>=0.8@lower_bound", "errors/rate<=0.05@lower_bound"]),
        metrics,
        intervals,
    )
    assert [c.passed for c in checks] == [True, False, False]
    assert checks[1].observed == 0.78 and checks[2].observed == 0.06
    with pytest.raises(UserError, match="no confidence interval"):
        check_thresholds(parse_thresholds(["latency_ms/p95<=500@lower_bound"]), metrics, intervals)


def test_missing_value_fails_the_check_rather_than_passing() -> None:
    (check,) = check_thresholds(parse_thresholds(["q/mean>=0.1"]), {"q/mean": None}, {"q/mean": None})
    assert not check.passed and "no value" in check.message


def test_pass_rate_of_a_scorer_without_verdicts_explains_itself() -> None:
    with pytest.raises(UserError, match="gives no pass/fail verdicts"):
        check_thresholds(parse_thresholds(["bleu/pass_rate>=0.5"]), {"bleu/mean": 0.4})
