"""After the ledger closes: gate → outputs → tracking, the same for every door."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.pipeline.finished import FinishedRun
from evalkit.pipeline.settings import RunSettings
from evalkit.schema import RunSummary
from evalkit.store.db import Store

if TYPE_CHECKING:
    from evalkit.store.reads import RunFrames


def conclude(store: Store, summary: RunSummary, *, settings: RunSettings, thresholds: list[Any],
             baseline_id: str | None = None, suite_file: Path | None = None,
             resume_command: str | None = None, frames: RunFrames | None = None) -> FinishedRun:
    """Gate a finalised run, write the requested reports, log it to MLflow; returns the finished run
    (``frames``: the run's case and score frames, already read; the finished run carries them)."""
    from evalkit.gate import evaluate_gate, load_scores

    run_id = summary.run_id
    gate = evaluate_gate(
        summary, frames.scores if frames is not None else load_scores(store, run_id), thresholds, load_scores(store, baseline_id) if baseline_id else None,
        fail_on_regression=settings.fail_on_regression, min_effect=settings.min_effect,
        max_error_rate=settings.max_error_rate, baseline_run_id=baseline_id, resume_command=resume_command,
        min_judge_agreement=settings.min_judge_agreement,
    )
    store.update_run(run_id, gate=gate.model_dump(mode="json"))
    finished = FinishedRun(run_id=run_id, summary=summary, gate=gate, notes=list(summary.notes),
                           store_path=None if str(store.path) == ":memory:" else store.path,
                           resume_command=resume_command if summary.status != "completed" else None,
                           cases=frames.cases if frames is not None else None,
                           scores=frames.scores if frames is not None else None)
    write_outputs(store, finished, settings)
    if settings.mlflow:
        finished.mlflow_run_id = _log_mlflow(store, run_id, suite_file, settings.team, finished.notes)
        if finished.mlflow_run_id is not None:
            finished.trace_job = _start_traces(store, run_id, settings, finished.mlflow_run_id, finished.notes)
    return finished


def write_outputs(store: Store, run: FinishedRun, settings: RunSettings) -> None:
    """JUnit, Markdown (and ``$GITHUB_STEP_SUMMARY``), JSON and HTML, each only when asked for."""
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not (settings.junit or settings.markdown or settings.json_file or settings.html or step_summary):
        return
    from evalkit.store.reads import cases_with_scores

    cases = cases_with_scores(store, run.run_id)
    if settings.junit or settings.markdown or step_summary:
        from evalkit.ci_outputs import render_markdown, write_github_summary, write_junit, write_markdown

        if settings.junit:
            write_junit(settings.junit, run.summary, run.gate, cases)
        if settings.markdown:
            write_markdown(settings.markdown, run.summary, run.gate, cases)
        write_github_summary(render_markdown(run.summary, run.gate, cases))
    if settings.json_file:
        from evalkit.safe_text import json_dumps

        settings.json_file.write_text(json_dumps({
            "run_id": run.run_id, "summary": run.summary.model_dump(mode="json"),
            "gate": run.gate.model_dump(mode="json"), "cases": cases}, indent=2, default=str))
    if settings.html:
        from evalkit.report.html import write_report

        write_report(store, run.run_id, settings.html)


def _log_mlflow(store: Store, run_id: str, suite_file: Path | None, team: str | None, notes: list[str]) -> str | None:
    """Log the run's summary to MLflow; a failure is a note (the run is safe in the store), never a lost run."""
    from evalkit.tracking.errors import TrackingError
    from evalkit.tracking.mlflow_log import log_run

    try:
        return str(log_run(store, run_id, suite_file=suite_file, team=team))
    except TrackingError as exc:
        notes.append(f"MLflow logging failed: {exc}; the run is in the store, `evalkit sync` logs it later")
    except Exception as exc:  # never lose a finished run to a tracking bug
        notes.append(f"MLflow logging failed ({type(exc).__name__}: {exc}); the run is in the store, "
                     "`evalkit sync` logs it later")
    return None


def _start_traces(store: Store, run_id: str, settings: RunSettings, mlflow_run_id: str, notes: list[str]) -> Any:
    """Per-case MLflow traces, written in a background thread once the verdict is known; a failure is a note."""
    from evalkit.tracking.mlflow_traces import start_job

    try:
        return start_job(store, run_id, mode=settings.mlflow_traces, mlflow_run_id=mlflow_run_id, team=settings.team)
    except Exception as exc:  # reading the cases failed: the run and its MLflow run are safe
        notes.append(f"MLflow trace logging did not start ({type(exc).__name__}: {exc}); "
                     "`evalkit sync --traces` logs them later")
    return None
