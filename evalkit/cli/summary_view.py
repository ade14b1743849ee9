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


def gate_lines(gate: Any) -> list[str]:
    """The gate verdict as a few terminal lines."""
    if gate is None:
        return []
    lines = []
    for c in gate.checks:
        mark = "[green]✓[/green]" if c.passed else "[red]✗[/red]"
        lines.append(f"  {mark} {c.message}")
    if gate.baseline is not None:
        for m in gate.baseline.comparisons:
            if m.delta is None:
                continue
            flag = "[red]✗ regression[/red]" if m.regression else ("[green]▲[/green]" if m.improvement else " ")
            ci = f" [{m.ci[0]:+.3f}, {m.ci[1]:+.3f}]" if m.ci else ""
            p = f" p={m.p_adjusted if m.p_adjusted is not None else m.p_value:.3g}" if m.p_value is not None else ""
            flips = f" flipped: {len(m.to_fail)}→fail {len(m.to_pass)}→pass" if (m.to_fail or m.to_pass) else ""
            lines.append(f"  {flag} {m.scorer}/{m.metric} Δ {m.delta:+.3f}{ci}{p}{flips}")
    colour = {"passed": "green", "failed": "red"}.get(gate.status, "yellow")
    lines.append(f"[bold {colour}]gate {gate.status}[/bold {colour}]: {gate.reason}")
    return lines
