"""Plan a run: which case × repeats, under which settings and gate, continuing which stored run.

:func:`make_plan` validates everything (thresholds, shard, limit, resume, baseline) and touches
nothing stored; :func:`start_run` is the first write: it creates the run's row, or clears what a
continued run will redo and returns what it keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from evalkit.errors import UserError
from evalkit.pipeline.settings import PLAN_KEYS, RunSettings
from evalkit.redact import redact_value
from evalkit.schema import Case
from evalkit.store.db import Store
from evalkit.suite import RANKABLE, Suite

Door = Literal["cli", "pytest", "api", "merge"]
_FLAGS = {"repeats": "--repeat", "timeout_s": "--timeout", "thresholds": "--threshold"}


@dataclass
class Plan:
    """A validated run: the cases, the settings in force and the gate's conditions."""

    run_id: str
    suite: Suite
    settings: RunSettings
    cases: Sequence[Case]
    thresholds: list[Any]
    door: Door
    baseline_id: str | None = None
    mode: Literal["new", "resume", "retry_errors"] = "new"
    skip: set[tuple[str, int]] = field(default_factory=set)  # case × repeats already done (a continued run)
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # told to the user with the run's result
    workers: int | None = 1  # local worker processes (1: in this process), or Ray workers (None: the cluster's CPUs)

    @property
    def planned(self) -> int:
        return len(self.cases) * self.settings.repeats

    def keys(self) -> list[tuple[Case, int]]:
        return [(c, r) for c in self.cases for r in range(self.settings.repeats)]

    def resume_command(self) -> str:
        where = str(self.suite.path) if self.suite.path is not None else "SUITE"
        return f"evalkit run {where} --resume {self.run_id}"


def make_plan(suite: Suite, settings: RunSettings, explicit: frozenset[str], store: Store | None, *,
              door: Door, config: dict[str, Any] | None = None) -> Plan:
    """Validate a run request into a :class:`Plan` (nothing stored is touched)."""
    from evalkit.llm.availability import check_suite
    from evalkit.provenance import new_run_id

    check_suite(suite)  # a provider model without litellm installed: one clear line before anything runs
    if settings.resume and settings.retry_errors:
        raise UserError("use only one of --resume and --retry-errors")
    if settings.fail_on_regression and not settings.baseline:
        raise UserError("--fail-on-regression needs --baseline")
    run_id, mode = new_run_id(), "new"
    previous = _continued_run(suite, settings, store)
    if previous is not None:
        run_id, mode = previous["run_id"], "resume" if settings.resume else "retry_errors"
        settings = _inherit(settings, explicit, previous)
    thresholds = plan_thresholds(suite, settings)
    cases = _select(suite, settings)
    from evalkit.batch.worker_count import plan_workers

    workers = plan_workers(suite, settings, len(cases) * settings.repeats, door)
    baseline_id, notes = find_baseline(store, settings, suite.name, run_id)
    partial = partial_reason(settings)
    if settings.shard and mode == "new":
        notes.append(f"{partial}: its gate covers this slice only; `evalkit merge` gates the whole run")
    target = suite.target
    return Plan(
        run_id=run_id, suite=suite, settings=settings, cases=cases, thresholds=thresholds, door=door,
        baseline_id=baseline_id, mode=mode, notes=notes, workers=workers,  # type: ignore[arg-type]
        config={
            **(config or {}),
            "door": door,
            "suite_file": str(suite.path) if suite.path else None,
            "suite": suite.raw or None,
            "target": target.name if target else None,
            "models": target.models if target else [],
            "agent": {"name": target.name if target else None, "version": target.version if target else None},
            "scorers": [s.config | {"as": s.name} for s in suite.scorers],
            "engine": settings.engine,
            "workers": workers,
            "settings": settings.plan_part(),
            "partial": partial,
            "primary": primary_metric(suite, thresholds),
        },
    )


def primary_metric(suite: Suite, thresholds: list[Any]) -> str:
    """The metric the run is ranked by: the suite's ``primary:``, else its first threshold on a scorer's
    mean or pass rate, else its first scorer's mean."""
    if suite.primary:
        return suite.primary
    names = {s.name for s in suite.scorers}
    for t in thresholds:
        scorer, _, part = t.metric.rpartition("/")
        if scorer in names and part in RANKABLE:
            return str(t.metric)
    return f"{suite.scorers[0].name}/mean"


def find_baseline(store: Store | None, settings: RunSettings, suite: str, run_id: str) -> tuple[str | None, list[str]]:
    """The baseline run id ``--baseline`` names, and notices: on a first build a keyword baseline that finds
    no run is a notice (the regression check is skipped) unless ``require_baseline``."""
    if not settings.baseline:
        return None, []
    if store is None:
        raise UserError("--baseline needs a store to find the baseline run in")
    from evalkit.gate import NoBaseline, resolve_baseline

    try:
        return resolve_baseline(store, settings.baseline, suite=suite, exclude_run_id=run_id), []
    except NoBaseline as exc:
        if settings.require_baseline:
            raise
        return None, [f"{exc.message.split(';')[0]}: the regression check is skipped, thresholds still gate "
                      "(--require-baseline makes this an error)"]


def partial_reason(settings: RunSettings) -> str | None:
    """Why a run covers only part of its suite (a shard, a --limit), else None: partial runs are not ranked."""
    if settings.shard:
        return f"shard {settings.shard}"
    if settings.limit:
        return f"first {settings.limit} cases (--limit)"
    return None


def _continued_run(suite: Suite, settings: RunSettings, store: Store | None) -> dict[str, Any] | None:
    spec = settings.resume or settings.retry_errors
    if spec is None:
        return None
    if store is None:
        raise UserError("--resume and --retry-errors need a store holding the run")
    from evalkit.batch.resume import check_same_suite, latest_unfinished

    if settings.resume == "auto":
        found = latest_unfinished(store, suite.name)
        if found is None:
            return None  # nothing to resume: a fresh run
        spec = found
    run = store.get_run(spec)
    check_same_suite(run, suite)
    return run  # a completed run resumes to itself: nothing is run again, the verdict is the same


def _inherit(settings: RunSettings, explicit: frozenset[str], run: dict[str, Any]) -> RunSettings:
    """A continued run keeps its plan: the stored settings win, and a flag that contradicts them is bad input."""
    stored: dict[str, Any] = dict((run.get("config") or {}).get("settings") or {})
    if not stored:  # a run stored before settings were: at least its repeats are known
        stored = {"repeats": int(run.get("repeats") or 1)}
    current = settings.plan_part()
    for key in PLAN_KEYS:
        if key in stored and key in explicit and current.get(key) != stored[key]:
            flag = _FLAGS.get(key, "--" + key.replace("_", "-"))
            raise UserError(f"{flag} {current.get(key)!r} conflicts with run {run['run_id']}, planned with "
                            f"{stored[key]!r}; drop the flag to continue the run as planned, or start a new run")
    return settings.model_copy(update={k: v for k, v in stored.items() if k in PLAN_KEYS})


def plan_thresholds(suite: Suite, settings: RunSettings) -> list[Any]:
    """The suite's thresholds and the extra ones of ``settings``, parsed and checked against the scorers."""
    from evalkit.gate import known_metric_names, parse_thresholds, validate_metric_names
    from evalkit.yaml_lines import line_of

    mode = "lower_bound" if settings.lower_bound else None
    known = known_metric_names([s.name for s in suite.scorers],
                               judges=[s.name for s in suite.scorers if getattr(s.fn, "judge_name", None)])
    source = str(suite.path) if suite.path else "thresholds"
    out: list[Any] = []
    for i, item in enumerate(suite.thresholds):
        try:
            parsed = parse_thresholds([item], source=source, mode=mode)
            validate_metric_names(parsed, known, source=source)
        except UserError as exc:  # point at the threshold's own line
            raise UserError(exc.message, file=exc.file, line=exc.line or line_of(suite.lines, ("thresholds", i))) from None
        out += parsed
    extra = parse_thresholds(settings.thresholds, source="--threshold", mode=mode)
    validate_metric_names(extra, known, source="--threshold")
    return out + extra


def _select(suite: Suite, settings: RunSettings) -> Sequence[Case]:
    from evalkit.batch.sharding import parse_shard, select_shard

    cases: Sequence[Case] = suite.cases
    if settings.shard:
        cases = list(select_shard(cases, *parse_shard(settings.shard)))
    if settings.limit:
        cases = list(cases[: settings.limit])
    if not cases:
        where = f"dataset {suite.dataset_path}" if suite.dataset_path else "the suite's dataset"
        why = f" (--shard {settings.shard} selects none)" if settings.shard and suite.cases else ""
        raise UserError(f"no cases to run: {where} has no cases{why}", file=suite.path)
    return cases


def start_run(plan: Plan, store: Store) -> None:
    """The run's first write: a new row with its provenance, or a continued run made ready to go on."""
    from evalkit.batch.resume import prepare_resume, prepare_retry_errors

    if plan.mode == "resume":
        plan.skip = prepare_resume(store, plan.run_id)
        store.update_run(plan.run_id, status="running", ended_at=None)
        return
    if plan.mode == "retry_errors":
        plan.skip, _ = prepare_retry_errors(store, plan.run_id)
        store.update_run(plan.run_id, status="running", ended_at=None)
        return
    from evalkit.datasets import file_sha256
    from evalkit.provenance import evalkit_version, git_branch, git_info

    dataset: Path | None = plan.suite.dataset_path
    where = dataset.parent if dataset else (plan.suite.path.parent if plan.suite.path else None)
    commit, dirty = git_info(where)
    plan.config.setdefault("git_branch", git_branch(where))
    target = plan.suite.target
    store.create_run({
        "run_id": plan.run_id, "suite": plan.suite.name, "status": "running", "started_at": datetime.now(UTC),
        "target": target.name if target else None, "dataset_path": str(dataset) if dataset else None,
        "dataset_sha256": file_sha256(dataset) if dataset and dataset.is_file() else None,
        "cases_total": plan.planned, "repeats": plan.settings.repeats, "concurrency": plan.settings.concurrency,
        "git_commit": commit, "git_dirty": dirty, "evalkit_version": evalkit_version(),
        "config": redact_value(plan.config),
    })
