"""Close a run's ledger: record what never started as cancelled, check the books, summarise.

A run finalises ``completed`` only when completed + errored + cancelled = planned. Anything
missing (a crash, a bug, a lost write) makes it ``failed``: the gate cannot pass it, and the
message says how many case × repeats are missing and how to resume.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from evalkit.aggregate import summarise
from evalkit.calibration.judge_health import attach_judges
from evalkit.runner import RunOutcome
from evalkit.schema import Case, CaseResult, RunSummary, Score
from evalkit.store import reads
from evalkit.store.db import Store


def cancel_unstarted(store: Store, run_id: str, keys: Iterable[tuple[Case, int]], scorers: Sequence[str],
                     reason: str) -> int:
    """Store a cancelled result for each planned case × repeat that has no result yet; returns how many."""
    have = reads.done_keys(store, run_id, outcomes=("completed", "errored", "cancelled"))
    now = datetime.now(UTC)
    todo = [(c, r) for c, r in keys if (c.id, r) not in have]
    results = [
        CaseResult(run_id=run_id, case_id=c.id, repeat=r, status="cancelled", error_kind="cancelled",
                   error=f"cancelled: {reason}", started_at=now, ended_at=now, tags=c.tags,
                   scores=[Score.failure(n, "cancelled", f"not scored: {reason}") for n in scorers])
        for c, r in todo
    ]
    for i in range(0, len(results), 5000):
        batch = results[i:i + 5000]
        inputs = {c.id: c.model_dump(mode="json", include={"input", "expected", "metadata"})
                  for c, _ in todo[i:i + 5000]}
        store.write_results(batch, inputs)
    return len(results)


def finalise(store: Store, run_id: str, suite: str, *, planned: int | None, engine: RunOutcome,
             notes: Sequence[str] = (), frames: reads.RunFrames | None = None) -> RunSummary:
    """Aggregate a run from the store, decide its status from the engine and the ledger, and record both
    (``notes``: the plan's notices, kept in the summary before the engine's failures; ``frames``: the
    run's case and score frames when the caller has read them already)."""
    run = store.get_run(run_id)
    cases, scores = frames if frames is not None else reads.run_frames(store, run_id)
    ended = datetime.now(UTC)
    summary = summarise(run_id, suite, cases, scores, status=engine.status, planned=planned,
                        started_at=run["started_at"], ended_at=ended)
    summary = attach_judges(store, run_id, summary)
    notes = [*notes, *engine.failures]
    if summary.missing:
        notes.append(f"{summary.missing} of {planned} planned case × repeats have no result")
    status = "failed" if summary.missing or engine.status == "failed" else engine.status
    summary = summary.model_copy(update={"status": status, "notes": notes})
    store.update_run(run_id, status=status, ended_at=ended, summary=summary.model_dump(mode="json"))
    return summary
