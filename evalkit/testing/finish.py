"""The end of a pytest eval session: the run joins the pipeline at finalise → gate → outputs → tracking.

Three ways in, one way out: a single process writes its buffered results to the store; an xdist
worker writes them to its shard; the xdist controller merges the shards. Then
:func:`evalkit.pipeline.finish` closes the ledger (the case items pytest selected are the plan),
gates the run with the suites' thresholds and logs it to MLflow, exactly as ``evalkit run`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.testing import shards

if TYPE_CHECKING:
    from evalkit.pipeline.finished import FinishedRun
    from evalkit.pipeline.settings import RunSettings
    from evalkit.schema import Case
    from evalkit.store.db import Store
    from evalkit.suite import Suite
    from evalkit.testing.recorder import Recorder

Key = tuple[str, int]


@dataclass
class Session:
    """What the plugin knows at the end of the session: options, the plan (selected case items), what ran."""

    store_path: Path
    explicit: dict[str, Any] = field(default_factory=dict)  # the plugin's options, as run settings
    interrupted: bool = False
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    workers: int = 1
    planned: dict[Key, Case] = field(default_factory=dict)  # case items that use the evaluate fixture
    skipped: set[Key] = field(default_factory=set)  # of them, skipped by pytest: not part of the run

    def settings(self, suites: list[Suite]) -> tuple[RunSettings, frozenset[str]]:
        """The run settings: the plugin's options, then ``EVALKIT_*``, then the (first) suite's defaults."""
        from evalkit.pipeline.settings import resolve_settings

        defaults = suites[0].defaults.model_dump() if suites else None
        if len(suites) > 1:  # several suites in one run: the strictest error budget holds
            assert defaults is not None
            defaults["max_error_rate"] = min(s.defaults.max_error_rate for s in suites)
        return resolve_settings(self.explicit, defaults)


def process_config(recorder: Recorder, session: Session) -> dict[str, Any]:
    """What one process collected, as run-row config (JSON)."""
    return {
        "runner": "pytest",
        "sources": [s.meta() for s in recorder.sources.values()],
        "duplicates": recorder.duplicates,
        "planned": sorted([list(k) for k in session.planned]),
        "skipped": sorted([list(k) for k in session.skipped]),
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


def _run_row(run_id: str, sources: list[dict[str, Any]], suites: list[Suite], planned: int, session: Session,
             settings: RunSettings) -> dict[str, Any]:
    from evalkit.datasets import file_sha256
    from evalkit.provenance import evalkit_version, git_info

    names = sorted({str(s["name"]) for s in sources}) or ["pytest"]
    datasets = sorted({str(s["dataset_path"]) for s in sources if s.get("dataset_path")})
    targets = sorted({str(s["target"]) for s in sources if s.get("target")})
    dataset = Path(datasets[0]) if len(datasets) == 1 else None
    commit, dirty = git_info(Path(sources[0]["suite_file"]).parent if sources and sources[0].get("suite_file") else None)
    config: dict[str, Any] = {"runner": "pytest", "door": "pytest", "sources": sources, "workers": session.workers,
                              "settings": settings.plan_part()}
    if len(suites) == 1 and suites[0].path is not None:
        config |= {"suite_file": str(suites[0].path), "suite": suites[0].raw}
    total = sum(len(s.cases) for s in suites) * settings.repeats
    if suites and planned < total:  # -k, --lf, deselection, skips: a subset of the suite
        config["partial"] = f"pytest subset: {planned} of {total} case runs"
    return {
        "run_id": run_id, "suite": "+".join(names), "status": "running", "started_at": session.started_at,
        "target": ", ".join(targets) or "pytest", "dataset_path": str(dataset) if dataset else None,
        "dataset_sha256": file_sha256(dataset) if dataset and dataset.is_file() else None,
        "cases_total": planned, "repeats": settings.repeats, "concurrency": session.workers,
        "git_commit": commit, "git_dirty": dirty, "evalkit_version": evalkit_version(), "config": config,
    }


def _conclude(store: Store, run_id: str, suites: list[Suite], session: Session, settings: RunSettings,
              notes: list[str], name: str, planned: int) -> FinishedRun:
    from evalkit.pipeline.plan import find_baseline, plan_thresholds
    from evalkit.pipeline.run import finish
    from evalkit.runner import RunOutcome

    thresholds = [t for s in suites for t in plan_thresholds(s, settings)]
    baseline_id, baseline_notes = find_baseline(store, settings, name, run_id)
    outcome = RunOutcome(status="interrupted" if session.interrupted else "completed")
    return finish(store, run_id, name, planned=planned, outcome=outcome, settings=settings, thresholds=thresholds,
                  baseline_id=baseline_id, suite_file=suites[0].path if len(suites) == 1 else None,
                  notes=[*baseline_notes, *notes])


def finish_worker(recorder: Recorder, session: Session) -> None:
    """xdist worker: write this worker's results (and a run row carrying what it collected) to its shard."""
    try:
        recorder.write({
            "run_id": recorder.run_id, "suite": "pytest-shard", "status": "shard", "started_at": recorder.started_at,
            "cases_total": len(recorder.results), "config": process_config(recorder, session),
        })
    finally:
        recorder.close()


def finish_single(recorder: Recorder, session: Session) -> FinishedRun:
    """One process: the run row and every result go straight to the workspace store; unrun items are cancelled."""
    from evalkit.pipeline.finalise import cancel_unstarted

    sources, dupes = _merge_configs([process_config(recorder, session)])
    try:
        suites = [s.suite for s in recorder.sources.values() if s.suite is not None]
        settings, _ = session.settings(suites)
        planned = {k: c for k, c in session.planned.items() if k not in session.skipped}
        row = _run_row(recorder.run_id, sources, suites, len(planned), session, settings)
        store = recorder.write(row)
        scorers = sorted({sc.name for s in suites for sc in s.scorers})
        cancel_unstarted(store, recorder.run_id, [(c, r) for (_, r), c in planned.items()], scorers,
                         "not run: the pytest session stopped before this test")
        return _conclude(store, recorder.run_id, suites, session, settings, _dupe_notes(dupes), row["suite"],
                         len(planned))
    finally:
        recorder.close()


def finish_controller(run_id: str, directory: Path, session: Session) -> FinishedRun | None:
    """xdist controller: merge the workers' shards into one run in the workspace store."""
    files = shards.shard_files(directory)
    if not files:
        return None
    from evalkit.store.db import Store

    try:
        with Store(session.store_path) as store:
            configs = shards.read_configs(store, files, run_id)
            sources, dupes = _merge_configs(configs)
            suites = _load_suites(sources)
            settings, _ = session.settings(suites)
            planned = {tuple(k) for c in configs for k in c.get("planned", [])}
            skipped = {tuple(k) for c in configs for k in c.get("skipped", [])}
            total = len(planned - skipped)
            row = _run_row(run_id, sources, suites, total, session, settings)
            store.create_run(row)
            shards.merge(store, files, run_id)
            return _conclude(store, run_id, suites, session, settings, _dupe_notes(dupes), row["suite"], total)
    finally:
        shards.remove(directory)


def _dupe_notes(dupes: list[str]) -> list[str]:
    if not dupes:
        return []
    return [f"{len(dupes)} case(s) were evaluated by more than one test; the run keeps the last: "
            + "; ".join(dupes[:3]) + (" …" if len(dupes) > 3 else "")]


def render(run: FinishedRun, width: int, markup: bool) -> tuple[str, list[tuple[str, dict[str, bool]]]]:
    """The summary table (as text) and the lines under it, each with its terminal style."""
    import io

    from rich.console import Console

    from evalkit.cli.summary_view import summary_table

    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=markup, no_color=not markup, highlight=False,
            soft_wrap=False).print(summary_table(run.summary))
    g = run.gate
    lines: list[tuple[str, dict[str, bool]]] = [
        (f"evalkit run {run.run_id}: {run.summary.cases} case result(s) in {run.store_path}"
         f"  (evalkit show {run.run_id})", {}),
    ]
    lines += [(f"  {c.message}", {}) for c in g.checks]
    if g.baseline is not None:
        lines += [(f"  {c.label}: {_round(c.current)} vs baseline {_round(c.baseline)}"
                   + (" REGRESSION" if c.regression else ""), {}) for c in g.baseline.comparisons]
    lines += [(f"warning: {n}", {"yellow": True}) for n in run.notes]
    if g.passed:
        lines.append((f"evalkit gate PASSED: {g.reason}", {"green": True, "bold": True}))
    else:
        lines.append((f"evalkit gate FAILED ({g.status}): {g.reason}", {"red": True, "bold": True}))
    return buf.getvalue(), lines


def _round(v: float | None) -> str:
    return "None" if v is None else str(round(v, 4))


__all__ = ["Session", "finish_controller", "finish_single", "finish_worker", "render"]
