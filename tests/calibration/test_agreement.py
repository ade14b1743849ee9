"""Agreement statistics against hand-computed values: kappa, weighted kappa, alpha, bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalkit.calibration.agreement import (
    Confusion,
    accuracy,
    agreement_report,
    bootstrap,
    cohen_kappa,
    confusion,
    confusion_matrix,
    inter_annotator,
    krippendorff_alpha,
)


def _from_table(table: list[list[int]], levels: list[object]) -> tuple[list[object], list[object]]:
    """(judge, human) sequences realising ``table`` (rows human, columns judge)."""
    judge: list[object] = []
    human: list[object] = []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            human += [levels[i]] * count
            judge += [levels[j]] * count
    return judge, human


# A 2x2 pass/fail table, rows human, columns judge (True, False):
#   human True : judge True 4, judge False 1
#   human False: judge True 2, judge False 3
# po = (4 + 3) / 10 = 0.7. Human marginals (5, 5)/10, judge marginals (6, 4)/10.
# pe = 0.5*0.6 + 0.5*0.4 = 0.5, so kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
# Confusion: tp 4, fn 1, fp 2, tn 3: sensitivity 4/5, specificity 3/5, precision 4/6.
BINARY = _from_table([[4, 1], [2, 3]], [True, False])

# A 3-level table (levels 1, 2, 3), rows human, columns judge:
#   h=1: 3 1 0   (row total 4)
#   h=2: 1 2 1   (4)
#   h=3: 1 0 1   (2)
#   column totals 5 3 2, n = 10.
# Unweighted: po = (3 + 2 + 1)/10 = 0.6; pe = (4*5 + 4*3 + 2*2)/100 = 0.36;
#   kappa = (0.6 - 0.36)/(1 - 0.36) = 0.24/0.64 = 0.375.
# Expected counts E[i][j] = row_i * col_j / 10; off the diagonal:
#   E12 = 1.2, E13 = 0.8, E21 = 2.0, E23 = 0.8, E31 = 1.0, E32 = 0.6.
# Linear disagreement weights |i-j|/2: w12 = w23 = 0.5, w13 = 1.
#   observed sum(w*O) = 0.5*1 (1,2) + 0.5*1 (2,1) + 0.5*1 (2,3) + 1*1 (3,1) = 2.5
#   expected sum(w*E) = 0.5*1.2 + 1*0.8 + 0.5*2.0 + 0.5*0.8 + 1*1.0 + 0.5*0.6 = 4.1
#   kappa_linear = 1 - 2.5/4.1 = 1.6/4.1
# Quadratic weights ((i-j)/2)^2: w12 = w23 = 0.25, w13 = 1.
#   observed = 0.25 + 0.25 + 0.25 + 1 = 1.75
#   expected = 0.25*1.2 + 1*0.8 + 0.25*2.0 + 0.25*0.8 + 1*1.0 + 0.25*0.6 = 2.95
#   kappa_quadratic = 1 - 1.75/2.95 = 1.2/2.95
THREE_TABLE = [[3, 1, 0], [1, 2, 1], [1, 0, 1]]
THREE = _from_table(THREE_TABLE, [1, 2, 3])

# Krippendorff's reliability-data example: 4 coders (A-D), 12 units, values 1-5, None = not coded.
KRIPP = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}
KRIPP_UNITS = [{coder: KRIPP[coder][u] for coder in KRIPP} for u in range(12)]
# Values per unit: u1 {1,1,1}, u2 {2,2,3,2}, u3 {3,3,3,3}, u4 {3,3,3,3}, u5 {2,2,2,2}, u6 {1,2,3,4},
# u7 {4,4,4,4}, u8 {1,1,2,1}, u9 {2,2,2,2}, u10 {5,5,5}, u11 {1,1}; u12 has one value: not pairable.
# Coincidences o[c][k] (each unit adds its ordered pairs of values from different coders / (m_u - 1)):
#   u1: o11 += 6/2 = 3          u2: o22 += 6/3 = 2, o23 = o32 += 3/3 = 1     u3, u4: o33 += 12/3 = 4 each
#   u5, u9: o22 += 4 each       u6: every ordered pair of distinct values in {1,2,3,4} += 1/3
#   u7: o44 += 4                u8: o11 += 2, o12 = o21 += 1                 u10: o55 += 3   u11: o11 += 2
# So o11 = 7, o22 = 10, o33 = 8, o44 = 4, o55 = 3; o12 = o21 = 4/3, o23 = o32 = 4/3, and
# o13 = o14 = o24 = o34 = 1/3 (and their mirrors). Marginals n_c = (9, 13, 10, 5, 3), n = 40.
# alpha = 1 - (n - 1) * sum(o_ck * d2_ck) / sum(n_c * n_k * d2_ck), sums over ordered pairs.
# Nominal (d2 = 1 off the diagonal): observed = n - sum(o_cc) = 40 - 32 = 8;
#   expected = n^2 - sum(n_c^2) = 1600 - (81 + 169 + 100 + 25 + 9) = 1216;
#   alpha = 1 - 39*8/1216 = 1 - 312/1216.
# Interval (d2 = (c - k)^2), over unordered pairs then doubled:
#   observed = 2 * (4/3*1 + 1/3*4 + 1/3*9 + 4/3*1 + 1/3*4 + 1/3*1) = 2 * 26/3 = 52/3
#   expected = 2 * (117*1 + 90*4 + 45*9 + 27*16 + 130*1 + 65*4 + 39*9 + 50*1 + 30*4 + 15*1)
#            = 2 * 2240 = 4480   (n_c*n_k: 9*13 = 117, 9*10 = 90, 9*5 = 45, 9*3 = 27, 13*10 = 130, ...)
#   alpha = 1 - 39*(52/3)/4480 = 1 - 2028/13440.
# Ordinal (d_ck = n_c + ... + n_k - (n_c + n_k)/2): d12 = 22 - 11 = 11, d13 = 32 - 9.5 = 22.5,
#   d14 = 37 - 7 = 30, d15 = 40 - 6 = 34, d23 = 23 - 11.5 = 11.5, d24 = 28 - 9 = 19, d25 = 31 - 8 = 23,
#   d34 = 15 - 7.5 = 7.5, d35 = 18 - 6.5 = 11.5, d45 = 8 - 4 = 4.
#   observed (unordered) = 4/3*121 + 1/3*506.25 + 1/3*900 + 4/3*132.25 + 1/3*361 + 1/3*56.25 = 945.5
#   expected (unordered) = 117*121 + 90*506.25 + 45*900 + 27*1156 + 130*132.25 + 65*361 + 39*529
#                        + 50*56.25 + 30*132.25 + 15*16 = 199740
#   alpha = 1 - 39*945.5/199740 (the factor 2 of ordered pairs cancels).
KRIPP_NOMINAL = 1 - 312 / 1216
KRIPP_INTERVAL = 1 - 2028 / 13440
KRIPP_ORDINAL = 1 - 39 * 945.5 / 199740


# -- kappa -----------------------------------------------------------------------------------------


def test_binary_kappa_accuracy_and_confusion_match_the_hand_computation() -> None:
    judge, human = BINARY
    assert accuracy(judge, human) == pytest.approx(0.7)
    assert cohen_kappa(judge, human) == pytest.approx(0.4)
    c = confusion(judge, human)  # type: ignore[arg-type]
    assert c == Confusion(tp=4, fp=2, fn=1, tn=3)
    assert (c.n, c.sensitivity, c.specificity) == (10, pytest.approx(0.8), pytest.approx(0.6))
    assert (c.precision, c.accuracy) == (pytest.approx(4 / 6), pytest.approx(0.7))
    # rows human, columns judge, in category order
    assert confusion_matrix(judge, human, [True, False]) == [[4, 1], [2, 3]]
    assert confusion_matrix(judge, human) == [[3, 2], [1, 4]]  # sorted: False, True


def test_three_level_weighted_kappa_matches_the_hand_computation() -> None:
    judge, human = THREE
    assert confusion_matrix(judge, human, [1, 2, 3]) == THREE_TABLE
    assert cohen_kappa(judge, human) == pytest.approx(0.375)
    assert cohen_kappa(judge, human, weights="linear") == pytest.approx(1.6 / 4.1)
    assert cohen_kappa(judge, human, weights="quadratic") == pytest.approx(1.2 / 2.95)
    # Unused levels at the ends rescale every weight alike: kappa is unchanged...
    assert cohen_kappa(judge, human, weights="linear", categories=[0, 1, 2, 3, 4]) == pytest.approx(1.6 / 4.1)
    # ...but the order of the levels matters for weighted kappa (not for unweighted).
    assert cohen_kappa(judge, human, weights="linear", categories=[2, 1, 3]) != pytest.approx(1.6 / 4.1)
    assert cohen_kappa(judge, human, categories=[2, 1, 3]) == pytest.approx(0.375)


def test_kappa_degenerate_cases() -> None:
    assert cohen_kappa([3, 3, 3], [3, 3, 3]) == 1.0  # one level throughout, full agreement
    assert cohen_kappa([3, 3, 3], [3, 3, 3], weights="quadratic", categories=[1, 2, 3, 4, 5]) == 1.0
    assert math.isnan(cohen_kappa([], []))
    assert math.isnan(accuracy([], []))
    # A judge that always passes agrees on half the items, exactly as chance predicts: kappa 0.
    assert cohen_kappa([True] * 4, [True, True, False, False]) == pytest.approx(0.0)
    # Constant and always wrong: po = pe = 0, kappa 0.
    assert cohen_kappa([True] * 3, [False] * 3) == pytest.approx(0.0)
    # Systematic disagreement is worse than chance.
    assert cohen_kappa([True, False, True, False], [False, True, False, True]) == pytest.approx(-1.0)
    c = confusion([True, True], [False, False])
    assert math.isnan(c.sensitivity) and c.specificity == 0.0 and c.precision == 0.0
    assert all(math.isnan(v) for v in (Confusion(0, 0, 0, 0).accuracy, Confusion(0, 0, 0, 0).precision))


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="length"):
        cohen_kappa([1, 2], [1])
    with pytest.raises(ValueError, match="missing"):
        accuracy([1, None], [1, 2])
    with pytest.raises(ValueError, match="not one of the categories"):
        cohen_kappa([1, 7], [1, 2], categories=[1, 2, 3])
    with pytest.raises(ValueError, match="repeat"):
        confusion_matrix([1], [1], [1, 1])
    with pytest.raises(ValueError, match="order"):
        cohen_kappa(["A", 1], [1, "A"], weights="linear")
    with pytest.raises(ValueError, match="weights"):
        cohen_kappa([1, 2], [1, 2], weights="cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        Confusion(tp=-1, fp=0, fn=0, tn=0)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap(lambda idx: 0.0, 5, resamples=0)


def test_unsortable_categories_still_give_unweighted_kappa() -> None:
    judge = ["A", "B", 1, "A"]
    human = ["A", 1, 1, "B"]
    # po = 2/4; judge marginals A 2, B 1, 1 1; human A 1, B 1, 1 2; pe = (2*1 + 1*1 + 1*2)/16 = 5/16
    assert cohen_kappa(judge, human) == pytest.approx((0.5 - 5 / 16) / (1 - 5 / 16))


# -- Krippendorff's alpha --------------------------------------------------------------------------


def test_krippendorff_alpha_on_the_reliability_data_example() -> None:
    assert krippendorff_alpha(KRIPP_UNITS) == pytest.approx(KRIPP_NOMINAL)  # 0.7434
    assert krippendorff_alpha(KRIPP_UNITS, level="interval") == pytest.approx(KRIPP_INTERVAL)  # 0.8491
    assert krippendorff_alpha(KRIPP_UNITS, level="ordinal") == pytest.approx(KRIPP_ORDINAL)  # 0.8154
    # The single-valued unit 12 is not pairable: dropping it changes nothing.
    assert krippendorff_alpha(KRIPP_UNITS[:11]) == pytest.approx(KRIPP_NOMINAL)


def test_krippendorff_alpha_small_example_and_degenerate_cases() -> None:
    units = [{"x": "a", "y": "a"}, {"x": "b", "y": "b"}, {"x": "a", "y": "b"}]
    # Coincidences: o_aa = 2, o_bb = 2, o_ab = o_ba = 1; n_a = n_b = 3, n = 6.
    # alpha = 1 - 5 * (1 + 1) / (36 - 9 - 9) = 1 - 10/18 = 4/9.
    assert krippendorff_alpha(units) == pytest.approx(4 / 9)
    # The same data as two raters: po = 2/3, pe = 2/3*1/3 + 1/3*2/3 = 4/9, kappa = (2/9)/(5/9) = 0.4.
    assert cohen_kappa(["a", "b", "b"], ["a", "b", "a"]) == pytest.approx(0.4)
    assert krippendorff_alpha([{"x": 1, "y": 1}, {"x": 2, "y": 2, "z": 2}], level="interval") == 1.0
    assert math.isnan(krippendorff_alpha([]))
    assert math.isnan(krippendorff_alpha([{"x": 1}, {"y": 2, "z": None}]))  # nothing pairable
    assert math.isnan(krippendorff_alpha([{"x": 1, "y": 1}, {"x": 1, "y": 1}]))  # no variation
    assert math.isnan(krippendorff_alpha([{"x": 1.0, "y": float("nan")}]))
    with pytest.raises(ValueError, match="numeric"):
        krippendorff_alpha(units, level="interval")
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(units, level="ratio")  # type: ignore[arg-type]


def test_inter_annotator_gives_alpha_and_mean_pairwise_kappa() -> None:
    report = inter_annotator(KRIPP_UNITS)
    assert report["alpha"] == pytest.approx(KRIPP_NOMINAL)
    assert report["annotators"] == ["A", "B", "C", "D"]
    assert report["units"] == 11
    assert len(report["pairwise_kappa"]) == 6
    # A and B both coded units 1-9; they differ only on unit 6 (1 vs 2). po = 8/9.
    # A's marginals (1:3, 2:3, 3:2, 4:1), B's (1:2, 2:4, 3:2, 4:1): pe = (6 + 12 + 4 + 1)/81 = 23/81.
    # kappa = (72/81 - 23/81) / (1 - 23/81) = 49/58.
    assert report["pairwise_kappa"][("A", "B")] == pytest.approx(49 / 58)
    pairs = list(report["pairwise_kappa"].values())
    assert report["mean_pairwise_kappa"] == pytest.approx(sum(pairs) / 6)
    assert report["kappa_weights"] is None
    ordinal = inter_annotator(KRIPP_UNITS, level="ordinal")
    assert ordinal["alpha"] == pytest.approx(KRIPP_ORDINAL)
    assert ordinal["kappa_weights"] == "quadratic"
    assert ordinal["pairwise_kappa"][("A", "B")] > report["pairwise_kappa"][("A", "B")]  # a near miss
    lonely = inter_annotator([{"x": 1, "y": 1}, {"x": 2, "z": 2}, {"y": 1, "z": 2}])
    assert all(math.isnan(v) for v in lonely["pairwise_kappa"].values())  # one shared unit per pair
    assert math.isnan(lonely["mean_pairwise_kappa"])


# -- bootstrap and report --------------------------------------------------------------------------


def _noisy_ratings(n: int, seed: int) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(seed)
    human = rng.integers(1, 6, n)
    judge = np.clip(human + rng.choice([-1, 0, 0, 1], n), 1, 5)
    return judge.tolist(), human.tolist()


def test_bootstrap_is_seeded_and_contains_the_estimate() -> None:
    judge, human = _noisy_ratings(300, 1)
    j, h = np.array(judge), np.array(human)
    point = accuracy(judge, human)

    def acc(idx: np.ndarray) -> float:
        return float(np.mean(j[idx] == h[idx]))

    a = bootstrap(acc, len(j), resamples=500, seed=3)
    assert a is not None and a[0] < point < a[1]
    assert a == bootstrap(acc, len(j), resamples=500, seed=3)
    assert a != bootstrap(acc, len(j), resamples=500, seed=4)
    # The vectorised form sees the same resamples.
    vec = bootstrap(
        lambda idx: np.mean(j[idx] == h[idx], axis=1), len(j), resamples=500, seed=3, vectorized=True
    )
    assert vec == a
    # Width is about 2 * 1.96 * sqrt(p(1-p)/n).
    assert a[1] - a[0] == pytest.approx(2 * 1.96 * math.sqrt(point * (1 - point) / 300), rel=0.2)
    assert bootstrap(acc, 1) is None
    assert bootstrap(lambda idx: float("nan"), 10, resamples=20) is None


def test_agreement_report_matches_the_hand_computed_table() -> None:
    judge, human = THREE
    r = agreement_report(judge, human, ordinal=True, threshold=2, resamples=1000, seed=0)
    assert r.n == 10 and r.categories == (1, 2, 3)
    assert r.matrix == THREE_TABLE
    assert r.accuracy == pytest.approx(0.6)
    assert r.kappa == pytest.approx(0.375)
    assert r.weighted_kappa == pytest.approx(1.2 / 2.95)
    # Pass = value >= 2: tp = rows 2-3 x columns 2-3 = 2+1+0+1 = 4, fn = 1 + 1 = 2, fp = 1, tn = 3.
    assert r.pass_confusion == Confusion(tp=4, fp=1, fn=2, tn=3)
    assert (r.sensitivity, r.specificity) == (pytest.approx(4 / 6), pytest.approx(3 / 4))
    for estimate, ci in [
        (r.accuracy, r.accuracy_ci),
        (r.kappa, r.kappa_ci),
        (r.weighted_kappa, r.weighted_kappa_ci),
        (r.sensitivity, r.sensitivity_ci),
        (r.specificity, r.specificity_ci),
    ]:
        assert ci is not None and estimate is not None
        assert ci[0] <= estimate <= ci[1] and ci[0] < ci[1]
    linear = agreement_report(judge, human, ordinal=True, weights="linear")
    assert linear.weighted_kappa == pytest.approx(1.6 / 4.1)


def test_agreement_report_intervals_equal_the_generic_bootstrap() -> None:
    judge, human = _noisy_ratings(500, 2)
    r = agreement_report(judge, human, ordinal=True, threshold=4, resamples=1000, seed=9)
    j, h = np.array(judge), np.array(human)

    def kappa(idx: np.ndarray) -> float:
        return cohen_kappa(j[idx].tolist(), h[idx].tolist(), categories=[1, 2, 3, 4, 5])

    def sensitivity(idx: np.ndarray) -> float:
        hp, jp = h[idx] >= 4, j[idx] >= 4
        return float(np.sum(hp & jp) / np.sum(hp))

    assert r.kappa_ci == pytest.approx(bootstrap(kappa, 500, resamples=1000, seed=9))
    assert r.sensitivity_ci == pytest.approx(bootstrap(sensitivity, 500, resamples=1000, seed=9))
    assert r.kappa_ci is not None and r.weighted_kappa_ci is not None
    assert r.weighted_kappa is not None and r.weighted_kappa > r.kappa  # near misses are partly right
    assert r.kappa_ci[0] < r.kappa < r.kappa_ci[1]
    again = agreement_report(judge, human, ordinal=True, threshold=4, resamples=1000, seed=9)
    assert again == r


def test_agreement_report_on_booleans_and_degenerate_input() -> None:
    judge, human = BINARY
    r = agreement_report(judge, human, resamples=500)
    assert r.weighted_kappa is None and r.weighted_kappa_ci is None
    assert r.categories == (False, True)
    assert r.pass_confusion == Confusion(tp=4, fp=2, fn=1, tn=3)
    assert r.kappa == pytest.approx(0.4)
    strings = agreement_report(["A", "B", "tie"], ["A", "B", "B"], categories=["A", "B", "tie"])
    assert strings.sensitivity is None and strings.pass_confusion is None
    assert strings.matrix == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
    one = agreement_report([1], [1], threshold=1)
    assert one.accuracy == 1.0 and one.accuracy_ci is None
    assert math.isnan(one.specificity)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="numeric"):
        agreement_report(["A"], ["A"], threshold=1)
