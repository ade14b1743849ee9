"""Rogan–Gladen corrected pass rates: hand-computed values and the coverage of their intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalkit.calibration.agreement import Confusion
from evalkit.calibration.correction import CorrectedRate, corrected_pass_rate, rogan_gladen

# A judge with sensitivity 0.85 and specificity 0.8 on a suite whose true pass rate is 0.7 reports
# q = 0.7*0.85 + 0.3*(1 - 0.8) = 0.595 + 0.06 = 0.655.
CALIB = Confusion(tp=85, fp=20, fn=15, tn=80)  # sensitivity 85/100, specificity 80/100


def test_rogan_gladen_inverts_the_judge_error() -> None:
    # (0.655 + 0.8 - 1) / (0.85 + 0.8 - 1) = 0.455 / 0.65 = 0.7
    assert rogan_gladen(0.655, 0.85, 0.8) == pytest.approx(0.7)
    # (0.1 + 0.8 - 1) / 0.65 < 0 and (0.95 + 0.8 - 1) / 0.65 = 1.15 > 1: clipped.
    assert rogan_gladen(0.1, 0.85, 0.8) == 0.0
    assert rogan_gladen(0.95, 0.85, 0.8) == 1.0
    assert rogan_gladen(0.4, 1.0, 1.0) == pytest.approx(0.4)  # a perfect judge needs no correction
    assert math.isnan(rogan_gladen(0.5, 0.5, 0.5))  # sens + spec = 1: a coin flip
    assert math.isnan(rogan_gladen(0.5, 0.3, 0.4))  # worse than chance
    assert math.isnan(rogan_gladen(float("nan"), 0.9, 0.9))


def test_corrected_rate_matches_the_hand_computation() -> None:
    r = corrected_pass_rate(262, 400, calib=CALIB, method="delta")
    assert (r.raw, r.sensitivity, r.specificity) == (pytest.approx(0.655), 0.85, 0.8)
    assert r.corrected == pytest.approx(0.7)
    assert r.usable and r.reason is None
    # Delta method: var = q(1-q)/n + p^2 se(1-se)/n_pos + (1-p)^2 sp(1-sp)/n_neg, all over J^2
    #   = 0.655*0.345/400 + 0.49*0.1275/100 + 0.09*0.16/100 = 0.00056494 + 0.00062475 + 0.000144
    #   = 0.00133369; sd = sqrt(0.00133369)/0.65 = 0.0561842; half width 1.959964*0.0561842 = 0.110119.
    assert r.interval == pytest.approx((0.7 - 0.110119, 0.7 + 0.110119), abs=1e-5)
    assert r.raw_interval is not None and r.raw_interval[0] < 0.655 < r.raw_interval[1]
    counts = corrected_pass_rate(262, 400, tp=85, fn=15, tn=80, fp=20, method="delta")
    assert counts == r
    for method in ("bootstrap", "lang_reiczigel"):
        other = corrected_pass_rate(262, 400, calib=CALIB, method=method)
        assert other.corrected == pytest.approx(0.7)
        assert other.interval is not None
        assert other.interval[0] < 0.7 < other.interval[1]
        # The same uncertainty, estimated three ways: the conservative bootstrap a little wider.
        assert 0.95 < (other.interval[1] - other.interval[0]) / (2 * 0.110119) < 1.2


def test_interval_carries_the_calibration_uncertainty() -> None:
    small = corrected_pass_rate(262, 400, calib=Confusion(tp=17, fp=4, fn=3, tn=16))
    large = corrected_pass_rate(262, 400, calib=Confusion(tp=8500, fp=2000, fn=1500, tn=8000))
    assert small.corrected == pytest.approx(large.corrected) == pytest.approx(0.7)
    assert small.interval is not None and large.interval is not None
    width_small = small.interval[1] - small.interval[0]
    width_large = large.interval[1] - large.interval[0]
    assert width_small > 2 * width_large
    # With a near-exact calibration only the run's binomial error is left: the Wilson half width
    # of q divided by J = 0.65.
    assert large.raw_interval is not None
    wilson_width = large.raw_interval[1] - large.raw_interval[0]
    assert width_large == pytest.approx(wilson_width / 0.65, rel=0.1)


def test_bootstrap_is_seeded() -> None:
    a = corrected_pass_rate(262, 400, calib=CALIB, seed=1)
    assert a == corrected_pass_rate(262, 400, calib=CALIB, seed=1)
    assert a.interval != corrected_pass_rate(262, 400, calib=CALIB, seed=2).interval


def test_unusable_calibrations_say_why() -> None:
    chance = corrected_pass_rate(50, 100, calib=Confusion(tp=5, fp=5, fn=5, tn=5))
    assert not chance.usable and chance.interval is None and math.isnan(chance.corrected)
    assert chance.reason is not None and "chance" in chance.reason
    assert chance.raw == 0.5 and chance.raw_interval is not None  # the raw rate is still reported
    no_pos = corrected_pass_rate(50, 100, calib=Confusion(tp=0, fp=2, fn=0, tn=8))
    assert not no_pos.usable and no_pos.reason is not None and "sensitivity" in no_pos.reason
    no_neg = corrected_pass_rate(50, 100, tp=9, fn=1, tn=0, fp=0)
    assert not no_neg.usable and no_neg.reason is not None and "specificity" in no_neg.reason
    empty = corrected_pass_rate(0, 0, calib=CALIB)
    assert not empty.usable and math.isnan(empty.raw) and empty.raw_interval is None
    with pytest.raises(ValueError, match="calib"):
        corrected_pass_rate(1, 2, tp=1, fn=1)
    with pytest.raises(ValueError, match="not both"):
        corrected_pass_rate(1, 2, calib=CALIB, tp=1)
    with pytest.raises(ValueError, match="passes"):
        corrected_pass_rate(3, 2, calib=CALIB)
    with pytest.raises(ValueError, match="method"):
        corrected_pass_rate(1, 2, calib=CALIB, method="exact")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="confidence"):
        corrected_pass_rate(1, 2, calib=CALIB, confidence=95)
    with pytest.raises(ValueError, match="resamples"):
        corrected_pass_rate(1, 2, calib=CALIB, resamples=0)


def test_corrected_interval_reaches_the_bounds() -> None:
    # Raw rate below the false-pass rate 1 - spec = 0.2: the correction clips to 0.
    r = corrected_pass_rate(60, 400, calib=CALIB)
    assert r.corrected == 0.0
    assert r.interval is not None and r.interval[0] == 0.0 and 0.0 < r.interval[1] < 0.2


# -- coverage simulation ---------------------------------------------------------------------------

RUNS = 100
N_RUN = 400
N_CALIB = 200


def _simulate(
    p: float,
    sens: float,
    spec: float,
    seed: int,
    method: str = "bootstrap",
    runs: int = RUNS,
    n_calib: int = N_CALIB,
) -> list[CorrectedRate]:
    """``runs`` independent (calibration set, evaluation run) pairs for a judge with true error rates.

    Each calibration set has ``n_calib`` human-labelled items, each a human pass with probability 1/2
    (balanced-ish); the judge passes a human pass with probability ``sens`` and a human fail with
    probability ``1 - spec``. Each run has ``N_RUN`` cases, each truly passing with probability ``p``,
    judged by the same error model.
    """
    rng = np.random.default_rng(seed)
    positives = rng.binomial(n_calib, 0.5, runs)
    tp = rng.binomial(positives, sens)
    tn = rng.binomial(n_calib - positives, spec)
    truly = rng.binomial(N_RUN, p, runs)
    passes = rng.binomial(truly, sens) + rng.binomial(N_RUN - truly, 1 - spec)
    return [
        corrected_pass_rate(
            int(passes[i]),
            N_RUN,
            tp=int(tp[i]),
            fn=int(positives[i] - tp[i]),
            tn=int(tn[i]),
            fp=int(n_calib - positives[i] - tn[i]),
            method=method,  # type: ignore[arg-type]
        )
        for i in range(runs)
    ]


def _covered(results: list[CorrectedRate], p: float, *, raw: bool = False) -> int:
    intervals = [r.raw_interval if raw else r.interval for r in results]
    return sum(1 for iv in intervals if iv is not None and iv[0] <= p <= iv[1])


# (seed, true pass rate, sensitivity, specificity, most runs of 100 the biased raw interval may cover).
# The judge's raw rates: 0.655 (bias -0.045), 0.395 (+0.095), 0.48 (+0.18), 0.555 (-0.145).
SETTINGS = [(1, 0.7, 0.85, 0.8, 70), (2, 0.3, 0.85, 0.8, 10), (3, 0.3, 0.9, 0.7, 5), (4, 0.7, 0.75, 0.9, 5)]


@pytest.mark.parametrize(("seed", "p", "sens", "spec", "raw_max"), SETTINGS)
def test_corrected_interval_covers_the_true_rate(
    seed: int, p: float, sens: float, spec: float, raw_max: int
) -> None:
    results = _simulate(p, sens, spec, seed)
    assert all(r.usable for r in results)
    covered = _covered(results, p)
    raw_covered = _covered(results, p, raw=True)
    assert covered >= 93, f"corrected 95% interval covered p={p} in {covered}/{RUNS} runs"
    assert raw_covered <= raw_max, f"raw interval covered p={p} in {raw_covered}/{RUNS} runs"
    assert raw_covered < covered - 25
    # The corrected estimates centre on p; the raw rates on the judge's biased rate.
    assert np.mean([r.corrected for r in results]) == pytest.approx(p, abs=0.02)
    assert np.mean([r.raw for r in results]) == pytest.approx(p * sens + (1 - p) * (1 - spec), abs=0.01)


@pytest.mark.parametrize(("seed", "p", "sens", "spec", "raw_max"), SETTINGS)
def test_lang_reiczigel_interval_covers_the_true_rate(
    seed: int, p: float, sens: float, spec: float, raw_max: int
) -> None:
    # Closed form, so cheap: 500 runs pin its coverage (about nominal) down to +-1%.
    results = _simulate(p, sens, spec, seed + 100, method="lang_reiczigel", runs=500)
    assert _covered(results, p) >= 465  # 93%


def test_delta_interval_under_covers_near_the_bound() -> None:
    # p = 0.95 with 100 calibration items: the plain Wald interval is symmetric where the estimate's
    # distribution is not (it piles up at the clip to 1); the adjusted interval is not fooled.
    delta = _covered(_simulate(0.95, 0.95, 0.9, 7, method="delta", runs=500, n_calib=100), 0.95)
    adjusted = _covered(_simulate(0.95, 0.95, 0.9, 7, method="lang_reiczigel", runs=500, n_calib=100), 0.95)
    assert delta < 465 <= adjusted


def test_simulation_is_deterministic() -> None:
    first = _simulate(0.7, 0.85, 0.8, seed=1, runs=20)
    assert first == _simulate(0.7, 0.85, 0.8, seed=1, runs=20)
    assert first != _simulate(0.7, 0.85, 0.8, seed=2, runs=20)
