"""Agreement between a judge and human labels: accuracy, Cohen's kappa, Krippendorff's alpha.

Pure numpy, no I/O. Inputs are paired sequences (``judge[i]`` and ``human[i]`` label the same item)
of hashable category values: whole numbers on an ordinal scale (1-5), booleans, or strings
(``"A"``/``"B"``/``"tie"``). Conventions:

* A statistic that is undefined on its input returns ``float('nan')`` (never raises): no items, or a
  sensitivity with no human-pass item. Mismatched lengths, missing values (``None``) and values
  outside ``categories`` are caller errors and raise :class:`ValueError`.
* Categories are the levels of the scale, in order. Without ``categories`` they are the values seen,
  sorted (or in order of first appearance when they do not sort); weighted statistics need an order.
* Bootstrap intervals resample *items* (judge and human value together) with a seeded
  ``numpy.random.Generator``, so the same inputs give the same interval on every machine.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

import numpy as np

from evalkit.stats import DEFAULT_CONFIDENCE, DEFAULT_SEED, Interval

Weights = Literal["linear", "quadratic"]
Level = Literal["nominal", "ordinal", "interval"]

DEFAULT_RESAMPLES = 2_000
_CHUNK_CELLS = 2_000_000  # resampled indices per chunk (~16 MB of int64)

__all__ = [
    "DEFAULT_RESAMPLES",
    "AgreementReport",
    "Confusion",
    "InterAnnotator",
    "Level",
    "Weights",
    "accuracy",
    "agreement_report",
    "bootstrap",
    "cohen_kappa",
    "confusion",
    "confusion_matrix",
    "inter_annotator",
    "krippendorff_alpha",
]


# -- helpers ---------------------------------------------------------------------------------------


def _paired(judge: Sequence[Hashable], human: Sequence[Hashable]) -> int:
    if len(judge) != len(human):
        raise ValueError(f"judge and human differ in length ({len(judge)} != {len(human)})")
    if any(_missing(v) for v in itertools.chain(judge, human)):
        raise ValueError("missing value (None/NaN) in paired labels: drop unlabelled items first")
    return len(judge)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _levels(
    values: Iterable[Hashable], categories: Sequence[Hashable] | None, *, ordered: bool
) -> list[Hashable]:
    """The scale's levels: ``categories`` as given, else the distinct values sorted."""
    if categories is not None:
        levels = list(categories)
        if len(set(levels)) != len(levels):
            raise ValueError(f"categories repeat a level: {levels!r}")
        return levels
    seen = list(dict.fromkeys(values))
    try:
        return sorted(seen)  # type: ignore[type-var]
    except TypeError:
        if ordered:
            raise ValueError(f"values {seen!r} have no natural order: pass categories") from None
        return seen


def _encode(values: Sequence[Hashable], levels: Sequence[Hashable]) -> np.ndarray:
    index = {level: i for i, level in enumerate(levels)}
    try:
        return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))
    except KeyError as exc:
        raise ValueError(f"value {exc.args[0]!r} is not one of the categories {list(levels)!r}") from None


def _disagreement(k: int, weights: Weights | None) -> np.ndarray:
    """(k, k) disagreement weights: 0 on the diagonal, 1 for the farthest levels."""
    i, j = np.indices((k, k))
    if weights is None:
        return (i != j).astype(float)
    if k < 2:
        return np.zeros((k, k))
    if weights == "linear":
        return np.abs(i - j) / (k - 1)
    if weights == "quadratic":
        return ((i - j) / (k - 1)) ** 2
    raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")


def _tables(human: np.ndarray, judge: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """(R, k, k) contingency tables (rows human, columns judge) of the resamples ``idx`` (R, n)."""
    rows = idx.shape[0]
    cell = (human * k + judge)[idx] + (np.arange(rows) * (k * k))[:, None]
    return np.bincount(cell.ravel(), minlength=rows * k * k).reshape(rows, k, k).astype(float)


def _kappa(tables: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted kappa ``1 - observed/expected disagreement`` of each (k, k) table in ``tables``."""
    n = tables.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = tables / n[:, None, None]
        expected = p.sum(axis=2)[:, :, None] * p.sum(axis=1)[:, None, :]
        d_obs = (p * w).sum(axis=(1, 2))
        d_exp = (expected * w).sum(axis=(1, 2))
        kappa = 1.0 - d_obs / d_exp
    # No expected disagreement: both raters used one and the same level throughout (perfect agreement).
    return np.where(n == 0, np.nan, np.where(d_exp == 0, np.where(d_obs == 0, 1.0, np.nan), kappa))


def _index_chunks(rng: np.random.Generator, n: int, resamples: int) -> Iterable[np.ndarray]:
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, resamples, chunk):
        yield rng.integers(0, n, size=(min(chunk, resamples - start), n))


def _percentile(replicates: np.ndarray, confidence: float) -> Interval | None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return None
    alpha = 1.0 - confidence
    lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


# -- paired agreement ------------------------------------------------------------------------------


def accuracy(judge: Sequence[Hashable], human: Sequence[Hashable]) -> float:
    """Share of items where the judge gave the human's value (nan for no items)."""
    n = _paired(judge, human)
    if n == 0:
        return math.nan
    return sum(1 for a, b in zip(judge, human, strict=True) if a == b) / n


def cohen_kappa(
    judge: Sequence[Hashable],
    human: Sequence[Hashable],
    *,
    weights: Weights | None = None,
    categories: Sequence[Hashable] | None = None,
) -> float:
    """Cohen's kappa ``(po - pe) / (1 - pe)``; weighted (``1 - sum(w*O)/sum(w*E)``) for ordinal scales.

    ``weights`` ``"linear"`` (``|i-j|/(k-1)``) or ``"quadratic"`` (``((i-j)/(k-1))**2``) are
    disagreement weights over the positions of the levels in ``categories``. Degenerate cases: nan for
    no items; 1.0 when both raters used one and the same level for every item (chance agreement is
    then total, but so is the observed agreement).
    """
    n = _paired(judge, human)
    if n == 0:
        return math.nan
    levels = _levels([*human, *judge], categories, ordered=weights is not None)
    k = len(levels)
    table = _tables(_encode(human, levels), _encode(judge, levels), k, np.arange(n)[None, :])
    return float(_kappa(table, _disagreement(k, weights))[0])


def confusion_matrix(
    judge: Sequence[Hashable], human: Sequence[Hashable], categories: Sequence[Hashable] | None = None
) -> list[list[int]]:
    """Counts ``m[i][j]`` of items the human labelled ``categories[i]`` and the judge ``categories[j]``."""
    n = _paired(judge, human)
    levels = _levels([*human, *judge], categories, ordered=False)
    k = len(levels)
    table = _tables(_encode(human, levels), _encode(judge, levels), k, np.arange(n)[None, :])[0]
    return table.astype(int).tolist()


@dataclass(frozen=True)
class Confusion:
    """Pass/fail agreement of a judge with humans (human verdict as the truth)."""

    tp: int  # judge pass, human pass
    fp: int  # judge pass, human fail
    fn: int  # judge fail, human pass
    tn: int  # judge fail, human fail

    def __post_init__(self) -> None:
        if min(self.tp, self.fp, self.fn, self.tn) < 0:
            raise ValueError(f"confusion counts must be non-negative: {self}")

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def positives(self) -> int:
        """Items the human passed."""
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        """Items the human failed."""
        return self.tn + self.fp

    @property
    def sensitivity(self) -> float:
        """P(judge pass | human pass), nan without human passes."""
        return self.tp / self.positives if self.positives else math.nan

    @property
    def specificity(self) -> float:
        """P(judge fail | human fail), nan without human fails."""
        return self.tn / self.negatives if self.negatives else math.nan

    @property
    def precision(self) -> float:
        """P(human pass | judge pass), nan without judge passes."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n if self.n else math.nan


def confusion(judge_pass: Sequence[bool], human_pass: Sequence[bool]) -> Confusion:
    """:class:`Confusion` of paired pass verdicts."""
    _paired(judge_pass, human_pass)
    j = np.asarray(judge_pass, dtype=bool)
    h = np.asarray(human_pass, dtype=bool)
    return Confusion(
        tp=int(np.sum(j & h)), fp=int(np.sum(j & ~h)), fn=int(np.sum(~j & h)), tn=int(np.sum(~j & ~h))
    )


# -- bootstrap -------------------------------------------------------------------------------------


def bootstrap(
    stat: Callable[[np.ndarray], float] | Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
    vectorized: bool = False,
) -> Interval | None:
    """Percentile bootstrap interval of ``stat`` over ``n`` paired items.

    ``stat`` receives an index array of resampled items (length ``n``), or with ``vectorized`` an
    (R, n) array of R resamples and returns R values. Replicates where the statistic is undefined
    (nan, e.g. a resample without human passes) are skipped. None with fewer than two items or no
    defined replicate.
    """
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    parts = []
    for idx in _index_chunks(rng, n, resamples):
        if vectorized:
            parts.append(np.asarray(stat(idx), dtype=float).reshape(idx.shape[0]))
        else:
            parts.append(np.array([float(stat(row)) for row in idx]))
    return _percentile(np.concatenate(parts), confidence)


# -- report ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementReport:
    """Agreement of a judge with human labels on one calibration set, with bootstrap intervals.

    ``weighted_kappa`` is None unless the scale is ordinal; ``sensitivity`` and ``specificity`` (and
    ``pass_confusion``) are None without a pass definition (booleans, or numbers with a threshold).
    """

    n: int
    categories: tuple[Hashable, ...]
    accuracy: float
    kappa: float
    weighted_kappa: float | None
    sensitivity: float | None
    specificity: float | None
    matrix: list[list[int]]  # rows human, columns judge, in ``categories`` order
    pass_confusion: Confusion | None
    accuracy_ci: Interval | None
    kappa_ci: Interval | None
    weighted_kappa_ci: Interval | None
    sensitivity_ci: Interval | None
    specificity_ci: Interval | None
    weights: Weights | None
    threshold: float | None
    confidence: float
    resamples: int


def _pass_levels(levels: Sequence[Hashable], threshold: float | None) -> np.ndarray | None:
    """Which levels count as a pass: True for booleans, ``>= threshold`` for numbers."""
    if levels and all(isinstance(v, bool | np.bool_) for v in levels):
        return np.array([bool(v) for v in levels])
    if threshold is None:
        return None
    if not all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in levels):
        raise ValueError(f"a pass threshold needs numeric categories, got {list(levels)!r}")
    return np.array([float(v) >= threshold for v in levels])  # type: ignore[arg-type]


def _table_stats(
    tables: np.ndarray, unweighted: np.ndarray, weighted: np.ndarray | None, passing: np.ndarray | None
) -> dict[str, np.ndarray]:
    n = tables.sum(axis=(1, 2))
    out = {"kappa": _kappa(tables, unweighted)}
    with np.errstate(invalid="ignore", divide="ignore"):
        out["accuracy"] = np.trace(tables, axis1=1, axis2=2) / n
        if weighted is not None:
            out["weighted_kappa"] = _kappa(tables, weighted)
        if passing is not None:
            ok, bad = passing, ~passing
            tp = tables[:, ok][:, :, ok].sum(axis=(1, 2))
            fn = tables[:, ok][:, :, bad].sum(axis=(1, 2))
            tn = tables[:, bad][:, :, bad].sum(axis=(1, 2))
            fp = tables[:, bad][:, :, ok].sum(axis=(1, 2))
            out["tp"], out["fn"], out["tn"], out["fp"] = tp, fn, tn, fp
            out["sensitivity"] = tp / (tp + fn)
            out["specificity"] = tn / (tn + fp)
    return out


def agreement_report(
    judge: Sequence[Hashable],
    human: Sequence[Hashable],
    *,
    categories: Sequence[Hashable] | None = None,
    ordinal: bool = False,
    weights: Weights = "quadratic",
    threshold: float | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> AgreementReport:
    """Accuracy, kappa, weighted kappa (``ordinal``), sensitivity and specificity with intervals.

    An item passes when its value is True (booleans) or ``>= threshold`` (numbers). All five
    intervals come from the same ``resamples`` item resamples (vectorised: one contingency table per
    resample), so they equal :func:`bootstrap` of each statistic with the same seed.
    """
    n = _paired(judge, human)
    levels = _levels([*human, *judge], categories, ordered=ordinal)
    k = len(levels)
    h, j = _encode(human, levels), _encode(judge, levels)
    unweighted = _disagreement(k, None)
    weighted = _disagreement(k, weights) if ordinal else None
    passing = _pass_levels(levels, threshold)

    table = _tables(h, j, k, np.arange(n)[None, :])
    point = _table_stats(table, unweighted, weighted, passing)
    boot: dict[str, Interval | None] = {}
    if n >= 2:
        rng = np.random.default_rng(seed)
        chunks = [
            _table_stats(_tables(h, j, k, idx), unweighted, weighted, passing)
            for idx in _index_chunks(rng, n, resamples)
        ]
        for name in point:
            boot[name] = _percentile(np.concatenate([c[name] for c in chunks]), confidence)

    def value(name: str) -> float | None:
        return float(point[name][0]) if name in point else None

    pass_confusion = None
    if passing is not None:
        pass_confusion = Confusion(*(int(point[c][0]) for c in ("tp", "fp", "fn", "tn")))
    return AgreementReport(
        n=n,
        categories=tuple(levels),
        accuracy=float(point["accuracy"][0]),
        kappa=float(point["kappa"][0]),
        weighted_kappa=value("weighted_kappa"),
        sensitivity=value("sensitivity"),
        specificity=value("specificity"),
        matrix=table[0].astype(int).tolist(),
        pass_confusion=pass_confusion,
        accuracy_ci=boot.get("accuracy"),
        kappa_ci=boot.get("kappa"),
        weighted_kappa_ci=boot.get("weighted_kappa"),
        sensitivity_ci=boot.get("sensitivity"),
        specificity_ci=boot.get("specificity"),
        weights=weights if ordinal else None,
        threshold=threshold,
        confidence=confidence,
        resamples=resamples,
    )


# -- several annotators ----------------------------------------------------------------------------


def _unit_values(units: Sequence[Mapping[str, Hashable | None]]) -> list[list[Hashable]]:
    return [[v for v in unit.values() if not _missing(v)] for unit in units]


def krippendorff_alpha(units: Sequence[Mapping[str, Hashable | None]], *, level: Level = "nominal") -> float:
    """Krippendorff's alpha ``1 - D_o/D_e`` from the coincidence matrix of pairable values.

    Each unit maps annotator to value (None or NaN: not labelled). Units with fewer than two values
    are not pairable and are skipped. ``level`` picks the difference metric: ``nominal`` (0/1),
    ``ordinal`` (rank distance through the marginal frequencies of the values, which must sort) or
    ``interval`` (squared numeric difference). nan when undefined: no pairable unit, or a single value
    throughout (no expected disagreement: data without variation say nothing about reliability).
    """
    values = [vs for vs in _unit_values(units) if len(vs) >= 2]
    if not values:
        return math.nan
    if level not in ("nominal", "ordinal", "interval"):
        raise ValueError(f"level must be 'nominal', 'ordinal' or 'interval', got {level!r}")
    levels = _levels(itertools.chain.from_iterable(values), None, ordered=level != "nominal")
    k = len(levels)
    index = {v: i for i, v in enumerate(levels)}
    counts = np.zeros((len(values), k))  # counts[u, c]: annotators who gave unit u value c
    for u, vs in enumerate(values):
        for v in vs:
            counts[u, index[v]] += 1
    m = counts.sum(axis=1)
    # o[c, k] = sum over units of (ordered pairs of values c, k from different annotators) / (m_u - 1)
    scaled = counts / (m - 1)[:, None]
    coincidence = scaled.T @ counts - np.diag(scaled.sum(axis=0))
    marginal = coincidence.sum(axis=1)
    total = marginal.sum()
    if level == "nominal":
        delta2 = _disagreement(k, None)
    elif level == "interval":
        try:
            x = np.array([float(v) for v in levels])  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"interval alpha needs numeric values, got {levels!r}") from None
        delta2 = (x[:, None] - x[None, :]) ** 2
    else:
        # Ordinal: delta(c, k) = sum of n_g for g from c to k, minus (n_c + n_k) / 2, squared.
        cum = np.cumsum(marginal)
        lo, hi = np.minimum.outer(np.arange(k), np.arange(k)), np.maximum.outer(np.arange(k), np.arange(k))
        between = cum[hi] - cum[lo] + marginal[lo]
        delta2 = (between - (marginal[:, None] + marginal[None, :]) / 2) ** 2
    d_obs = float((coincidence * delta2).sum())
    d_exp = float((np.outer(marginal, marginal) * delta2).sum())
    if d_exp == 0:
        return math.nan
    return float(1.0 - (total - 1) * d_obs / d_exp)


class InterAnnotator(TypedDict):
    """Agreement among human annotators: the ceiling a judge can be expected to reach."""

    level: Level
    alpha: float  # Krippendorff's alpha over all annotators
    mean_pairwise_kappa: float  # mean over annotator pairs with a defined kappa (nan if none)
    pairwise_kappa: dict[tuple[str, str], float]
    kappa_weights: Weights | None  # quadratic for ordinal/interval levels, None for nominal
    annotators: list[str]
    units: int  # pairable units (two or more values)


def inter_annotator(
    units: Sequence[Mapping[str, Hashable | None]], *, level: Level = "nominal"
) -> InterAnnotator:
    """Krippendorff's alpha and the mean pairwise Cohen's kappa between annotators.

    Each pair's kappa uses the units both labelled (nan with fewer than two) and the levels of all
    annotators' values; it is quadratic-weighted over the sorted levels for ordinal and interval data.
    """
    labelled = {a for unit in units for a, v in unit.items() if not _missing(v)}
    annotators = [a for a in dict.fromkeys(a for unit in units for a in unit) if a in labelled]
    all_values = list(itertools.chain.from_iterable(_unit_values(units)))
    weights: Weights | None = None if level == "nominal" else "quadratic"
    pairwise: dict[tuple[str, str], float] = {}
    if all_values:
        levels = _levels(all_values, None, ordered=weights is not None)
        for a, b in itertools.combinations(annotators, 2):
            shared = [(u[a], u[b]) for u in units if not _missing(u.get(a)) and not _missing(u.get(b))]
            if len(shared) < 2:
                pairwise[(a, b)] = math.nan
                continue
            va, vb = zip(*shared, strict=True)
            pairwise[(a, b)] = cohen_kappa(va, vb, weights=weights, categories=levels)
    defined = [v for v in pairwise.values() if not math.isnan(v)]
    return InterAnnotator(
        level=level,
        alpha=krippendorff_alpha(units, level=level),
        mean_pairwise_kappa=float(np.mean(defined)) if defined else math.nan,
        pairwise_kappa=pairwise,
        kappa_weights=weights,
        annotators=annotators,
        units=sum(1 for vs in _unit_values(units) if len(vs) >= 2),
    )
