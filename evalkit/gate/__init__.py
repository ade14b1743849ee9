"""The CI gate: thresholds, baseline comparison and the verdict that becomes the exit code."""

from evalkit.gate.baseline import (
    BaselineComparison,
    MetricComparison,
    NoBaseline,
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
    GateStatus,
    evaluate_gate,
    gate_metrics,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MAX_ERROR_RATE",
    "DEFAULT_MIN_EFFECT",
    "BaselineComparison",
    "GateResult",
    "GateStatus",
    "MetricComparison",
    "NoBaseline",
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
    "validate_metric_names",
]
