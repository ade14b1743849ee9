"""The session gate: the suites' thresholds (and an optional baseline) applied to the pytest run.

A thin adapter over :mod:`evalkit.gate` so the plugin depends on one function, :func:`decide`.
When :mod:`evalkit.gate` cannot be imported, :func:`_minimal` checks point thresholds against the
summary's metrics (``metric op value``) and the error budget; it exists only as that fallback.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.errors import UserError

if TYPE_CHECKING:
    from evalkit.schema import RunSummary
    from evalkit.store.db import Store


@dataclass
class Verdict:
    """What the gate decided, as the plugin reports it."""

    passed: bool
    status: str  # passed | failed | infra_error
    reason: str
    checks: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # stored in runs.gate


def decide(
    store: Store,
    run_id: str,
    summary: RunSummary,
    thresholds: list[tuple[str | None, Any]],
    *,
    max_error_rate: float,
    baseline: str | None = None,
) -> Verdict:
    """Gate a finished run. ``thresholds`` are ``(source file, raw suite entries)`` pairs."""
    try:
        import evalkit.gate as gate
    except ImportError:
        return _minimal(summary, thresholds, max_error_rate)
    try:
        parsed = [t for src, raw in thresholds for t in gate.parse_thresholds(raw, source=src)]
        baseline_scores, baseline_id = None, None
        if baseline:
            baseline_id = gate.resolve_baseline(store, baseline, suite=summary.suite, exclude_run_id=run_id)
            baseline_scores = gate.load_scores(store, baseline_id)
        result = gate.evaluate_gate(
            summary, gate.load_scores(store, run_id), parsed, baseline_scores,
            fail_on_regression=baseline is not None, max_error_rate=max_error_rate, baseline_run_id=baseline_id,
        )
    except UserError as exc:
        return Verdict(False, "failed", f"gate not evaluated: {exc.format()}", data={"error": exc.format()})
    checks = [c.message for c in result.checks]
    if result.baseline is not None:
        checks += [
            f"{c.label}: {c.current if c.current is None else round(c.current, 4)} vs baseline "
            f"{c.baseline if c.baseline is None else round(c.baseline, 4)}"
            + (" REGRESSION" if c.regression else "")
            for c in result.baseline.comparisons
        ]
    data = result.model_dump(mode="json", include={"status", "passed", "exit_code", "reason", "checks", "regressions"})
    return Verdict(result.passed, result.status, result.reason, checks, data)


_RULE = re.compile(r"^\s*([\w./:-]+)\s*(>=|<=|>|<)\s*([-+]?[0-9.]+)\s*$")
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def _minimal(summary: RunSummary, thresholds: list[tuple[str | None, Any]], max_error_rate: float) -> Verdict:
    """Fallback without :mod:`evalkit.gate`: point thresholds on ``summary.metrics()``."""
    if summary.error_rate > max_error_rate:
        reason = f"error rate {summary.error_rate:.1%} exceeds {max_error_rate:.1%}"
        return Verdict(False, "infra_error", reason, data={"status": "infra_error", "reason": reason})
    metrics = summary.metrics()
    checks, failed = [], []
    for src, raw in thresholds:
        for text in raw if isinstance(raw, list) else [raw]:
            m = _RULE.match(str(text))
            if not m:
                reason = f"gate not evaluated: {src}: cannot parse threshold '{text}'"
                return Verdict(False, "failed", reason, data={"error": reason})
            name, op, bar = m[1], m[2], float(m[3])
            value = metrics.get(name)
            ok = value is not None and bool(_OPS[op](value, bar))
            line = f"{name}{op}{bar:g}: {'ok' if ok else 'FAIL'} ({'no value' if value is None else f'{value:.4g}'})"
            checks.append(line)
            if not ok:
                failed.append(line)
    status = "failed" if failed else "passed"
    reason = "; ".join(failed) if failed else f"{len(checks)} threshold(s) met" if checks else "no thresholds"
    return Verdict(not failed, status, reason, checks, {"status": status, "reason": reason, "checks": checks})
