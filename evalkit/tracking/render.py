"""Leaderboard and comparison output: table, markdown, csv, json, html."""

from __future__ import annotations

import csv
import io
from typing import Literal

from evalkit import safe_text
from evalkit.tracking.compare import Comparison
from evalkit.tracking.leaderboard import Board

Format = Literal["table", "markdown", "csv", "json", "html"]
FORMATS = ("table", "markdown", "csv", "json", "html")


def _num(v: float | None, digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def board_grid(board: Board) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a leaderboard, as text."""
    head = ["rank", "run", "suite", "agent", board.metric, "interval", "errors/rate", "cost_usd", "age"]
    extra = board.by not in (None, "agent")  # grouped by agent: the agent column is the group
    if extra:
        head.insert(3, str(board.by))
    rows = []
    for e in board.entries:
        interval = f"[{_num(e.ci_low)}, {_num(e.ci_high)}]" if e.ci_low is not None and e.ci_high is not None else ""
        row = [f"{e.rank}=" if e.tied else str(e.rank), e.run_id, e.suite, e.agent, _num(e.value), interval,
               _num(e.error_rate), _num(e.cost_usd, 4), e.age]
        if extra:
            row.insert(3, e.group or "")
        rows.append(row)
    return head, rows


def _signed(v: float | None, digits: int = 3) -> str:
    return "" if v is None else f"{v:+.{digits}f}"


def _interval(ci: list[float] | None, signed: bool = False) -> str:
    if not ci:
        return ""
    f = _signed if signed else _num
    return f"[{f(ci[0])}, {f(ci[1])}]"


def _pval(p: float | None) -> str:
    return "" if p is None else "< 0.0001" if p < 0.0001 else f"{p:.4f}"


def _total(v: float | None) -> str:
    """A run-level total: whole numbers as such, others to 0.1 from 100 up, else to four decimals."""
    if v is None:
        return ""
    if float(v).is_integer():
        return f"{int(v)}"
    return f"{v:.1f}" if abs(v) >= 100 else f"{v:.4f}"


def _signed_total(v: float | None) -> str:
    text = _total(v)
    return text if not text or text.startswith("-") or v == 0 else f"+{text}"


def compare_grid(cmp: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a comparison (A baseline, B candidate): scorer metrics, run totals, then the
    identity tags that differ. From the store: the paired delta with its interval, p and verdict; from
    MLflow: each run's value with its own interval in one cell, and no test."""
    rows: list[list[str]] = []
    if cmp.source == "store":
        head = ["metric", "A", "B", "delta", "95% interval of delta", "p (Holm-adjusted)", "verdict", "n"]
        for m in cmp.metrics:
            p = _pval(m.p_adj) if m.p_adj is not None else (f"{_pval(m.p)} (unadjusted)" if m.p is not None else "")
            rows.append([m.metric, _num(m.a), _num(m.b), _signed(m.delta), _interval(m.ci, signed=True), p,
                         m.verdict, "" if m.n is None else str(m.n)])

        def plain(name: str, a: str, b: str, d: str) -> list[str]:
            return [name, a, b, d, "", "", "", ""]
    else:
        head = ["metric", "A", "A interval", "B", "B interval", "delta", "relative"]
        for m in cmp.metrics:
            rows.append([m.metric, _num(m.a), _interval(m.a_ci), _num(m.b), _interval(m.b_ci), _signed(m.delta),
                         "" if m.relative is None else f"{m.relative:+.1%}"])

        def plain(name: str, a: str, b: str, d: str) -> list[str]:
            return [name, a, "", b, "", d, ""]
    rows += [plain(r.name, _total(r.a), _total(r.b), _signed_total(r.delta)) for r in cmp.run_metrics]
    rows += [plain(k, a or "", b or "", "≠") for k, (a, b) in cmp.differing_tags.items()]
    return head, rows


def grid_text(head: list[str], rows: list[list[str]], fmt: str, title: str = "", note: str = "") -> str:
    """Render a grid in a text format (everything but json)."""
    if fmt == "markdown":
        esc = [[safe_text.markdown(c) for c in r] for r in [head, *rows]]
        lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
        top = [f"**{safe_text.markdown(title)}**", ""] if title else []
        return "\n".join(top + lines + (["", safe_text.markdown(note)] if note else [])) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(safe_text.csv_row(head))
        w.writerows(safe_text.csv_row(r) for r in rows)
        return buf.getvalue()
    if fmt == "html":
        h_ = safe_text.html
        th = "".join(f"<th>{h_(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{h_(c)}</td>" for c in r) + "</tr>\n" for r in rows)
        cap = f"<caption>{h_(title)}</caption>" if title else ""
        foot = f"<p>{h_(note)}</p>\n" if note else ""
        return (f'<!doctype html>\n<meta charset="utf-8"><title>{h_(title or "evalkit")}</title>\n'
                f"<table>{cap}<thead><tr>{th}</tr></thead>\n<tbody>\n{trs}</tbody></table>\n{foot}")
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table

        t = Table(title=safe_text.terminal_line(title) or None)
        for h in head:
            t.add_column(safe_text.terminal_line(h), overflow="fold")
        for r in rows:
            t.add_row(*(safe_text.terminal_line(c) for c in r))
        buf = io.StringIO()
        out = Console(file=buf, width=200, highlight=False, soft_wrap=False, emoji=False)
        out.print(t)
        if note:  # below the table, unwrapped: a caption would fold it to the table's width
            out.print(safe_text.terminal_line(note), soft_wrap=True, markup=False)
        return buf.getvalue()
    raise ValueError(fmt)


def render_board(board: Board, fmt: str) -> str:
    if fmt == "json":
        return safe_text.json_dumps({"metric": board.metric, "metric_source": board.metric_source,
                                     "ascending": board.ascending, "by": board.by,
                                     "partial_skipped": board.partial_skipped, "entries": board.rows()},
                                    indent=2) + "\n"
    order = "lower is better" if board.ascending else "higher is better"
    note = f"ranked by {board.metric} ({board.metric_source}), {order}; '=' marks ranks whose intervals overlap (a tie)"
    if board.partial_skipped:
        note += f"; {board.partial_skipped} partial run(s) left out (--include-partial ranks them)"
    head, rows = board_grid(board)
    return grid_text(head, rows, fmt, title=f"leaderboard: {board.metric}", note=note)


def comparison_note(cmp: Comparison) -> str:
    """The caption: how the numbers were computed (and, from MLflow, why there is no significance)."""
    note = f"B − A; {cmp.method}" if cmp.method else "B − A"
    if cmp.tags and not cmp.differing_tags:
        note += f"; same {', '.join(cmp.tags)}"
    return note


def render_comparison(cmp: Comparison, fmt: str) -> str:
    if fmt == "json":
        return safe_text.json_dumps(cmp.as_dict(), indent=2) + "\n"
    head, rows = compare_grid(cmp)
    return grid_text(head, rows, fmt, title=f"compare A {cmp.run_a} → B {cmp.run_b}", note=comparison_note(cmp))
