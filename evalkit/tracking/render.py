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
    if board.by:
        head.insert(3, board.by)
    rows = []
    for e in board.entries:
        interval = f"[{_num(e.ci_low)}, {_num(e.ci_high)}]" if e.ci_low is not None and e.ci_high is not None else ""
        row = [f"{e.rank}=" if e.tied else str(e.rank), e.run_id, e.suite, e.agent, _num(e.value), interval,
               _num(e.error_rate), _num(e.cost_usd, 4), e.age]
        if board.by:
            row.insert(3, e.group or "")
        rows.append(row)
    return head, rows


def compare_grid(cmp: Comparison) -> tuple[list[str], list[list[str]]]:
    head = ["metric", cmp.run_a, cmp.run_b, "delta", "relative"]
    rows = [[m.metric, _num(m.a), _num(m.b), "" if m.delta is None else f"{m.delta:+.3f}",
             "" if m.relative is None else f"{m.relative:+.1%}"] for m in cmp.metrics]
    rows += [[k, a or "", b or "", "" if a == b else "≠", ""] for k, (a, b) in cmp.tags.items()]
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

        t = Table(title=safe_text.terminal_line(title) or None, caption=safe_text.terminal_line(note) or None)
        for h in head:
            t.add_column(safe_text.terminal_line(h), overflow="fold")
        for r in rows:
            t.add_row(*(safe_text.terminal_line(c) for c in r))
        buf = io.StringIO()
        Console(file=buf, width=200, highlight=False, soft_wrap=False, emoji=False).print(t)
        return buf.getvalue()
    raise ValueError(fmt)


def render_board(board: Board, fmt: str) -> str:
    if fmt == "json":
        return safe_text.json_dumps({"metric": board.metric, "ascending": board.ascending, "by": board.by,
                                     "entries": board.rows()}, indent=2) + "\n"
    order = "lower is better" if board.ascending else "higher is better"
    note = f"{order}; '=' marks ranks whose intervals overlap (a tie)"
    head, rows = board_grid(board)
    return grid_text(head, rows, fmt, title=f"leaderboard: {board.metric}", note=note)


def render_comparison(cmp: Comparison, fmt: str) -> str:
    if fmt == "json":
        return safe_text.json_dumps(cmp.as_dict(), indent=2) + "\n"
    head, rows = compare_grid(cmp)
    return grid_text(head, rows, fmt, title=f"compare {cmp.run_a} → {cmp.run_b}")
