"""Trace commands: ``evalkit traces``, ``evalkit trace``, ``evalkit sql`` and ``evalkit collect``."""

from __future__ import annotations

import csv
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, print_json

if TYPE_CHECKING:
    from evalkit.tracing.queries import SpanNode


def _ms(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms"


def _outcome(r: dict[str, Any]) -> str:
    """A case's outcome as a cell: ``error (<kind>)``, cancelled, fail (a score failed or a span errored) or ok."""
    from evalkit.safe_text import terminal_line

    if r["outcome"] == "errored":
        return f"[red]error ({terminal_line(r['error_kind'] or 'scorer')})[/]"
    if r["outcome"] == "cancelled":
        return "[dim]cancelled[/]"
    return "[red]fail[/]" if r["failed"] else "ok"


def traces(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).", show_default=False)],
    store: StoreOpt = None,
    limit: Annotated[int, typer.Option(help="Show at most N cases (0: all).", min=0)] = 20,
    failed: Annotated[bool, typer.Option(
        "--failed", help="Only failed cases (errored or cancelled, a failed or errored score, or error spans).")] = False,
    slowest: Annotated[bool, typer.Option("--slowest", help="Order by duration only (default: failed first).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """A run's cases with their traces: failed and slowest first, with durations, tokens, tools and errors."""
    from rich.table import Table

    from evalkit.safe_text import terminal, terminal_line
    from evalkit.store.db import open_store
    from evalkit.tracing.queries import case_traces

    with open_store(store, read_only=True) as st:
        run = st.get_run(run_id)
        rows = case_traces(st, run["run_id"], limit=limit or None, failed_only=failed,
                           order="slowest" if slowest else "failed")
    if json_out:
        print_json({"run_id": run["run_id"], "cases": rows})
        return
    t = Table(title=terminal_line(f"traces of run {run['run_id']} · {run['suite']}"), title_justify="left")
    for col, just in (("case", "left"), ("status", "left"), ("duration", "right"), ("spans", "right"),
                      ("tools", "right"), ("llm", "right"), ("tokens in/out", "right"), ("slowest span", "left"),
                      ("errors / failed scores", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        case = r["case_id"] + (f" #{r['repeat']}" if r["repeat"] else "")
        status = _outcome(r)
        slow = f"{terminal_line(r['slowest_span'])} ({_ms(r['slowest_span_ms'])})" if r["slowest_span"] else ""
        problems = [p for p in (r["error"], r["errors"], r["failed_scores"]) if p]
        t.add_row(terminal(case), status, _ms(r["duration_ms"]), str(r["spans"]), str(r["tool_calls"]),
                  str(r["llm_calls"]), f"{r['input_tokens']}/{r['output_tokens']}", slow,
                  terminal("; ".join(str(p) for p in problems), limit=120))
    out = console()
    out.print(t)
    if rows:
        out.print(f"tree of one case: evalkit trace {terminal_line(run['run_id'])} {terminal_line(rows[0]['case_id'])}")


def _label(node: SpanNode) -> str:
    from evalkit.safe_text import terminal_line as escape

    r = node.row
    a = node.attributes
    name = r["name"] or "?"
    if name == "evalkit.scorer" and a.get("evalkit.scorer"):
        name = f"scorer {a['evalkit.scorer']}"
    elif name == "evalkit.target" and a.get("evalkit.target"):
        name = f"target {a['evalkit.target']}"
    parts = [f"[bold]{escape(name)}[/]", f"[dim]{_ms(r['duration_ms'])}[/]"]
    if r["service_name"] and r["service_name"] != "evalkit":
        parts.append(f"[magenta]@{escape(r['service_name'])}[/]")
    model = r["response_model"] or r["request_model"]
    if model:
        parts.append(f"[cyan]{escape(str(model))}[/]")
    if r["input_tokens"] is not None or r["output_tokens"] is not None:
        parts.append(f"tokens {r['input_tokens'] or 0}→{r['output_tokens'] or 0}")
    if a.get("evalkit.cache_hit"):
        parts.append("[dim](cached)[/]")
    if r["tool_name"] and r["tool_name"] not in name:
        parts.append(f"tool [cyan]{escape(r['tool_name'])}[/]")
    args = a.get("gen_ai.tool.call.arguments")
    if args:
        parts.append(f"[dim]{escape(str(args)[:80])}[/]")
    if r["status_code"] == "ERROR":
        msg = r["status_message"] or r["error_type"] or "error"
        parts.append(f"[red]✗ {escape(str(msg)[:160])}[/]")
    return "  ".join(parts)


def _verdicts(node: SpanNode) -> list[str]:
    from evalkit.safe_text import terminal_line as escape

    out = []
    for ev in node.events:
        if ev.get("name") != "gen_ai.evaluation.result":
            continue
        a = ev.get("attributes") or {}
        label = a.get("gen_ai.evaluation.score.label")
        mark = {"pass": "[green]✓[/]", "fail": "[red]✗[/]", "error": "[yellow]![/]"}.get(str(label), "·")
        value = a.get("gen_ai.evaluation.score.value")
        why = a.get("gen_ai.evaluation.explanation")
        text = f"{mark} [bold]{escape(str(a.get('gen_ai.evaluation.name')))}[/]"
        if value is not None:
            text += f" = {value:g}" if isinstance(value, int | float) else f" = {escape(value)}"
        if label:
            text += f" ({escape(str(label))})"
        if why:
            text += f" [dim]— {escape(str(why)[:160])}[/]"
        out.append(text)
    return out


def _flatten(nodes: list[SpanNode], depth: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n in nodes:
        out.append({"depth": depth, **{k: v for k, v in n.row.items() if k not in ("attributes", "events")},
                    "attributes": n.attributes, "events": n.events})
        out.extend(_flatten(n.children, depth + 1))
    return out


TRACE_TEXT = 400  # characters of the case's input, expected and output shown above its trace (--json has all)


def trace(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).", show_default=False)],
    case_id: Annotated[str, typer.Argument(help="Case id.", show_default=False)],
    repeat: Annotated[int | None, typer.Option("--repeat", help="Which repeat of the case [default: the first].")] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """One case's trace as a tree: durations, models, tokens, tools, errors and the judges' verdicts."""
    from rich.tree import Tree

    from evalkit.safe_text import terminal_line as escape
    from evalkit.store.db import open_store
    from evalkit.tracing.queries import case_trace

    with open_store(store, read_only=True) as st:
        run = st.get_run(run_id)
        case, roots = case_trace(st, run["run_id"], case_id, repeat)
    if json_out:
        print_json({"run_id": run["run_id"], "case": case, "spans": _flatten(roots)})
        return
    status = {"completed": "[green]ok[/]", "cancelled": "[dim]cancelled[/]"}.get(
        case["outcome"], f"[red]error ({escape(case['error_kind'] or 'scorer')})[/]")
    top = Tree(f"case [bold]{escape(case['case_id'])}[/] #{case['repeat']} · {status} · trace {escape(case['trace_id'])}")
    for key in ("input", "expected", "output", "error"):
        value = case.get(key)
        if value not in (None, "", []):
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            top.add(f"[bold]{key}[/] {escape(text, TRACE_TEXT)}")
    if not roots:
        top.add("[yellow]no spans stored for this trace[/]")

    def add(parent: Tree, node: SpanNode) -> None:
        branch = parent.add(_label(node))
        for child in sorted(node.children, key=lambda n: (n.row["start_time"] is None, n.row["start_time"])):
            add(branch, child)
        verdicts = _verdicts(node)
        if verdicts:
            scores = branch.add("[bold]scores[/]")
            for v in verdicts:
                scores.add(v)

    for root in roots:
        add(top, root)
    console().print(top)


def sql(
    query: Annotated[str, typer.Argument(help="A SQL query (DuckDB dialect) over runs, case_results, scores, spans.",
                                         show_default=False)],
    store: StoreOpt = None,
    json_out: JsonOpt = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
) -> None:
    """Query the store read-only; prints a table, JSON (--json) or CSV (--csv)."""
    import duckdb

    from evalkit.errors import UserError
    from evalkit.store.db import open_store

    with open_store(store, read_only=True) as st:
        try:
            cur = st.con.execute(query)  # read-only connection, used by this command alone
            cols = [d[0] for d in cur.description or []]
            data = cur.fetchall()
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"sql: {first}") from None
    if json_out:
        print_json([dict(zip(cols, r, strict=True)) for r in data])
        return
    if csv_out:
        from evalkit.safe_text import csv_row

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(csv_row(cols))
        w.writerows(csv_row(r) for r in data)
        return
    from rich.table import Table

    from evalkit.safe_text import terminal as escape

    t = Table(caption=f"{len(data)} row{'s' if len(data) != 1 else ''}", caption_justify="left")
    for c in cols:
        t.add_column(escape(c))
    for r in data:
        t.add_row(*("" if v is None else escape(str(v)) for v in r))
    console().print(t)


def collect(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (4318 is the OTLP/HTTP default; 0 picks a free one).", min=0)] = 4318,
    store: StoreOpt = None,
    token: Annotated[str | None, typer.Option(
        help="Require 'Authorization: Bearer TOKEN' on every request [env EVALKIT_COLLECT_TOKEN, preferred].",
        show_default=False)] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow a non-loopback --host without a token.")] = False,
    max_spans: Annotated[int | None, typer.Option(
        "--max-spans", help="Spans one request may carry (more: 413) [default: 10000].", min=1)] = None,
) -> None:
    """Receive OTLP/HTTP spans (POST /v1/traces, protobuf or JSON, gzip) into the store until Ctrl-C.

    DuckDB has one writer process: run this when no `evalkit run` holds the store. Spans of traces
    no running case owns land in the `unattributed_spans` table.
    """
    import signal
    import threading

    from evalkit.store.db import open_store
    from evalkit.tracing.intake import Limits
    from evalkit.tracing.receiver import check_bind, is_loopback, start_receiver

    token = check_bind(host, token, insecure)  # before the store is opened
    limits = Limits() if max_spans is None else Limits(max_spans=max_spans)
    stop = threading.Event()
    with open_store(store) as st:
        try:
            rx = start_receiver(st, host, port, token=token, insecure=insecure, limits=limits)
        except OSError as exc:
            from evalkit.errors import UserError

            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        err = console(stderr=True)
        auth = "bearer token required" if rx.token_required else "no token"
        err.print(f"evalkit collect: receiving OTLP spans at {rx.url} into {st.label} ({auth}; Ctrl-C to stop)")
        if not rx.token_required and not is_loopback(host):
            err.print("evalkit collect: warning: --insecure: anyone who can reach this port can write spans")
        try:
            while not stop.wait(0.5):
                pass
        finally:
            rx.close()
        err.print(f"evalkit collect: stopped after {rx.received} spans ({rx.ingest.unattributed} unattributed)")


def register(app: typer.Typer) -> None:
    """Mount the trace commands on the root app."""
    app.command("traces")(traces)
    app.command("trace")(trace)
    app.command("sql")(sql)
    app.command("collect")(collect)
