"""``evalkit run SUITE``: run a suite, store every case, gate the result, print the summary and run id."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, print_json

HELP = """Run a suite: every case through the target and the scorers, results stored as they finish.

Exit codes: 0 done (gate passed), 1 gate failed (a threshold missed or a significant regression),
2 bad input or usage, 3 infrastructure (errors above --max-error-rate: provider outages are not
reported as quality failures; or a run that did not account for every planned case), 130 interrupted.

Settings: a flag beats its EVALKIT_* environment variable, which beats the suite's `defaults:`.
"""

Opt = typer.Option


def run(
    suite: Annotated[Path, typer.Argument(help="Suite file (YAML).", show_default=False)],
    store: StoreOpt = None,
    concurrency: Annotated[int | None, Opt(help="Cases in flight at once [default: suite's, else 16].", min=1)] = None,
    timeout: Annotated[float | None, Opt("--timeout", help="Per-case timeout in seconds [default: 60].")] = None,
    repeat: Annotated[int | None, Opt("--repeat", help="Run every case K times (independent samples).", min=1)] = None,
    limit: Annotated[int | None, Opt(help="Run only the first N cases.", min=1)] = None,
    threshold: Annotated[list[str] | None, Opt("--threshold", metavar="METRIC>=VALUE", help="Gate, e.g. 'key_facts/pass_rate>=0.8' (append "
                                               "'@lower_bound' to gate on the CI's lower end). Repeatable.")] = None,
    lower_bound: Annotated[bool, Opt("--lower-bound", help="Gate every threshold on its 95% interval bound.")] = False,
    baseline: Annotated[str | None, Opt(help="Compare to RUN_ID, 'last', 'best' or 'last-on-branch:BRANCH'.")] = None,
    fail_on_regression: Annotated[bool, Opt("--fail-on-regression", help="Fail on a significant drop vs --baseline.")] = False,
    require_baseline: Annotated[bool, Opt("--require-baseline", help="Exit 2 when --baseline finds no earlier run "
                                          "[default: a notice; the regression check is skipped, thresholds still gate].")] = False,
    min_effect: Annotated[float, Opt("--min-effect", help="Smallest drop that counts as a regression.")] = 0.0,
    max_error_rate: Annotated[float | None, Opt("--max-error-rate", help="Above this error rate (errored case runs: target "
                                                "or scorer faults) exit 3 [default: suite's, else 0.05].")] = None,
    min_judge_agreement: Annotated[float | None, Opt("--min-judge-agreement", metavar="KAPPA", help="Fail unless every "
                                   "LLM judge is calibrated (`evalkit calibrate`) with at least this agreement "
                                   "with humans (weighted kappa on 1-5 scales, else kappa).")] = None,
    junit: Annotated[Path | None, Opt(help="Write a JUnit XML report (one testcase per case × scorer).")] = None,
    markdown: Annotated[Path | None, Opt(help="Write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY).")] = None,
    json_file: Annotated[Path | None, Opt("--json-out", help="Write summary, gate and cases as JSON to FILE.")] = None,
    html: Annotated[Path | None, Opt("--html", help="Write the self-contained HTML report to FILE.")] = None,
    resume: Annotated[str | None, Opt(help="Continue run RUN_ID (or 'auto': the suite's last unfinished run) with the "
                                      "repeats, limit, shard and thresholds it was planned with.")] = None,
    retry_errors: Annotated[str | None, Opt("--retry-errors", help="Re-run only the cases of RUN_ID that ended in an error.")] = None,
    shard: Annotated[str | None, Opt(help="Run shard I/N of the dataset (by stable case id); merge with `evalkit merge`.")] = None,
    engine: Annotated[str, Opt(help="'local' (asyncio in this process) or 'ray'.")] = "local",
    ray_address: Annotated[str | None, Opt("--ray-address", help="Ray cluster address [default: start a local Ray].")] = None,
    workers: Annotated[str | None, Opt("--workers", metavar="N|auto", help="Worker processes on this machine (1: "
                                       "in this process; with --engine ray: Ray workers) [default: auto: 1 below "
                                       "2,000 case runs; env: EVALKIT_WORKERS].")] = None,
    no_cache: Annotated[bool, Opt("--no-cache", help="Do not read or write the LLM response cache.")] = False,
    no_trace: Annotated[bool, Opt("--no-trace", help="Do not record OpenTelemetry spans.")] = False,
    no_content: Annotated[bool, Opt("--no-content", help="Do not capture prompts and completions in spans.")] = False,
    no_mlflow: Annotated[bool, Opt("--no-mlflow", help="Do not log the run to MLflow [env: EVALKIT_NO_MLFLOW=1].")] = False,
    mlflow_traces: Annotated[str | None, Opt("--mlflow-traces", metavar="MODE", help="Per-case MLflow traces: all, "
                             "all:CAP, failed, failed:CAP, sample:N or none [default: all:1000, failures first; "
                             "env: EVALKIT_MLFLOW_TRACES].")] = None,
    collect: Annotated[int | None, Opt("--collect", help="Receive remote agents' OTLP/HTTP spans on this port "
                                       "during the run (127.0.0.1).")] = None,
    team: Annotated[str | None, Opt(help="Prefix MLflow experiments with TEAM/ [env: EVALKIT_TEAM].")] = None,
    json_out: JsonOpt = False,
) -> int:
    from evalkit.pipeline import resolve_settings, run_suite
    from evalkit.suite import load_suite

    s = load_suite(suite)  # validates dataset, target and scorers before the store is touched
    for why in s.skipped:
        console(stderr=True).print(f"[yellow]optional scorer {escape(why)}[/yellow]")
    settings, explicit = resolve_settings({
        "concurrency": concurrency, "timeout_s": timeout, "repeats": repeat, "limit": limit,
        "thresholds": threshold or None, "lower_bound": lower_bound or None, "baseline": baseline,
        "fail_on_regression": fail_on_regression or None, "require_baseline": require_baseline or None, "min_effect": min_effect or None,
        "max_error_rate": max_error_rate, "min_judge_agreement": min_judge_agreement, "junit": junit, "markdown": markdown, "json_file": json_file, "html": html,
        "resume": resume, "retry_errors": retry_errors, "shard": shard, "engine": engine, "ray_address": ray_address,
        "workers": _workers_flag(workers),
        "cache": False if no_cache else None, "tracing": False if no_trace else None,
        "capture_content": False if no_content else None, "mlflow": False if no_mlflow else None,
        "collect": collect, "team": team, "mlflow_traces": _trace_mode(mlflow_traces),
    }, s.defaults.model_dump())
    _model_settings(not settings.cache, settings.concurrency)
    quiet = json_out

    def progress(plan: Any) -> Any:
        from evalkit.cli.progress import Progress
        from evalkit.store.db import default_store_path

        if not quiet:
            what = "continuing run" if plan.mode != "new" else "run"
            console().print(f"{what} [bold]{plan.run_id}[/bold] · {plan.planned} case run(s) planned · "
                            f"watch it with: evalkit status {plan.run_id}")
        return Progress(plan.planned, s.name, Path(store) if store else default_store_path(), plan.run_id,
                        done=len(plan.skip))

    from evalkit.tracking.detach import should_detach

    detach = settings.mlflow and should_detach()  # locally: MLflow is logged by a process of its own
    finished = run_suite(s, settings.model_copy(update={"mlflow": False}) if detach else settings, explicit,
                         door="cli", store=store, progress=progress)
    _print(finished, json_out)
    if detach:
        _log_detached(finished, settings, quiet)
    wait_for_traces()
    return finished.exit_code


def _log_detached(run: Any, settings: Any, quiet: bool) -> None:
    """Hand the run's MLflow logging to a detached ``evalkit sync --run`` (see :mod:`evalkit.tracking.detach`)."""
    import os

    from evalkit.store.db import default_store_path
    from evalkit.tracking.detach import log_in_background
    from evalkit.tracking.uri import workspace_dir

    where = run.store_path or default_store_path()
    try:
        log = log_in_background(run.run_id, store=where, tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or None,
                                team=settings.team, traces_mode=settings.mlflow_traces,
                                log_dir=workspace_dir(where) / "logs")
    except OSError as exc:
        console(stderr=True).print(f"[yellow]warning: MLflow logging did not start ({escape(str(exc))}); "
                                   "`evalkit sync` logs the run later[/yellow]")
        return
    if not quiet:
        console(stderr=True).print(f"[dim]MLflow: logging in the background (log: {escape(str(log))}; "
                                   "`evalkit sync` finishes it if it stops)[/dim]")


def _workers_flag(value: str | None) -> str | None:
    """``--workers`` checked here, so a bad value names the flag."""
    if value is None:
        return None
    text = value.strip().lower()
    if text != "auto" and not (text.isdigit() and 1 <= int(text) <= 1024):
        from evalkit.errors import UserError

        raise UserError(f"--workers {value!r}: expected a number of worker processes (1 to 1024) or 'auto'")
    return text


def _trace_mode(mode: str | None) -> str | None:
    """``--mlflow-traces`` checked here, so a bad value names the flag."""
    if mode is None:
        return None
    from evalkit.tracking.mlflow_traces import parse_mode

    return str(parse_mode(mode, flag="--mlflow-traces"))


def wait_for_traces() -> None:
    """Before the process exits: wait for background MLflow trace logging (a one-line note when it takes a
    while; a failure is a warning, never a different exit code)."""
    from evalkit.tracking import mlflow_traces

    if not mlflow_traces.pending():
        return
    err = console(stderr=True)
    for msg in mlflow_traces.wait_pending(lambda text: err.print(f"[dim]{escape(text)}[/dim]")):
        err.print(f"[yellow]warning: {escape(msg)}[/yellow]")


def _model_settings(no_cache: bool, concurrency: int) -> None:
    """Apply run-wide model-call settings without importing the model stack."""
    import os

    if no_cache:
        from evalkit.llm.cache import set_enabled

        set_enabled(False)
    # the per-model limiter should not cap a run below its own case concurrency
    current = int(os.environ.get("EVALKIT_MODEL_CONCURRENCY", "32"))
    if concurrency > current:
        os.environ["EVALKIT_MODEL_CONCURRENCY"] = str(concurrency)


def _print(run: Any, json_out: bool) -> None:
    if json_out:
        print_json({"run_id": run.run_id, "status": run.status, "mlflow_run_id": run.mlflow_run_id,
                    "summary": run.summary.model_dump(mode="json"), "metrics": run.summary.metrics(),
                    "gate": run.gate.model_dump(mode="json"), "notes": run.notes})
        return
    from evalkit.cli.summary_view import gate_lines, summary_table

    out = console()
    out.print(summary_table(run.summary))
    for note in run.notes:
        console(stderr=True).print(f"[yellow]warning: {escape(note)}[/yellow]")
    for line in gate_lines(run.gate):
        out.print(line)
    out.print(f"run id: [bold]{run.run_id}[/bold]   (evalkit show {run.run_id})")
    if run.resume_command:
        out.print(f"continue it with: [bold]{escape(run.resume_command)}[/bold]")


def escape(text: str) -> str:
    """Untrusted text for the console (see :func:`evalkit.safe_text.terminal`)."""
    from evalkit.safe_text import terminal

    return terminal(text)


run.__doc__ = HELP
