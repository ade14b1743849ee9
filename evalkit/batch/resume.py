"""Resuming a run and retrying its errors: what to skip, and what to clear first."""

from __future__ import annotations

from typing import Any

from evalkit.datasets import file_sha256
from evalkit.errors import UserError
from evalkit.store.db import Store
from evalkit.store.reads import done_keys
from evalkit.suite import Suite

UNFINISHED = ("running", "interrupted", "failed")


def latest_unfinished(store: Store, suite: str) -> str | None:
    """The newest run of ``suite`` that did not complete, if any."""
    rows = store.query(
        "SELECT run_id FROM runs WHERE suite = ? AND status IN ('running', 'interrupted', 'failed')"
        " ORDER BY started_at DESC LIMIT 1", [suite],
    )
    return rows[0]["run_id"] if rows else None


def check_same_suite(run: dict[str, Any], suite: Suite) -> None:
    """Refuse to continue a run with a different suite or a changed dataset."""
    if run["suite"] != suite.name:
        raise UserError(f"run {run['run_id']} is of suite '{run['suite']}', not '{suite.name}'")
    if suite.dataset_path is not None and run.get("dataset_sha256") and file_sha256(suite.dataset_path) != run["dataset_sha256"]:
        raise UserError(f"dataset {suite.dataset_path} changed since run {run['run_id']} started; start a new run")


def _delete_keys(store: Store, run_id: str, where_cases: str) -> None:
    """Delete case rows matching ``where_cases`` with their scores and spans, in one transaction."""
    keys = f"SELECT case_id, repeat, trace_id FROM case_results WHERE run_id = $run AND ({where_cases})"
    def delete(st: Store) -> None:
        st.execute(f"DELETE FROM spans WHERE run_id = $run AND trace_id IN (SELECT trace_id FROM ({keys}))", {"run": run_id})
        st.execute(f"DELETE FROM scores WHERE run_id = $run AND (case_id, repeat) IN (SELECT case_id, repeat FROM ({keys}))",
                   {"run": run_id})
        st.execute(f"DELETE FROM case_results WHERE run_id = $run AND ({where_cases})", {"run": run_id})
    store.atomic(delete)


def prepare_resume(store: Store, run_id: str) -> set[tuple[str, int]]:
    """Clear cancelled cases and orphan spans of a run; return the (case, repeat) keys already done."""
    _delete_keys(store, run_id, "outcome = 'cancelled'")
    # spans of cases that were in flight when the process died belong to no stored case
    store.execute(
        "DELETE FROM spans WHERE run_id = $run AND trace_id NOT IN "
        "(SELECT trace_id FROM case_results WHERE run_id = $run AND trace_id IS NOT NULL)", {"run": run_id},
    )
    return done_keys(store, run_id)


def prepare_retry_errors(store: Store, run_id: str) -> tuple[set[tuple[str, int]], int]:
    """Clear the cases of a run that errored (or were cancelled); return (keys to keep, number cleared)."""
    bad = "outcome <> 'completed'"
    n = store.execute(f"SELECT count(*) FROM case_results WHERE run_id = $run AND {bad}", {"run": run_id})[0][0]
    _delete_keys(store, run_id, bad)
    return done_keys(store, run_id), int(n)
