"""The Python entry point: :func:`evaluate`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import polars as pl

from evalkit.datasets import coerce_cases, load_dataset
from evalkit.errors import UserError
from evalkit.schema import Case, RunSummary
from evalkit.scorers.registry import BoundScorer, build_scorer
from evalkit.session import RunPlan, execute, read_frames
from evalkit.store.db import Store, open_store
from evalkit.suite import Suite, load_suite
from evalkit.targets import build_target


@dataclass
class EvalResult:
    """A finished run: its id, summary and per-case scores."""

    run_id: str
    summary: RunSummary
    scores: pl.DataFrame
    cases: pl.DataFrame
    store_path: Path | None

    @property
    def metrics(self) -> dict[str, float]:
        return self.summary.metrics()

    def wide(self) -> pl.DataFrame:
        """One row per case and repeat, one column per scorer value."""
        if self.scores.height == 0:
            return self.cases
        piv = self.scores.pivot(on="name", index=["case_id", "repeat"], values="value")
        return self.cases.join(piv, on=["case_id", "repeat"], how="left")


def evaluate(
    cases_or_suite: str | Path | Suite | Iterable[Case | dict[str, Any] | str],
    *,
    target: Callable[..., Any] | str | dict[str, Any] | None = None,
    scorers: Sequence[str | dict[str, Any] | Callable[..., Any] | BoundScorer] | None = None,
    suite_name: str | None = None,
    concurrency: int | None = None,
    timeout_s: float | None = None,
    repeats: int | None = None,
    store: str | Path | Store | None = None,
    cache: bool = True,
    tracing: bool = True,
) -> EvalResult:
    """Run cases (a suite file, a dataset file, or Python objects) against a target and score them.

    ``store`` defaults to the workspace store (``.evalkit/evalkit.duckdb``); pass ``":memory:"``
    to keep nothing.
    """
    suite: Suite | None = None
    if isinstance(cases_or_suite, Suite):
        suite = cases_or_suite
    elif isinstance(cases_or_suite, str | Path) and Path(cases_or_suite).suffix in (".yaml", ".yml") and scorers is None:
        suite = load_suite(cases_or_suite, build_target_now=target is None)
    if suite is not None:
        cases = suite.cases
        tgt = build_target(target) if target is not None else suite.target
        bound = [build_scorer(s) for s in scorers] if scorers is not None else suite.scorers
        name = suite_name or suite.name
        defaults = suite.defaults
        dataset_path = suite.dataset_path
    else:
        if isinstance(cases_or_suite, str | Path):
            dataset_path = Path(cases_or_suite)
            cases = load_dataset(dataset_path)
        else:
            dataset_path = None
            cases = coerce_cases(cast("Iterable[Case | dict[str, Any] | str]", cases_or_suite))
        if target is None:
            raise UserError("evaluate() needs target= when given cases rather than a suite")
        tgt = build_target(target)
        bound = [build_scorer(s) for s in (scorers or [])]
        name = suite_name or "adhoc"
        from evalkit.suite import RunDefaults

        defaults = RunDefaults()
    if tgt is None:
        raise UserError("no target: give target= or a suite with a target")
    if not bound:
        raise UserError("no scorers: give scorers= or a suite with scorers")
    plan = RunPlan(
        suite=name, cases=cases, target=tgt, scorers=bound,
        concurrency=concurrency or defaults.concurrency, timeout_s=timeout_s or defaults.timeout_s,
        repeats=repeats or defaults.repeats, cache=cache, total=len(cases), dataset_path=dataset_path,
        config={"target": tgt.name, "scorers": [s.config | {"as": s.name} for s in bound], "models": tgt.models,
                "agent": {"name": tgt.name, "version": tgt.version},
                **({"suite": suite.raw} if suite is not None else {})},
    )
    st = store if isinstance(store, Store) else open_store(None if store is None else Path(store))
    tracer = None
    if tracing:
        tracer = _make_tracer(st)
    try:
        record = execute(plan, st, tracer=tracer, handle_signals=False)
        cases_df, scores_df = read_frames(st, record.run_id)
    finally:
        if not isinstance(store, Store):
            st.close()
    return EvalResult(record.run_id, record.summary, scores_df, cases_df, None if str(st.path) == ":memory:" else st.path)


def _make_tracer(store: Store) -> Any:
    from evalkit.tracing.setup import tracer_for_store

    return tracer_for_store(store)
