"""MLflow commands: ``leaderboard``, ``compare``, ``sync``, ``export`` and ``import``.

mlflow is imported only inside the commands (it costs ~2 s), never when the CLI starts.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, print_json
from evalkit.errors import UserError
from evalkit.safe_text import terminal_line

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from evalkit.store.db import Store

TrackingOpt = Annotated[
    str | None,
    typer.Option("--tracking-uri", envvar="MLFLOW_TRACKING_URI",
                 help="MLflow tracking URI [default: sqlite:///.evalkit/mlflow.db beside the store]."),
]
TeamOpt = Annotated[
    str | None, typer.Option("--team", envvar="EVALKIT_TEAM", help="Team prefix of experiment names (team/suite)."),
]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, markdown, csv, json or html.")]


def _check_format(fmt: str) -> str:
    from evalkit.tracking.render import FORMATS

    if fmt not in FORMATS:
        raise UserError(f"--format '{fmt}': choose one of {', '.join(FORMATS)}")
    return fmt


def _connect(store: Path | None, tracking_uri: str | None, *, must_exist: bool = True) -> tuple[str, MlflowClient]:
    """Resolve the tracking URI, fail fast when it is unreachable, and return a client."""
    from evalkit.store.db import default_store_path
    from evalkit.tracking.uri import bounded_http, client, probe, resolve_tracking_uri, sqlite_path

    uri = resolve_tracking_uri(store or default_store_path(), tracking_uri)
    db = sqlite_path(uri)
    if must_exist and db is not None and not db.exists():
        raise UserError(f"no MLflow store at {db} yet: log runs with `evalkit run` or `evalkit sync`")
    probe(uri)
    with bounded_http():
        return uri, client(uri)


def _open_store(store: Path | None, *, read_only: bool) -> Store | None:
    from evalkit.store.db import default_store_path, open_store
    from evalkit.store.lake import is_store_url

    path = store or default_store_path()
    if read_only and not is_store_url(path) and not Path(path).exists():
        return None
    try:
        return open_store(path, read_only=read_only)
    except UserError:
        if read_only:
            return None  # locked by a running `evalkit run`: fall back to MLflow tags
        raise


def leaderboard(
    suite: Annotated[str | None, typer.Option(help="Only this suite's experiment.")] = None,
    metric: Annotated[str | None, typer.Option(
        help="Metric to rank by [default: the suite's primary: metric, else its first threshold's].")] = None,
    by: Annotated[str | None, typer.Option(help="One row per agent, model, judge or agent_model (agent with its models).")] = None,
    pick: Annotated[str, typer.Option(help="With --by: the best or the latest run of each group.")] = "best",
    last: Annotated[int | None, typer.Option(help="Only the N most recent runs.", min=1)] = None,
    since: Annotated[str | None, typer.Option(help="Only runs since a date (2026-01-31) or 7d / 12h / 2w.")] = None,
    top: Annotated[int, typer.Option(help="How many rows.", min=1, max=1000)] = 20,
    where: Annotated[str | None, typer.Option(help="Extra MLflow filter, e.g. \"tags.`evalkit.agent` = 'x'\".")] = None,
    order: Annotated[str | None, typer.Option(help="asc or desc [default: desc; asc for errors, latency, cost, tokens].")] = None,
    include_partial: Annotated[bool, typer.Option(
        "--include-partial", help="Also rank partial runs (a shard, a --limit, a pytest subset).")] = False,
    fmt: FormatOpt = "table",
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    team: TeamOpt = None,
) -> None:
    """Rank runs by a metric, from MLflow: value with its interval, error rate, cost and age; ties marked '='."""
    from evalkit.tracking.leaderboard import leaderboard as build
    from evalkit.tracking.leaderboard import parse_since
    from evalkit.tracking.render import render_board
    from evalkit.tracking.uri import bounded_http

    _check_format(fmt)
    if pick not in ("best", "latest"):
        raise UserError(f"--pick '{pick}': choose best or latest")
    if order not in (None, "asc", "desc"):
        raise UserError(f"--order '{order}': choose asc or desc")
    when = parse_since(since) if since else None
    options: dict[str, Any] = dict(suite=suite, team=team, metric=metric, by=by, pick=pick, last=last, since=when,
                                   top=top, where=where, ascending=None if order is None else order == "asc",
                                   include_partial=include_partial)
    board = _embedded_board(store, tracking_uri, options) if where is None else None
    if board is None:
        uri, c = _connect(store, tracking_uri)
        with bounded_http():
            board = build(c, uri=uri, **options)
    sys.stdout.write(render_board(board, fmt))


def _embedded_board(store: Path | None, tracking_uri: str | None, options: dict[str, Any]) -> Any:
    """The leaderboard straight from the embedded SQLite store (no mlflow import); None to use MLflow."""
    from evalkit.store.db import default_store_path
    from evalkit.tracking.leaderboard import leaderboard as build
    from evalkit.tracking.sqlite_reader import SqliteRunReader, Unsupported
    from evalkit.tracking.uri import resolve_tracking_uri, sqlite_path

    uri = resolve_tracking_uri(store or default_store_path(), tracking_uri)
    db = sqlite_path(uri)
    if db is None or not db.exists():
        return None
    reader = SqliteRunReader(db)
    try:
        return build(reader, uri=uri, **options)  # type: ignore[arg-type]
    except Unsupported:
        return None
    finally:
        reader.close()


def compare(
    run_a: Annotated[str, typer.Argument(help="Baseline evalkit run id (or unique prefix).")],
    run_b: Annotated[str, typer.Argument(help="Candidate evalkit run id (or unique prefix).")],
    fmt: FormatOpt = "table",
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Compare a baseline run A with a candidate run B: per scorer metric the delta (B − A) with its 95 %
    interval, Holm-adjusted p-value and verdict (regression, improvement, no significant change) from the
    CI gate's paired test by case id; then error rate, latency, cost and cases, and the identity tags
    (agent, models, judges, dataset, git commit) that differ.

    Significance needs both runs in the local store (read without MLflow). When a run is only on a
    tracking server, it shows their headline MLflow metrics, each with its own interval, and no test.
    """
    from evalkit.tracking.compare import compare_mlflow, compare_stored, store_run
    from evalkit.tracking.render import render_comparison

    _check_format(fmt)
    st = _open_store(store, read_only=True)  # None when missing or locked by a running `evalkit run`
    try:
        ra, rb = (store_run(st, run_a), store_run(st, run_b)) if st is not None else (None, None)
        if st is not None and ra is not None and rb is not None:
            cmp = compare_stored(st, ra, rb)  # no mlflow import on this path
        else:
            from evalkit.tracking.uri import bounded_http

            try:
                _uri, c = _connect(store, tracking_uri)
            except UserError as exc:
                missing = " and ".join(f"'{r}'" for r, row in ((run_a, ra), (run_b, rb)) if row is None)
                where = "the local store" if st is not None else "a readable local store"
                raise UserError(f"run {missing} is not in {where}, and {exc.message}") from None
            with bounded_http():
                cmp = compare_mlflow(c, run_a, run_b, store=st)
    finally:
        if st is not None:
            st.close()
    sys.stdout.write(render_comparison(cmp, fmt))


def sync(
    suite: Annotated[str | None, typer.Option(help="Only runs of this suite.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Re-check every finished run (e.g. after switching server).")] = False,
    traces: Annotated[bool, typer.Option("--traces", help="Also (re)log the per-case traces of every finished run "
                                         "(those already in MLflow are skipped).")] = False,
    traces_mode: Annotated[str | None, typer.Option("--traces-mode", metavar="MODE", help="Which cases get a trace: "
                                                    "all, all:CAP, failed, failed:CAP, sample:N [default: "
                                                    "$EVALKIT_MLFLOW_TRACES, else all:1000].")] = None,
    run: Annotated[list[str] | None, typer.Option("--run", metavar="RUN_ID",
                                                  help="Only this run (repeatable), whether or not it is in MLflow.")] = None,
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    team: TeamOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Log to MLflow the runs that are not there yet (idempotent: running it twice adds nothing)."""
    from evalkit.tracking.sync import sync_runs

    mode = _traces_mode(traces_mode) if traces or traces_mode else None
    st = _open_store(store, read_only=False)
    assert st is not None
    try:
        ids = [st.get_run(r)["run_id"] for r in run] if run else None
        report = sync_runs(st, tracking_uri=tracking_uri, team=team, suite=suite, every=every, traces=mode, run_ids=ids)
    finally:
        st.close()
    if json_out:
        print_json({"logged": report.logged, "failed": report.failed, "pending": report.pending,
                    "traces": report.traces})
    else:
        out = console()
        for rid, mid in report.logged.items():
            extra = f" ({report.traces[rid]} new case trace(s))" if rid in report.traces else ""
            out.print(f"logged {rid} → MLflow run {mid}{extra}")
        for rid, err in report.failed.items():
            out.print(f"[red]failed[/red] {terminal_line(rid)}: {terminal_line(err)}")
        if report.pending:
            out.print(f"{len(report.pending)} more run(s) pending: run `evalkit sync` again when MLflow is back")
        if not (report.logged or report.failed):
            out.print("nothing to sync: every finished run is in MLflow")
    return 3 if report.failed else 0


def _traces_mode(mode: str | None) -> str:
    """``--traces-mode``, else ``$EVALKIT_MLFLOW_TRACES``, else the default; a bad value is a UserError."""
    import os

    from evalkit.tracking.mlflow_traces import DEFAULT_MODE, parse_mode

    flag = "--traces-mode" if mode else "EVALKIT_MLFLOW_TRACES"
    return str(parse_mode(mode or os.environ.get("EVALKIT_MLFLOW_TRACES") or DEFAULT_MODE, flag=flag))


def export(
    run_ids: Annotated[list[str], typer.Argument(help="Evalkit run ids (or unique prefixes).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write (created).")],
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Only the DuckDB rows.")] = False,
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Export runs (DuckDB results and traces as Parquet, MLflow params/metrics/tags/artifacts) to a folder."""
    from evalkit.store.db import default_store_path, open_store
    from evalkit.tracking.export_runs import export_runs
    from evalkit.tracking.uri import bounded_http

    st = open_store(store or default_store_path(), read_only=True)  # says missing, locked or damaged
    try:
        c, uri = None, ""
        if not no_mlflow:
            from evalkit.tracking.uri import resolve_tracking_uri, sqlite_path

            uri = resolve_tracking_uri(store or default_store_path(), tracking_uri)
            db = sqlite_path(uri)
            if db is None or db.exists():
                _uri, c = _connect(store, tracking_uri)
        with bounded_http():
            manifest = export_runs(st, run_ids, out, c=c, tracking_uri=uri)
    finally:
        st.close()
    if json_out:
        print_json(manifest)
        return
    n_ml = sum(1 for r in manifest["runs"] if r["mlflow"])
    counts = ", ".join(f"{v} {k}" for k, v in manifest["counts"].items())
    console().print(f"exported {len(manifest['runs'])} run(s) to {out} ({counts}; {n_ml} with MLflow data)")


def import_(
    folder: Annotated[Path, typer.Argument(help="A folder written by `evalkit export`.")],
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Only the DuckDB rows.")] = False,
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    team: TeamOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import exported runs into this store and tracking server; runs already present are skipped."""
    from evalkit.tracking.import_runs import import_runs, read_manifest
    from evalkit.tracking.uri import bounded_http

    read_manifest(folder)  # validate before touching anything
    st = _open_store(store, read_only=False)
    assert st is not None
    try:
        c, uri = None, ""
        if not no_mlflow:
            uri, c = _connect(store, tracking_uri, must_exist=False)
        with bounded_http():
            report = import_runs(st, folder, c=c, uri=uri, team=team)
    finally:
        st.close()
    if json_out:
        print_json(report.__dict__)
        return
    out = console()
    out.print(f"store: {len(report.store_added)} run(s) added, {len(report.store_skipped)} already present")
    if not no_mlflow:
        out.print(f"MLflow: {len(report.mlflow_added) + len(report.logged)} run(s) added, "
                  f"{len(report.mlflow_skipped)} already present")


def _one_line(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Report tracking failures (server unreachable, request refused) as one line, exit code 3."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from evalkit.tracking.errors import TrackingError, as_user_error

        try:
            return fn(*args, **kwargs)
        except TrackingError as exc:
            raise as_user_error(exc) from None

    return wrapper


def register(app: typer.Typer) -> None:
    """Mount the MLflow commands on the root app."""
    app.command("leaderboard")(_one_line(leaderboard))
    app.command("compare")(_one_line(compare))
    app.command("sync")(_one_line(sync))
    app.command("export")(_one_line(export))
    app.command("import")(_one_line(import_))
