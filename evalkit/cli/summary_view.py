"""Rendering a run summary as a terminal table."""

from __future__ import annotations

from typing import Any

from evalkit.cli.common import fmt, fmt_ci
from evalkit.safe_text import terminal_line
from evalkit.schema import RunSummary

GATE_COLOURS = {"infra_error": "yellow"}  # passed is green; anything else (failed, incomplete, unknown) is red


def ledger_line(summary: RunSummary) -> str:
    """Where the case × repeats ended: ``planned N · completed · errored · cancelled · missing`` (planned
    and missing only when the run's plan is known)."""
    line = f"completed {summary.completed} · errored {summary.errors} · cancelled {summary.cancelled}"
    if summary.planned is None:
        return line
    missing = f"[red]missing {summary.missing}[/red]" if summary.missing else "missing 0"
    return f"planned {summary.planned} · {line} · {missing}"


def _ms(v: float | None) -> str:
    """Milliseconds with one decimal, more for sub-millisecond agents (0.004, not 0.0)."""
    return fmt(v, 1) if v is None or v >= 1 or v == 0 else f"{v:.2g}"


def summary_table(summary: RunSummary) -> Any:
    from rich.table import Table

    t = Table(title=terminal_line(f"{summary.suite} · run {summary.run_id} · {summary.status}"), title_justify="left")
    for col in ("scorer", "mean", "95% CI", "pass rate", "95% CI ", "scored", "n/a", "errors"):
        t.add_column(col, justify="left" if col == "scorer" else "right")
    for s in summary.scorers:
        na = f"[dim]{s.not_applicable}[/dim]" if s.not_applicable else "0"
        errors = f"[yellow]{s.errors}[/yellow]" if s.errors else "0"
        t.add_row(terminal_line(s.name), fmt(s.mean), fmt_ci(s.mean_ci), fmt(s.pass_rate), fmt_ci(s.pass_rate_ci),
                  str(s.scored), na, errors)
    judges = judge_lines(summary)
    t.caption = (
        "".join(f"{line}\n" for line in judges) +
        f"{ledger_line(summary)}\n"
        f"cases {summary.cases} · errors {summary.errors} ({summary.error_rate:.1%}) · latency p50 "
        f"{_ms(summary.latency_p50_ms)} ms p95 {_ms(summary.latency_p95_ms)} ms"
        + (f" · tokens {summary.tokens_total} · ${summary.cost_usd_total:.4f}" if summary.tokens_total else "")
    )
    t.caption_justify = "left"
    return t


def judge_lines(summary: RunSummary) -> list[str]:
    """One line per LLM-judge scorer: its human agreement and corrected pass rate, or that it is uncalibrated."""
    out = []
    for name, j in summary.judges:
        head = terminal_line(f"{name}: judge {j.ref} · {j.model or '?'}")
        if j.agreement is None:
            out.append(f"{head} · [dim]not calibrated (evalkit calibrate)[/dim]")
            continue
        line = f"{head} · agreement {fmt(j.agreement)} ({j.agreement_metric}, {j.calibration_items} items)"
        if j.corrected_pass_rate is not None:
            line += f" · corrected pass rate {fmt(j.corrected_pass_rate)} {fmt_ci(j.corrected_pass_rate_ci)}"
        elif j.correction_note:
            line += f" · no corrected pass rate: {terminal_line(j.correction_note)}"
        out.append(line)
    return out


def gate_lines(gate: Any) -> list[str]:
    """The gate verdict as a few terminal lines (an unknown status is shown red: not passed)."""
    if gate is None:
        return []
    lines = []
    for c in gate.checks:
        mark = "[green]✓[/green]" if c.passed else "[red]✗[/red]"
        lines.append(f"  {mark} {terminal_line(c.message)}")
    if gate.baseline is not None:
        for m in gate.baseline.comparisons:
            if m.delta is None:
                continue
            flag = "[red]✗ regression[/red]" if m.regression else ("[green]▲[/green]" if m.improvement else " ")
            ci = f" [{m.ci[0]:+.3f}, {m.ci[1]:+.3f}]" if m.ci else ""
            p = f" p={m.p_adjusted if m.p_adjusted is not None else m.p_value:.3g}" if m.p_value is not None else ""
            flips = f" flipped: {len(m.to_fail)}→fail {len(m.to_pass)}→pass" if (m.to_fail or m.to_pass) else ""
            lines.append(f"  {flag} {terminal_line(f'{m.scorer}/{m.metric} Δ {m.delta:+.3f}{ci}{p}{flips}')}")
    colour = "green" if gate.status == "passed" and gate.passed else GATE_COLOURS.get(gate.status, "red")
    lines.append(f"[bold {colour}]gate {terminal_line(gate.status)}[/bold {colour}]: {terminal_line(gate.reason)}")
    return lines
