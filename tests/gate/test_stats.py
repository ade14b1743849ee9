"""Statistics: intervals, repeat statistics and paired tests."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import polars as pl
import pytest

from evalkit import stats


def test_wilson_matches_closed_form() -> None:
    lo, hi = stats.wilson_interval(8, 10)  # type: ignore[misc]
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)
    assert stats.wilson_interval(0, 0) is None
    zero = stats.wilson_interval(0, 50)
    full = stats.wilson_interval(50, 50)
    assert zero is not None and zero[0] == 0.0 and zero[1] > 0.0
    assert full is not None and full[1] == 1.0 and full[0] < 1.0


def test_identical_repeats_count_as_one_observation() -> None:
    rng = np.random.default_rng(3)
    outcomes = (rng.random(300) < 0.7).astype(float)
    single = stats.proportion_interval(outcomes)
    tripled = stats.proportion_interval(np.repeat(outcomes, 3), np.repeat(np.arange(300), 3))
    naive = stats.proportion_interval(np.repeat(outcomes, 3))
    assert single == pytest.approx(tripled)
    assert naive is not None and single is not None
    assert naive[1] - naive[0] < single[1] - single[0]  # ignoring clustering would be overconfident


def test_all_pass_repeats_do_not_give_a_zero_width_interval() -> None:
    ci = stats.mean_interval([1.0] * 30, np.repeat(np.arange(10), 3))
    assert ci is not None and ci[1] == 1.0 and ci[0] < 0.8  # about 10 cases' worth of evidence


def test_bootstrap_is_seeded_and_clusters_by_case() -> None:
    rng = np.random.default_rng(0)
    case_means = rng.normal(0.6, 0.2, 200)
    values = np.repeat(case_means, 3) + rng.normal(0, 0.01, 600)
    ids = np.repeat(np.arange(200), 3)
    a = stats.bootstrap_mean_ci(values, ids, n_resamples=2000, seed=5)
    b = stats.bootstrap_mean_ci(values, ids, n_resamples=2000, seed=5)
    flat = stats.bootstrap_mean_ci(values, n_resamples=2000, seed=5)
    assert a == b
    assert a is not None and flat is not None
    assert (a[1] - a[0]) > 1.5 * (flat[1] - flat[0])  # repeats are not independent samples
    assert stats.bootstrap_mean_ci([0.5]) is None
    assert stats.bootstrap_mean_ci([0.5, None, float("nan")]) is None


def test_bootstrap_coverage_is_near_nominal() -> None:
    rng = np.random.default_rng(11)
    hits = 0
    for i in range(200):
        x = rng.exponential(1.0, 80)
        ci = stats.bootstrap_mean_ci(x, n_resamples=1000, seed=i)
        assert ci is not None
        hits += ci[0] <= 1.0 <= ci[1]
    assert 0.88 <= hits / 200 <= 0.99




def test_repeat_stats_pass_at_k_pass_all_k_and_flaky() -> None:
    df = pl.DataFrame(
        {
            "name": ["q"] * 9,
            "case_id": ["a", "a", "a", "b", "b", "b", "c", "c", "c"],
            "repeat": [0, 1, 2] * 3,
            "value": [1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, None, 0.0],
            "passed": [True, False, True, True, True, True, False, None, False],
        }
    )
    per = {r["case_id"]: r for r in stats.repeat_stats(df).iter_rows(named=True)}
    assert per["a"]["pass_at_k"] and not per["a"]["pass_all_k"] and per["a"]["flaky"]
    assert per["b"]["pass_all_k"] and not per["b"]["flaky"]
    assert not per["c"]["pass_at_k"] and per["c"]["n"] == 2  # the errored repeat is not counted
    summary = stats.repeat_summary(df)["q"]
    assert summary.k == 3 and summary.flaky_cases == ["a"]
    assert summary.pass_at_k == pytest.approx(2 / 3)
    assert summary.pass_all_k == pytest.approx(1 / 3)


def test_unbiased_pass_at_k() -> None:
    assert stats.pass_at_k(5, 0, 1) == 0.0
    assert stats.pass_at_k(5, 1, 1) == pytest.approx(0.2)
    assert stats.pass_at_k(5, 1, 2) == pytest.approx(0.4)
    assert stats.pass_at_k(3, 2, 2) == 1.0


def test_mcnemar_exact_and_mid_p() -> None:
    # Binomial(12, 0.5): P(X <= 2) = 79 / 4096; P(X = 2) = 66 / 4096.
    assert stats.mcnemar_pvalue(10, 2, mid_p=False) == pytest.approx(2 * 79 / 4096)
    assert stats.mcnemar_pvalue(10, 2) == pytest.approx((2 * 79 - 66) / 4096)
    assert stats.mcnemar_pvalue(2, 10) == stats.mcnemar_pvalue(10, 2)
    assert stats.mcnemar_pvalue(0, 0) == 1.0
    assert stats.mcnemar_pvalue(4, 4) == 1.0


def test_mcnemar_mid_p_false_alarm_rate_is_controlled() -> None:
    rng = np.random.default_rng(2)
    n = rng.binomial(40, 0.5, size=4000)  # discordant pairs
    b = rng.binomial(n, 0.5)
    rejections = np.mean([stats.mcnemar_pvalue(int(x), int(y - x)) < 0.05 for x, y in zip(b, n, strict=True)])
    assert rejections < 0.06


def test_sign_flip_exact_and_monte_carlo() -> None:
    # |sum| >= 4 for six +-1 deltas: k positives in {0, 1, 5, 6} -> 14 of 64 patterns.
    assert stats.sign_flip_pvalue([1, 1, 1, 1, 1, -1]) == pytest.approx(14 / 64)
    assert stats.sign_flip_pvalue([0, 0]) == 1.0
    d = np.random.default_rng(4).normal(0.15, 1.0, 200)
    p = stats.sign_flip_pvalue(d, n_resamples=5000)
    z = abs(d.mean()) / np.sqrt(np.mean(d**2) / d.size)  # the permutation null's variance
    p_normal = 2 * (1 - NormalDist().cdf(z))
    assert p == pytest.approx(p_normal, rel=0.25, abs=0.003)
    assert stats.sign_flip_pvalue(np.full(50, 0.1), n_resamples=999) == pytest.approx(1 / 1000)
    assert stats.sign_flip_pvalue(d, n_resamples=5000, seed=1) == stats.sign_flip_pvalue(
        d, n_resamples=5000, seed=1
    )


def test_paired_compare_pairs_by_case_and_drops_errors() -> None:
    base = pl.DataFrame(
        {
            "case_id": ["a", "b", "c", "d", "only-base"],
            "value": [1.0, 1.0, 0.0, 1.0, 1.0],
            "passed": [True, True, False, True, True],
        }
    )
    cur = pl.DataFrame(
        {
            "case_id": ["d", "c", "b", "a", "only-cur"],
            "value": [None, 1.0, 0.0, 1.0, 0.0],
            "passed": [None, True, False, True, False],
        }
    )
    r = stats.paired_compare(cur, base, n_resamples=200)
    assert r.n_shared == 3  # d errored now; only-* are unpaired
    assert r.to_fail == ["b"] and r.to_pass == ["c"]
    assert r.delta == pytest.approx(0.0)
    assert r.pass_rate_test == "mcnemar_midp"
    empty = stats.paired_compare(cur.head(0), base, n_resamples=10)
    assert empty.n_shared == 0 and empty.delta is None


def test_compute_intervals_per_scorer() -> None:
    df = pl.DataFrame(
        {
            "name": ["judge"] * 4 + ["exact"] * 4,
            "case_id": ["a", "b", "c", "d"] * 2,
            "value": [4.0, 5.0, 3.0, None, 1.0, 0.0, 1.0, 1.0],
            "passed": [True, True, False, None, True, False, True, True],
        }
    )
    out = stats.compute_intervals(df, n_resamples=500)
    assert set(out) == {"judge", "exact"}
    mean_ci, pr_ci = out["judge"]
    assert mean_ci is not None and 3.0 <= mean_ci[0] <= 4.0 <= mean_ci[1] <= 5.0
    assert pr_ci is not None and 0 <= pr_ci[0] < 2 / 3 < pr_ci[1] <= 1
    assert stats.scorer_intervals(df)["exact"][1] is not None


def test_discrete_data_shortcut_matches_plain_resampling() -> None:
    d = np.random.default_rng(0).choice([-1.0, 0.0, 0.0, 0.0, 1.0], size=2000)
    fast = stats.bootstrap_mean_ci(d, n_resamples=10_000, seed=3)  # multinomial over 3 distinct values
    plain = np.quantile(
        stats._resample_means(np.random.default_rng(3), d, np.ones(d.size), 10_000), [0.025, 0.975]
    )
    assert fast == pytest.approx(tuple(plain), abs=0.003)
