"""The CI gate: thresholds, baseline comparison and the verdict that becomes the exit code."""

from evalkit.gate.baseline import (
    SCORE_COLUMNS,
    BaselineComparison,
    MetricComparison,
    compare_runs,
    load_scores,
    resolve_baseline,
)
from evalkit.gate.thresholds import (
    Threshold,
    ThresholdCheck,
    check_thresholds,
    known_metric_names,
    parse_threshold,
    parse_thresholds,
    validate_metric_names,
)
from evalkit.gate.verdict import (
    DEFAULT_ALPHA,
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_MIN_EFFECT,
    GateResult,
    evaluate_gate,
    gate_metrics,
    score_error_rate,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MAX_ERROR_RATE",
    "DEFAULT_MIN_EFFECT",
    "SCORE_COLUMNS",
    "BaselineComparison",
    "GateResult",
    "MetricComparison",
    "Threshold",
    "ThresholdCheck",
    "check_thresholds",
    "compare_runs",
    "evaluate_gate",
    "gate_metrics",
    "known_metric_names",
    "load_scores",
    "parse_threshold",
    "parse_thresholds",
    "resolve_baseline",
    "score_error_rate",
    "validate_metric_names",
]
