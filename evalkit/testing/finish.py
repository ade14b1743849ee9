"""The end of a pytest eval session: one run in the store, its summary, the gate and MLflow.

Three ways in, one way out: a single process writes its buffered results to the store; an xdist
worker writes them to its shard; the xdist controller merges the shards. Then :func:`_conclude`
summarises the run with :func:`evalkit.session.finalise`, gates it and logs it to MLflow.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.testing import shards
from evalkit.testing.gating import Verdict, decide

if TYPE_CHECKING:
    from evalkit.schema import RunSummary
    from evalkit.store.db import Store
    from evalkit.suite import Suite
    from evalkit.testing.recorder import Recorder


@dataclass
class Settings:
    """The session's evalkit options and facts."""

    store_path: Path
    repeats: int = 1
    baseline: str | None = None
    mlflow: bool = True
    status: str = "completed"
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    workers: int = 1


@dataclass
class Outcome:
    """What the terminal summary shows."""

    run_id: str
    store_path: Path
    summary: RunSummary
    verdict: Verdict
    notes: list[str] = field(default_factory=list)


def process_config(recorder: Recorder, settings: Settings) -> dict[str, Any]:
    """What one process collected, as run-row config (JSON)."""
    return {
        "runner": "pytest",
        "repeats": settings.repeats,
        "sources": [s.meta() for s in recorder.sources.values()],
        "duplicates": recorder.duplicates,
    }


def _merge_configs(configs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    sources: dict[tuple[Any, ...], dict[str, Any]] = {}
    dupes: list[str] = []
    for cfg in configs:
        for s in cfg.get("sources", []):
            sources.setdefault((s.get("name"), s.get("suite_file"), s.get("dataset_path")), s)
        dupes += cfg.get("duplicates", [])
    return list(sources.values()), dupes


def _load_suites(sources: list[dict[str, Any]]) -> list[Suite]:
    from evalkit.suite import load_suite

    return [load_suite(s["suite_file"], build_target_now=False) for s in sources if s.get("suite_file")]


def _run_row(run_id: str, sources: list[dict[str, Any]], suites: list[Suite], total: int,
             settings: Settings) -> dict[str, Any]:
    from evalkit.datasets import file_sha256
    from evalkit.provenance import evalkit_version, git_info

    names = sorted({str(s["name"]) for s in sources}) or ["pytest"]
    datasets = sorted({str(s["dataset_path"]) for s in sources if s.get("dataset_path")})
    targets = sorted({str(s["target"]) for s in sources if s.get("target")})
    dataset = Path(datasets[0]) if len(datasets) == 1 else None
    commit, dirty = git_info(Path(sources[0]["suite_file"]).parent if sources and sources[0].get("suite_file") else None)
    config: dict[str, Any] = {"runner": "pytest", "sources": sources, "workers": settings.workers}
    if len(suites) == 1 and suites[0].path is not None:
        config |= {"suite_file": str(suites[0].path), "suite": suites[0].raw}
    return {
        "run_id": run_id, "suite": "+".join(names), "status": "running", "started_at": settings.started_at,
        "target": ", ".join(targets) or "pytest", "dataset_path": str(dataset) if dataset else None,
        "dataset_sha256": file_sha256(dataset) if dataset and dataset.is_file() else None,
        "cases_total": total, "repeats": settings.repeats, "concurrency": settings.workers,
        "git_commit": commit, "git_dirty": dirty, "evalkit_version": evalkit_version(), "config": config,
    }


def _log_mlflow(store: Store, run_id: str, suite_file: Path | None = None) -> str | None:
    """Log the run with ``evalkit.tracking.mlflow_log.log_run`` when it exists; failures become a note."""
    try:
        found = importlib.util.find_spec("evalkit.tracking.mlflow_log") is not None
    except ImportError:
        found = False
    if not found:
        return None
    try:
        log_run = importlib.import_module("evalkit.tracking.mlflow_log").log_run
        kwargs: dict[str, Any] = {}
        if suite_file is not None and "suite_file" in inspect.signature(log_run).parameters:
            kwargs["suite_file"] = suite_file
        log_run(store, run_id, **kwargs)
    except Exception as exc:
        return f"MLflow logging failed ({type(exc).__name__}: {exc})"
    return None


def _conclude(store: Store, run_id: str, suites: list[Suite], settings: Settings, notes: list[str],
              name: str) -> Outcome:
    from evalkit.session import finalise

    summary = finalise(store, run_id, name, settings.status)
    thresholds = [(str(s.path) if s.path else None, s.thresholds) for s in suites if s.thresholds]
    budget = min((s.defaults.max_error_rate for s in suites), default=0.05)
    verdict = decide(store, run_id, summary, thresholds, max_error_rate=budget, baseline=settings.baseline)
    store.update_run(run_id, gate=verdict.data)
    if settings.mlflow:
        note = _log_mlflow(store, run_id, suites[0].path if len(suites) == 1 else None)
        if note:
            notes.append(note)
    return Outcome(run_id=run_id, store_path=settings.store_path, summary=summary, verdict=verdict, notes=notes)


def finish_worker(recorder: Recorder, settings: Settings) -> None:
    """xdist worker: write this worker's results (and a run row carrying what it collected) to its shard."""
    try:
        recorder.write({
            "run_id": recorder.run_id, "suite": "pytest-shard", "status": "shard", "started_at": recorder.started_at,
            "cases_total": len(recorder.results), "config": process_config(recorder, settings),
        })
    finally:
        recorder.close()


def finish_single(recorder: Recorder, settings: Settings) -> Outcome:
    """One process: the run row and every result go straight to the workspace store."""
    cfg = process_config(recorder, settings)
    sources, dupes = _merge_configs([cfg])
    try:
        suites = [s.suite for s in recorder.sources.values() if s.suite is not None]
        row = _run_row(recorder.run_id, sources, suites, len(recorder.results), settings)
        store = recorder.write(row)
        return _conclude(store, recorder.run_id, suites, settings, _dupe_notes(dupes), row["suite"])
    finally:
        recorder.close()


def finish_controller(run_id: str, directory: Path, settings: Settings) -> Outcome | None:
    """xdist controller: merge the workers' shards into one run in the workspace store."""
    files = shards.shard_files(directory)
    if not files:
        return None
    from evalkit.store.db import Store

    try:
        with Store(settings.store_path) as store:
            configs = shards.read_configs(store, files, run_id)
            sources, dupes = _merge_configs(configs)
            suites = _load_suites(sources)
            total = sum(int(c.get("cases_total", 0)) for c in configs)
            row = _run_row(run_id, sources, suites, total, settings)
            store.create_run(row)
            shards.merge(store, files, run_id)
            return _conclude(store, run_id, suites, settings, _dupe_notes(dupes), row["suite"])
    finally:
        shards.remove(directory)


def _dupe_notes(dupes: list[str]) -> list[str]:
    if not dupes:
        return []
    return [f"{len(dupes)} case(s) were evaluated by more than one test; the run keeps the last: "
            + "; ".join(dupes[:3]) + (" …" if len(dupes) > 3 else "")]


def render(outcome: Outcome, width: int, markup: bool) -> tuple[str, list[tuple[str, dict[str, bool]]]]:
    """The summary table (as text) and the lines under it, each with its terminal style."""
    import io

    from rich.console import Console

    from evalkit.cli.summary_view import summary_table

    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=markup, no_color=not markup, highlight=False,
            soft_wrap=False).print(summary_table(outcome.summary))
    v = outcome.verdict
    lines: list[tuple[str, dict[str, bool]]] = [
        (f"evalkit run {outcome.run_id}: {outcome.summary.cases} case result(s) in {outcome.store_path}"
         f"  (evalkit show {outcome.run_id})", {}),
    ]
    lines += [(f"  {c}", {}) for c in v.checks]
    lines += [(f"warning: {n}", {"yellow": True}) for n in outcome.notes]
    if v.passed:
        lines.append((f"evalkit gate PASSED: {v.reason}", {"green": True, "bold": True}))
    else:
        lines.append((f"evalkit gate FAILED ({v.status}): {v.reason}", {"red": True, "bold": True}))
    return buf.getvalue(), lines


__all__ = ["Outcome", "Settings", "finish_controller", "finish_single", "finish_worker", "render"]
