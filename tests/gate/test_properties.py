"""Property tests: invariants of intervals and threshold round-trips."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit import stats
from evalkit.gate import Threshold, parse_threshold

FAST = settings(max_examples=60, deadline=None)


@FAST
@given(n=st.integers(1, 5000), frac=st.floats(0, 1), conf=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_contains_the_estimate_and_stays_in_0_1(n: int, frac: float, conf: float) -> None:
    k = round(frac * n)
    ci = stats.wilson_interval(k, n, conf)
    assert ci is not None
    lo, hi = ci
    assert 0.0 <= lo <= k / n + 1e-12 and k / n - 1e-12 <= hi <= 1.0
    wider = stats.wilson_interval(k, n, min(conf + 0.009, 0.999))
    assert wider is not None and wider[0] <= lo + 1e-12 and wider[1] >= hi - 1e-12


@FAST
@given(values=st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=60), seed=st.integers(0, 10))
def test_bootstrap_interval_lies_within_the_data_range(values: list[float], seed: int) -> None:
    ci = stats.bootstrap_mean_ci(values, n_resamples=200, seed=seed)
    assert ci is not None
    assert min(values) - 1e-9 <= ci[0] <= ci[1] <= max(values) + 1e-9


@FAST
@given(b=st.integers(0, 60), c=st.integers(0, 60))
def test_mcnemar_is_symmetric_and_mid_p_is_smaller(b: int, c: int) -> None:
    p = stats.mcnemar_pvalue(b, c)
    assert p == stats.mcnemar_pvalue(c, b)
    assert 0.0 < p <= stats.mcnemar_pvalue(b, c, mid_p=False) <= 1.0


@FAST
@given(
    metric=st.sampled_from(["correctness/mean", "errors/rate", "tool-use.v2/pass_rate", "latency_ms/p95"]),
    op=st.sampled_from([">=", "<=", ">", "<"]),
    value=st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: float(f"{v:g}")),
    mode=st.sampled_from(["point", "lower_bound"]),
)
def test_threshold_string_round_trip(metric: str, op: str, value: float, mode: str) -> None:
    t = Threshold(metric=metric, op=op, value=value, mode=mode)  # type: ignore[arg-type]
    assert parse_threshold(str(t)) == t
