"""A Markdown report of a run and its gate, for PR comments and the GitHub job summary."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from evalkit import safe_text
from evalkit.ci_outputs._cases import CaseTable, normalise_cases
from evalkit.gate.verdict import GateResult
from evalkit.schema import RunSummary

__all__ = ["render_markdown", "write_github_summary", "write_markdown"]

_ICON = {"passed": "✅", "failed": "❌", "infra_error": "⚠️", "incomplete": "⛔"}
_TITLE = {"passed": "gate passed", "failed": "gate FAILED", "infra_error": "infrastructure errors",
          "incomplete": "run INCOMPLETE"}


def _cell(text: object, limit: int = 120) -> str:
    """Plain text for a table cell (:func:`evalkit.safe_text.markdown`): one line, controls visible, no
    markup, no raw HTML."""
    return safe_text.markdown(text, limit)


def _code(text: object, limit: int = 80) -> str:
    """An inline code span for a table cell (:func:`evalkit.safe_text.markdown_code`)."""
    return safe_text.markdown_code(text, limit)


def _num(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:.1%}" if pct else f"{v:.3g}"


def _ci(ci: tuple[float, float] | list[float] | None, pct: bool = False) -> str:
    if not ci:
        return "-"
    return f"[{_num(ci[0], pct)}, {_num(ci[1], pct)}]"


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    sep = [("---:" if a == "r" else "---") for a in (align or ["l"] * len(header))]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]


def _metrics_section(summary: RunSummary, metrics: Mapping[str, float | None]) -> list[str]:
    rows = []
    for s in summary.scorers:
        rows.append(
            [
                _code(s.name),
                _num(s.mean),
                _ci(s.mean_ci),
                _num(s.pass_rate, True),
                _ci(s.pass_rate_ci, True),
                _num(metrics.get(f"{s.name}/pass_at_k"), True),
                _num(metrics.get(f"{s.name}/pass_all_k"), True),
                _num(metrics.get(f"{s.name}/flaky_rate"), True),
                str(s.scored),
                str(s.not_applicable),
                str(s.errors),
            ]
        )
    if not rows:
        return ["_No scores._", ""]
    header = [
        "scorer",
        "mean",
        "95 % CI",
        "pass rate",
        "95 % CI",
        "pass@k",
        "pass^k",
        "flaky",
        "scored",
        "n/a",
        "errors",
    ]
    lines = ["### Metrics", "", *_table(header, rows, ["l"] + ["r"] * 10)]
    if any(s.not_applicable for s in summary.scorers):
        lines += ["_n/a: the scorer does not apply to the case (no reference, no spans, ...): neither a fail nor "
                  "an error._", ""]
    return lines


def _ledger_line(summary: RunSummary) -> list[str]:
    """Where the planned case × repeats ended, when the run's plan is known."""
    if summary.planned is None:
        return []
    missing = f"**{summary.missing} missing**" if summary.missing else "0 missing"
    return [f"Ledger: {summary.planned} planned · {summary.completed} completed · {summary.errors} errored · "
            f"{summary.cancelled} cancelled · {missing}", ""]


def _checks_section(gate: GateResult) -> list[str]:
    if not gate.checks:
        return []
    rows = []
    for c in gate.checks:
        bar = f"{_code(c.metric)} {_cell(c.op)} {c.value:g}"
        rows.append(
            [bar, c.mode, _num(c.observed), _num(c.point), _ci(c.interval), "✅" if c.passed else "❌"]
        )
    return [
        "### Thresholds",
        "",
        *_table(["threshold", "mode", "compared", "point", "95 % CI", "result"], rows),
    ]


def _baseline_section(gate: GateResult, max_flips: int) -> list[str]:
    b = gate.baseline
    if b is None:
        return []
    base = _code(b.baseline_run_id) if b.baseline_run_id else "baseline"
    lines = [
        f"### Compared with {base}",
        "",
        f"{b.n_shared_cases} shared cases (current {b.n_current_cases}, baseline {b.n_baseline_cases}); "
        f"paired tests, alpha = {b.alpha:g}, min effect {b.min_effect:g}, p-values of gating rows adjusted ({b.adjust}).",
        "",
    ]
    rows = []
    for c in b.comparisons:
        pct = c.metric == "pass_rate"
        if c.regression:
            verdict = "❌ regression" if gate.fail_on_regression else "⚠️ regression"
        elif c.improvement:
            verdict = "⬆️ improved"
        else:
            verdict = "no significant change" if c.gating else "(info)"
        p = c.p_adjusted if c.p_adjusted is not None else c.p_value
        flips = f"{len(c.to_fail)} / {len(c.to_pass)}" if c.metric == "pass_rate" else "-"
        delta = "-" if c.delta is None else (f"{c.delta:+.1%}" if pct else f"{c.delta:+.3g}")
        rows.append(
            [
                _code(c.label),
                _num(c.baseline, pct),
                _num(c.current, pct),
                delta,
                _ci(c.ci, pct),
                _num(p),
                c.test,
                flips,
                verdict,
            ]
        )
    header = [
        "metric",
        "baseline",
        "current",
        "Δ",
        "95 % CI of Δ",
        "p",
        "test",
        "pass→fail / fail→pass",
        "verdict",
    ]
    lines += _table(header, rows)
    for c in b.comparisons:
        if c.to_fail:
            shown = ", ".join(_code(x, 60) for x in c.to_fail[:max_flips])
            more = f" and {len(c.to_fail) - max_flips} more" if len(c.to_fail) > max_flips else ""
            lines += [f"**{_cell(c.scorer)}** pass → fail: {shown}{more}", ""]
    return lines


@dataclass
class _Failing:
    n: int = 0
    scorers: dict[str, int] = field(default_factory=dict)
    why: str | None = None
    trace: str | None = None


def _failing_section(cases: CaseTable | None, top: int) -> list[str]:
    rows = normalise_cases(cases)
    if not rows:
        return []
    failing: dict[str, _Failing] = {}
    target_failed = cancelled = 0
    for r in rows:
        target_failed += r.target_failed
        cancelled += r.outcome == "cancelled"
        if r.outcome == "cancelled":
            continue
        bad = [s for s in r.scores if s.passed is False or s.outcome == "error"]
        if not bad:
            continue
        entry = failing.setdefault(r.case_id, _Failing())
        entry.n += len(bad)
        entry.trace = entry.trace or r.trace_id
        for s in bad:
            label = s.name if s.outcome != "error" else f"{s.name} (error: {s.error_kind})"
            entry.scorers[label] = entry.scorers.get(label, 0) + 1
            if entry.why is None:
                entry.why = (r.error if r.target_failed else None) or s.error or s.rationale or \
                    f"{s.name} = {_num(s.value)}"
    lines = ["### Top failing cases", ""]
    if target_failed:
        lines += [f"{target_failed} case run(s) errored before scoring (the target failed).", ""]
    if cancelled:
        lines += [f"{cancelled} case run(s) were cancelled before they ran.", ""]
    if not failing:
        return [*lines, "_No failing cases._", ""]
    ranked = sorted(failing.items(), key=lambda kv: (-kv[1].n, kv[0]))[:top]
    table = []
    for case_id, e in ranked:
        failed = ", ".join(f"{n} x{k}" if k > 1 else n for n, k in e.scorers.items())
        trace = _code(e.trace) if e.trace else "-"
        table.append([_code(case_id, 60), _cell(failed), _cell(e.why or ""), trace])
    lines += _table(["case", "failed scorers", "first reason", "trace"], table)
    if len(failing) > len(ranked):
        lines += [f"… and {len(failing) - len(ranked)} more failing case(s).", ""]
    return lines


def render_markdown(
    summary: RunSummary,
    gate: GateResult | None,
    cases: CaseTable | None = None,
    *,
    top_failing: int = 10,
    max_flips: int = 20,
) -> str:
    """Gate verdict, metric table with intervals, thresholds, baseline deltas and top failing cases."""
    status = gate.status if gate else "passed"
    lines: list[str] = []
    if gate is None:
        lines += [f"## evalkit · {_code(summary.suite)}", ""]
    else:
        icon = _ICON.get(status, "⛔")  # a verdict this writer does not know: never shown as a pass
        title = _TITLE.get(status, f"gate {_cell(status)}")
        lines += [
            f"## {icon} evalkit {title} · {_code(summary.suite)}",
            "",
            f"> {_cell(gate.reason, 600)} (exit code {gate.exit_code})",
            "",
        ]
    err_line = f"errors {summary.error_rate:.1%}"
    if gate is not None:
        err_line = f"errors {gate.error_rate:.1%} (max {gate.max_error_rate:.1%})"
    lat = f" · latency p95 {summary.latency_p95_ms:.0f} ms" if summary.latency_p95_ms is not None else ""
    cost = f" · cost ${summary.cost_usd_total:.4f}" if summary.cost_usd_total else ""
    na = sum(s.not_applicable for s in summary.scorers)
    na_line = f" · {na} score(s) not applicable" if na else ""
    lines += [f"Run {_code(summary.run_id)} · {summary.cases} case runs · {err_line}{na_line}{lat}{cost}", ""]
    lines += _ledger_line(summary)
    metrics = gate.metrics if gate else summary.metrics()
    lines += _metrics_section(summary, metrics)
    if gate is not None:
        lines += _checks_section(gate)
        lines += _baseline_section(gate, max_flips)
    lines += _failing_section(cases, top_failing)
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(
    path: str | Path, summary: RunSummary, gate: GateResult | None, cases: CaseTable | None = None
) -> Path:
    """Write :func:`render_markdown` to ``path`` (parents created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_markdown(summary, gate, cases), encoding="utf-8")
    return p


def write_github_summary(markdown: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY`` when it is set; return the file, else None."""
    target = (env if env is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    p = Path(target)
    with p.open("a", encoding="utf-8") as fh:
        fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
        fh.write("\n")
    return p
