"""``evalkit run SUITE``: run a suite, store every case, gate the result, print the summary and run id."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, print_json
from evalkit.errors import UserError

HELP = """Run a suite: every case through the target and the scorers, results stored as they finish.

Exit codes: 0 done (gate passed), 1 gate failed (a threshold missed or a significant regression),
2 bad input or usage, 3 infrastructure (errors above --max-error-rate: provider outages are not
reported as quality failures), 130 interrupted.
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
    min_effect: Annotated[float, Opt("--min-effect", help="Smallest drop that counts as a regression.")] = 0.0,
    max_error_rate: Annotated[float | None, Opt("--max-error-rate", help="Above this error rate exit 3 [default: 0.05].")] = None,
    junit: Annotated[Path | None, Opt(help="Write a JUnit XML report (one testcase per case × scorer).")] = None,
    markdown: Annotated[Path | None, Opt(help="Write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY).")] = None,
    json_file: Annotated[Path | None, Opt("--json-out", help="Write summary, gate and cases as JSON to FILE.")] = None,
    html: Annotated[Path | None, Opt("--html", help="Write the self-contained HTML report to FILE.")] = None,
    resume: Annotated[str | None, Opt(help="Continue run RUN_ID (or 'auto': the suite's last unfinished run).")] = None,
    retry_errors: Annotated[str | None, Opt("--retry-errors", help="Re-run only the cases of RUN_ID that ended in an error.")] = None,
    shard: Annotated[str | None, Opt(help="Run shard I/N of the dataset (by stable case id); merge with `evalkit merge`.")] = None,
    engine: Annotated[str, Opt(help="'local' (asyncio in this process) or 'ray'.")] = "local",
    ray_address: Annotated[str | None, Opt("--ray-address", help="Ray cluster address [default: start a local Ray].")] = None,
    no_cache: Annotated[bool, Opt("--no-cache", help="Do not read or write the LLM response cache.")] = False,
    no_trace: Annotated[bool, Opt("--no-trace", help="Do not record OpenTelemetry spans.")] = False,
    no_content: Annotated[bool, Opt("--no-content", help="Do not capture prompts and completions in spans.")] = False,
    no_mlflow: Annotated[bool, Opt("--no-mlflow", envvar="EVALKIT_NO_MLFLOW",
                                   help="Do not log the run to MLflow.")] = False,
    collect: Annotated[int | None, Opt("--collect", help="Receive remote agents' OTLP/HTTP spans on this port "
                                       "during the run (127.0.0.1).")] = None,
    team: Annotated[str | None, Opt(envvar="EVALKIT_TEAM", help="Prefix MLflow experiments with TEAM/.")] = None,
    json_out: JsonOpt = False,
) -> int:
    from evalkit.batch.sharding import parse_shard, select_shard
    from evalkit.cli.progress import Progress
    from evalkit.provenance import new_run_id
    from evalkit.session import RunPlan
    from evalkit.store.db import open_store
    from evalkit.suite import load_suite

    if engine not in ("local", "ray"):
        raise UserError(f"--engine must be 'local' or 'ray', not '{engine}'")
    if sum(x is not None for x in (resume, retry_errors)) > 1:
        raise UserError("use only one of --resume and --retry-errors")
    s = load_suite(suite)  # validates dataset, target and scorers before the store is touched
    assert s.target is not None
    for why in s.skipped:
        console(stderr=True).print(f"[yellow]optional scorer {why}[/yellow]")
    _model_settings(no_cache, concurrency or s.defaults.concurrency)
    thresholds = _thresholds(s, threshold, lower_bound, suite)
    if fail_on_regression and not baseline:
        raise UserError("--fail-on-regression needs --baseline")
    cases: Any = s.cases
    shard_spec = parse_shard(shard) if shard else None
    if shard_spec:
        cases = list(select_shard(cases, *shard_spec))
    if limit:
        cases = list(cases[:limit])
    repeats = repeat or s.defaults.repeats
    plan = RunPlan(
        suite=s.name, cases=cases, target=s.target, scorers=s.scorers,
        concurrency=concurrency or s.defaults.concurrency, timeout_s=timeout or s.defaults.timeout_s,
        repeats=repeats, cache=not no_cache, total=len(cases) * repeats, dataset_path=s.dataset_path,
        config={"suite_file": str(suite), "suite": s.raw, "target": s.target.name, "models": s.target.models,
                "agent": {"name": s.target.name, "version": s.target.version}, "shard": shard, "engine": engine},
    )
    st = open_store(store)
    try:
        _continue_run(st, s, plan, resume, retry_errors)
        plan.run_id = plan.run_id or new_run_id()
        # resolve the baseline before paying for the run: a wrong id is a usage error, not a wasted run
        base_id = _baseline_id(st, baseline, s.name, plan.run_id) if baseline else None
        receiver = None
        if collect is not None:
            from evalkit.tracing.receiver import start_receiver

            receiver = start_receiver(st, "127.0.0.1", collect)
        try:
            record = _execute(plan, st, s, suite, no_trace, no_content, engine, ray_address,
                              Progress(plan.total, s.name, st.path, plan.run_id, done=len(plan.skip)))
        finally:
            if receiver is not None:
                receiver.close()
        gate = _gate(st, record, thresholds, base_id, fail_on_regression, min_effect,
                     max_error_rate if max_error_rate is not None else s.defaults.max_error_rate)
        _outputs(st, record, gate, junit, markdown, json_file, html)
        mlflow_id = None if no_mlflow else _log_mlflow(st, record.run_id, suite, team)
    finally:
        st.close()
    _print(record, gate, mlflow_id, json_out)
    if record.status == "interrupted":
        return 130
    return int(gate.exit_code) if gate is not None else 0


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


def _thresholds(s: Any, cli: list[str] | None, lower_bound: bool, suite_path: Path) -> list[Any]:
    from evalkit.gate import known_metric_names, parse_thresholds, validate_metric_names
    from evalkit.yaml_lines import line_of

    mode = "lower_bound" if lower_bound else None
    known = known_metric_names([x.name for x in s.scorers])
    ths = []
    for i, item in enumerate(s.thresholds):
        try:
            parsed = parse_thresholds([item], source=str(suite_path), mode=mode)
            validate_metric_names(parsed, known, source=str(suite_path))
        except UserError as exc:  # point at the threshold's own line
            exc.line = exc.line or line_of(s.lines, ("thresholds", i))
            raise UserError(exc.message, file=exc.file, line=exc.line) from None
        ths += parsed
    cli_ths = parse_thresholds(cli or [], source="--threshold", mode=mode)
    validate_metric_names(cli_ths, known, source="--threshold")
    return ths + cli_ths


def _continue_run(st: Any, s: Any, plan: Any, resume: str | None, retry_errors: str | None) -> None:
    from evalkit.batch.resume import check_same_suite, latest_unfinished, prepare_resume, prepare_retry_errors

    target_run = resume or retry_errors
    if target_run is None:
        return
    if resume == "auto":
        found = latest_unfinished(st, s.name)
        if found is None:
            return  # nothing to resume: a fresh run
        target_run = found
    run = st.get_run(target_run)
    check_same_suite(run, s)
    plan.run_id, plan.resume = run["run_id"], True
    if resume:
        plan.skip = prepare_resume(st, run["run_id"])
    else:
        plan.skip, _ = prepare_retry_errors(st, run["run_id"])


def _execute(plan: Any, st: Any, s: Any, suite_file: Path, no_trace: bool, no_content: bool, engine: str,
             ray_address: str | None, progress: Any) -> Any:
    from evalkit.session import execute

    try:
        if engine == "ray":
            from evalkit.batch.ray_engine import run_on_ray

            return run_on_ray(plan, st, suite_file=suite_file, overrides={}, address=ray_address, tracing=not no_trace,
                              on_progress=progress.set_totals)
        tracer = None if no_trace else _tracer(st, not no_content)
        return execute(plan, st, tracer=tracer, on_result=progress.update)
    finally:
        progress.close()


def _tracer(st: Any, capture_content: bool) -> Any:
    from evalkit.tracing.setup import tracer_for_store

    return tracer_for_store(st, capture_content=capture_content)


def _baseline_id(st: Any, spec: str, suite: str, run_id: str) -> str:
    from evalkit.gate import resolve_baseline

    return resolve_baseline(st, spec, suite=suite, exclude_run_id=run_id)


def _gate(st: Any, record: Any, thresholds: list[Any], base_id: str | None, fail_on_regression: bool,
          min_effect: float, max_error_rate: float) -> Any:
    from evalkit.gate import evaluate_gate, load_scores

    scores = load_scores(st, record.run_id)
    base = load_scores(st, base_id) if base_id else None
    gate = evaluate_gate(record.summary, scores, thresholds, base, fail_on_regression=fail_on_regression,
                         min_effect=min_effect, max_error_rate=max_error_rate, baseline_run_id=base_id)
    st.update_run(record.run_id, gate=gate.model_dump(mode="json"))
    return gate


def _outputs(st: Any, record: Any, gate: Any, junit: Path | None, markdown: Path | None, json_file: Path | None,
             html: Path | None) -> None:
    import os

    if not (junit or markdown or json_file or html or os.environ.get("GITHUB_STEP_SUMMARY")):
        return
    from evalkit.cli.show import load_run_cases

    cases = load_run_cases(st, record.run_id)
    if junit or markdown or os.environ.get("GITHUB_STEP_SUMMARY"):
        from evalkit.ci_outputs import render_markdown, write_github_summary, write_junit, write_markdown

        if junit:
            write_junit(junit, record.summary, gate, cases)
        if markdown:
            write_markdown(markdown, record.summary, gate, cases)
        write_github_summary(render_markdown(record.summary, gate, cases))
    if json_file:
        import json

        json_file.write_text(json.dumps({"run_id": record.run_id, "summary": record.summary.model_dump(mode="json"),
                                         "gate": gate.model_dump(mode="json"), "cases": cases}, indent=2, default=str))
    if html:
        from evalkit.report.html import write_report

        write_report(st, record.run_id, html)


def _log_mlflow(st: Any, run_id: str, suite_file: Path, team: str | None) -> str | None:
    from evalkit.tracking.errors import TrackingError
    from evalkit.tracking.mlflow_log import log_run

    try:
        return str(log_run(st, run_id, suite_file=suite_file, team=team))
    except TrackingError as exc:  # the run is safe in DuckDB; `evalkit sync` logs it later
        console(stderr=True).print(f"[yellow]warning: {exc}; the run is in the store, `evalkit sync` logs it later[/yellow]")
        return None
    except Exception as exc:  # never lose a finished run to a tracking bug
        console(stderr=True).print(f"[yellow]warning: MLflow logging failed ({type(exc).__name__}: {exc}); "
                                   f"results are in the store, run `evalkit sync` later[/yellow]")
        return None


def _print(record: Any, gate: Any, mlflow_id: str | None, json_out: bool) -> None:
    if json_out:
        print_json({"run_id": record.run_id, "status": record.status, "mlflow_run_id": mlflow_id,
                    "summary": record.summary.model_dump(mode="json"), "metrics": record.summary.metrics(),
                    "gate": gate.model_dump(mode="json") if gate is not None else None})
        return
    from evalkit.cli.summary_view import gate_lines, summary_table

    out = console()
    out.print(summary_table(record.summary))
    for line in gate_lines(gate):
        out.print(line)
    out.print(f"run id: [bold]{record.run_id}[/bold]   (evalkit show {record.run_id})")


run.__doc__ = HELP
