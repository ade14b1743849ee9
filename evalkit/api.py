"""The Python entry point: :func:`evaluate`, the same run pipeline as ``evalkit run``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

from evalkit.pipeline.finished import FinishedRun
from evalkit.schema import Case
from evalkit.scorers.registry import BoundScorer, build_scorer
from evalkit.store.db import Store
from evalkit.suite import Suite

EvalResult = FinishedRun  # the name evaluate() has always returned


def evaluate(
    cases_or_suite: str | Path | Suite | Iterable[Case | dict[str, Any] | str],
    *,
    target: Callable[..., Any] | str | dict[str, Any] | None = None,
    scorers: Sequence[str | dict[str, Any] | Callable[..., Any] | BoundScorer] | None = None,
    suite_name: str | None = None,
    concurrency: int | None = None,
    timeout_s: float | None = None,
    repeats: int | None = None,
    thresholds: Sequence[str] | None = None,
    max_error_rate: float | None = None,
    min_judge_agreement: float | None = None,
    baseline: str | None = None,
    store: str | Path | Store | None = None,
    cache: bool | None = None,
    tracing: bool | None = None,
    mlflow: bool | None = None,
    mlflow_traces: str | None = None,
    workers: int | str | None = None,
) -> FinishedRun:
    """Run cases (a suite file, a dataset file, or Python objects) against a target, score and gate them.

    A suite file brings its target, scorers, thresholds and defaults; ``target=`` and ``scorers=``
    replace the suite's. Settings follow the CLI's rule: an argument beats its ``EVALKIT_*``
    environment variable, which beats the suite's ``defaults:``. The run is gated like
    ``evalkit run`` (see ``result.gate``) and logged to MLflow unless ``mlflow=False`` (or
    ``EVALKIT_NO_MLFLOW=1``). ``mlflow_traces`` picks the per-case MLflow traces (``all``, ``all:CAP``,
    ``failed``, ``failed:CAP``, ``sample:N``, ``none``; default ``all:1000``, env ``EVALKIT_MLFLOW_TRACES``);
    they are written in a background thread: ``result.wait_traces()`` waits for them.
    ``workers`` runs a suite file's cases in that many local processes (``"auto"``, the default: one
    below 2,000 case runs; env ``EVALKIT_WORKERS``); workers rebuild the target and scorers from the
    file, so a run whose target or scorers are given in Python stays in this process.
    ``store`` defaults to the workspace store; ``":memory:"`` keeps nothing.
    """
    from evalkit.pipeline import resolve_settings, run_suite
    from evalkit.store import reads

    suite = _suite(cases_or_suite, target, scorers, suite_name)
    settings, explicit = resolve_settings({
        "concurrency": concurrency, "timeout_s": timeout_s, "repeats": repeats, "max_error_rate": max_error_rate,
        "min_judge_agreement": min_judge_agreement,
        "thresholds": list(thresholds) if thresholds else None, "baseline": baseline, "cache": cache,
        "tracing": tracing, "mlflow": mlflow, "mlflow_traces": mlflow_traces, "workers": workers,
    }, suite.defaults.model_dump())
    st = store if isinstance(store, Store) else _open(store)
    try:
        run = run_suite(suite, settings, explicit, door="api", store=st, handle_signals=False)
        if run.cases is None or run.scores is None:
            run.cases, run.scores = reads.run_frames(st, run.run_id)
    finally:
        if not isinstance(store, Store):
            st.close()
    return run


def _open(store: str | Path | None) -> Store:
    from evalkit.store.db import open_store

    return open_store(None if store is None else Path(store))


def _suite(source: Any, target: Any, scorers: Sequence[Any] | None, name: str | None) -> Suite:
    """The suite to run: a suite file or object (target/scorers replaced when given), or ad-hoc cases."""
    from evalkit.datasets import coerce_cases, load_dataset
    from evalkit.errors import UserError
    from evalkit.suite import load_suite
    from evalkit.targets import build_target

    if isinstance(source, str | Path) and Path(source).suffix in (".yaml", ".yml"):
        source = load_suite(source, build_target_now=target is None)
    if isinstance(source, Suite):
        changes: dict[str, Any] = {}
        if target is not None:
            changes["target"] = build_target(target, source.path.parent if source.path else None)
        if scorers is not None:
            changes["scorers"] = [build_scorer(s) for s in scorers]
            changes["thresholds"] = _kept_thresholds(source.thresholds, source.scorers, changes["scorers"])
        if name:
            changes["name"] = name
        return dataclasses.replace(source, **changes) if changes else source
    if isinstance(source, str | Path):
        dataset: Path | None = Path(source)
        cases = load_dataset(Path(source))
    else:
        dataset = None
        cases = coerce_cases(cast("Iterable[Case | dict[str, Any] | str]", source))
    if target is None:
        raise UserError("evaluate() needs target= when given cases rather than a suite")
    if not cases:
        raise UserError("evaluate(): no cases to run")
    return Suite(name=name or "adhoc", cases=cases, target=build_target(target),
                 scorers=[build_scorer(s) for s in (scorers or [])], dataset_path=dataset)


def _kept_thresholds(thresholds: list[Any], old: list[BoundScorer], new: list[BoundScorer]) -> list[Any]:
    """The suite's thresholds minus those on scorers that ``scorers=`` replaced (parsed by the gate's parser)."""
    from evalkit.errors import UserError
    from evalkit.gate import parse_thresholds

    replaced = {s.name for s in old} - {s.name for s in new}

    def kept(entry: Any) -> bool:
        try:
            metrics = [t.metric for t in parse_thresholds([entry])]
        except UserError:
            return True  # the plan reports it, with its line in the suite file
        return not any(m.split("/", 1)[0] in replaced for m in metrics)

    return [t for t in thresholds if kept(t)]
