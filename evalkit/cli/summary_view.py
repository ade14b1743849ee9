"""Rendering a run summary as a terminal table."""

from __future__ import annotations

from typing import Any

from evalkit.cli.common import fmt, fmt_ci
from evalkit.schema import RunSummary


def summary_table(summary: RunSummary) -> Any:
    from rich.table import Table

    t = Table(title=f"{summary.suite} · run {summary.run_id} · {summary.status}", title_justify="left")
    for col in ("scorer", "mean", "95% CI", "pass rate", "95% CI ", "scored", "errors"):
        t.add_column(col, justify="left" if col == "scorer" else "right")
    for s in summary.scorers:
        t.add_row(s.name, fmt(s.mean), fmt_ci(s.mean_ci), fmt(s.pass_rate), fmt_ci(s.pass_rate_ci), str(s.scored), str(s.errors))
    t.caption = (
        f"cases {summary.cases} · errors {summary.errors} ({summary.error_rate:.1%}) · latency p50 "
        f"{fmt(summary.latency_p50_ms, 1)} ms p95 {fmt(summary.latency_p95_ms, 1)} ms"
        + (f" · tokens {summary.tokens_total} · ${summary.cost_usd_total:.4f}" if summary.tokens_total else "")
    )
    t.caption_justify = "left"
    return t
