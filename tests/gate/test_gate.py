"""The gate verdict with scripted agents and judges: regressions, judge noise, outages."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl
import pytest

from evalkit.errors import EXIT_GATE_FAILED, EXIT_INFRA, EXIT_OK, UserError
from evalkit.gate import compare_runs, evaluate_gate, parse_thresholds

from . import _sim

N = 200
R = 200  # resamples: p-value resolution 1/201, ample for alpha = 0.05


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return _sim.agent_truth(N, 0.85, seed=7)


def test_true_regression_of_10_points_fails_the_gate(truth: np.ndarray) -> None:
    base = _sim.judge(truth, flip=0.0, seed=1)
    cur = _sim.judge(_sim.regress(truth, 0.10, seed=2), flip=0.0, seed=3)
    gate = evaluate_gate(_sim.summarise(cur), cur, [], base, fail_on_regression=True, n_resamples=R)
    assert gate.exit_code == EXIT_GATE_FAILED and not gate.passed and gate.status == "failed"
    (reg,) = gate.regressions
    assert reg.label == "correctness/pass_rate"
    assert reg.delta == pytest.approx(-0.10)
    assert reg.ci is not None and reg.ci[1] < 0
    assert reg.p_value is not None and reg.p_value < 1e-4
    assert len(reg.to_fail) == 20 and reg.to_pass == []
    assert "regressed" in gate.reason


def test_regression_is_reported_but_not_gating_without_the_flag(truth: np.ndarray) -> None:
    base = _sim.judge(truth, flip=0.0, seed=1)
    cur = _sim.judge(_sim.regress(truth, 0.10, seed=2), flip=0.0, seed=3)
    gate = evaluate_gate(_sim.summarise(cur), cur, [], base, fail_on_regression=False, n_resamples=R)
    assert gate.exit_code == EXIT_OK and len(gate.regressions) == 1
    assert "not gating" in gate.reason


def test_min_effect_ignores_small_significant_drops(truth: np.ndarray) -> None:
    base = _sim.judge(truth, flip=0.0, seed=1)
    cur = _sim.judge(_sim.regress(truth, 0.10, seed=2), flip=0.0, seed=3)
    gate = evaluate_gate(
        _sim.summarise(cur), cur, [], base, fail_on_regression=True, min_effect=0.15, n_resamples=R
    )
    assert gate.exit_code == EXIT_OK
    assert gate.baseline is not None and gate.baseline.comparisons[-1].significant


def test_judge_noise_passes_in_at_least_95_of_100_runs(truth: np.ndarray) -> None:
    """Same agent, a judge flipping 10 % of verdicts at random, baseline judged the same way."""
    thresholds = parse_thresholds(["correctness/pass_rate>=0.65@lower_bound"])
    passed = naive_failures = 0
    for i in range(100):
        base = _sim.judge(truth, flip=0.1, seed=1000 + i)
        cur = _sim.judge(truth, flip=0.1, seed=2000 + i)
        gate = evaluate_gate(
            _sim.summarise(cur, intervals=False),
            cur,
            thresholds,
            base,
            fail_on_regression=True,
            seed=i,
            n_resamples=R,
        )
        passed += gate.exit_code == EXIT_OK
        naive_failures += int(cur["value"].mean() < base["value"].mean())  # type: ignore[operator]
    assert passed >= 95
    assert naive_failures > 25  # "fail on any drop" would cry wolf on a large share of runs


def test_regression_under_judge_noise_is_caught_with_repeats(truth: np.ndarray) -> None:
    """With --repeat 3 the same noisy judge still separates a real 10-point regression from noise."""
    noise_passes = caught = 0
    for i in range(100):
        base = _sim.judge(truth, flip=0.1, seed=5000 + i, repeats=3)
        same = _sim.judge(truth, flip=0.1, seed=6000 + i, repeats=3)
        worse = _sim.judge(_sim.regress(truth, 0.10, seed=i), flip=0.1, seed=7000 + i, repeats=3)
        kw: dict[str, Any] = {"fail_on_regression": True, "seed": i, "n_resamples": R}
        noise_passes += evaluate_gate(_sim.summarise(same, intervals=False), same, [], base, **kw).passed
        caught += evaluate_gate(_sim.summarise(worse, intervals=False), worse, [], base, **kw).exit_code == 1
    assert noise_passes >= 95
    assert caught >= 90


def test_thresholds_on_unknown_metrics_raise_usage_error(truth: np.ndarray) -> None:
    cur = _sim.judge(truth, flip=0.0, seed=1)
    with pytest.raises(UserError, match="unknown metric 'correctnes/mean'") as exc:
        evaluate_gate(_sim.summarise(cur), cur, parse_thresholds(["correctnes/mean>=0.5"]), n_resamples=R)
    assert exc.value.exit_code == 2
    with pytest.raises(UserError, match="no confidence interval"):
        evaluate_gate(
            _sim.summarise(cur), cur, parse_thresholds(["latency_ms/p95<=900@lower_bound"]), n_resamples=R
        )


def test_provider_outage_exits_3_not_1(truth: np.ndarray) -> None:
    """Every judge call returned HTTP 500: no quality verdict, infrastructure exit code."""
    cur = _sim.judge(truth, flip=0.0, seed=1, error_rate=1.0)
    base = _sim.judge(truth, flip=0.0, seed=2)
    thresholds = parse_thresholds(["correctness/mean>=0.8", "correctness/pass_rate>=0.8@lower_bound"])
    gate = evaluate_gate(_sim.summarise(cur), cur, thresholds, base, fail_on_regression=True, n_resamples=R)
    assert gate.exit_code == EXIT_INFRA and gate.status == "infra_error" and not gate.passed
    assert gate.error_rate == 1.0 and "infrastructure" in gate.reason
    assert all(not c.passed for c in gate.checks)  # reported, but not the verdict


def test_error_rate_above_max_takes_precedence_over_quality(truth: np.ndarray) -> None:
    cur = _sim.judge(truth, flip=0.0, seed=1)
    summary = _sim.summarise(cur, case_errors=30)  # the target failed on 30 of 230 case runs
    failing = parse_thresholds(["correctness/mean>=0.99"])
    gate = evaluate_gate(summary, cur, failing, max_error_rate=0.05, n_resamples=R)
    assert gate.exit_code == EXIT_INFRA
    assert gate.error_rate == pytest.approx(30 / 230)
    relaxed = evaluate_gate(summary, cur, failing, max_error_rate=0.2, n_resamples=R)
    assert relaxed.exit_code == EXIT_GATE_FAILED


def test_scorer_errors_are_excluded_from_quality_comparisons(truth: np.ndarray) -> None:
    base = _sim.judge(truth, flip=0.0, seed=1)
    cur = _sim.judge(truth, flip=0.0, seed=2, error_rate=0.03)  # a few judge timeouts
    gate = evaluate_gate(_sim.summarise(cur), cur, [], base, fail_on_regression=True, n_resamples=R)
    assert gate.exit_code == EXIT_OK
    assert gate.baseline is not None
    comp = gate.baseline.comparisons[-1]
    assert comp.delta == 0.0 and comp.n_shared == cur["value"].drop_nulls().len()
    assert 0 < gate.error_rate < 0.05  # the one error rate counts the judge's errored case runs


def test_gate_fills_intervals_and_repeat_metrics_from_scores(truth: np.ndarray) -> None:
    cur = _sim.judge(truth, flip=0.1, seed=3, repeats=3)
    summary = _sim.summarise(cur, intervals=False)
    gate = evaluate_gate(
        summary,
        cur,
        parse_thresholds(["correctness/mean>=0.5@lower_bound", "correctness/pass_all_k>=0.3"]),
        n_resamples=R,
    )
    assert gate.passed
    m = gate.metrics
    assert m["correctness/ci_low"] is not None and m["correctness/ci_low"] < m["correctness/mean"]  # type: ignore[operator]
    assert m["correctness/pass_all_k"] < m["correctness/pass_rate"] < m["correctness/pass_at_k"]  # type: ignore[operator]
    assert 0 < m["correctness/flaky_rate"] < 1  # type: ignore[operator]


def test_gate_result_is_json_serialisable(truth: np.ndarray) -> None:
    base = _sim.judge(truth, flip=0.1, seed=1)
    cur = _sim.judge(truth, flip=0.1, seed=2)
    gate = evaluate_gate(
        _sim.summarise(cur), cur, parse_thresholds(["correctness/mean>=0.5"]), base, n_resamples=R
    )
    data = json.loads(json.dumps(gate.model_dump(mode="json")))
    assert data["exit_code"] == 0 and data["checks"][0]["passed"] is True
    assert type(gate).model_validate(data) == gate


def test_numeric_judge_scale_gates_on_mean_and_pass_rate_with_holm() -> None:
    rng = np.random.default_rng(9)
    ids = [f"c{i}" for i in range(150)]
    base_v = rng.integers(3, 6, 150).astype(float)
    cur_v = np.clip(base_v - (rng.random(150) < 0.4), 1, 5)  # 40 % of answers lose a point

    def frame(v: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({"case_id": ids, "name": "judge", "value": v, "passed": v >= 4})

    comp = compare_runs(frame(cur_v), frame(base_v), n_resamples=500)
    mean, pass_rate = comp.comparisons
    assert mean.gating and pass_rate.gating
    assert mean.regression and mean.p_adjusted is not None and mean.p_adjusted >= mean.p_value  # type: ignore[operator]
    assert comp.regressions[0].label == "judge/mean"
