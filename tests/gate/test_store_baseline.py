"""Reading scores and resolving --baseline against a real workspace store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evalkit.errors import UserError
from evalkit.gate import compare_runs, load_scores, resolve_baseline
from evalkit.schema import CaseResult, Score
from evalkit.store import open_store
from evalkit.store.reads import SCORE_COLUMNS

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _run(store: object, run_id: str, minutes: int, verdicts: list[bool | None], **row: object) -> None:
    started = T0 + timedelta(minutes=minutes)
    store.create_run(  # type: ignore[attr-defined]
        {
            "run_id": run_id,
            "suite": "demo",
            "status": "completed",
            "started_at": started,
            "summary": {
                "scorers": [{"name": "exact", "pass_rate": sum(v is True for v in verdicts) / len(verdicts)}]
            },
            **row,
        }
    )
    results = [
        CaseResult(
            run_id=run_id,
            case_id=f"c{i}",
            started_at=started,
            ended_at=started,
            scores=[Score(name="exact", value=v, passed=v, error=None if v is not None else "judge: 500")],
        )
        for i, v in enumerate(verdicts)
    ]
    store.write_results(results)  # type: ignore[attr-defined]


def test_load_scores_and_resolve_baseline(tmp_path: Path) -> None:
    with open_store(tmp_path / "ws.duckdb") as store:
        _run(store, "run-a", 0, [True, True, True, False], config={"git_branch": "main"})
        _run(store, "run-b", 1, [True, True, False, False], config={"git_branch": "feature"})
        _run(store, "run-c", 2, [True, None, False, False])
        assert resolve_baseline(store, "last", suite="demo", exclude_run_id="run-c") == "run-b"
        assert resolve_baseline(store, "best", suite="demo") == "run-a"
        assert resolve_baseline(store, "last-on-branch:main", suite="demo") == "run-a"
        assert resolve_baseline(store, "run-b", suite="demo") == "run-b"
        with pytest.raises(UserError, match="no completed run"):
            resolve_baseline(store, "last-on-branch:release", suite="demo")
        cur, base = load_scores(store, "run-c"), load_scores(store, "run-a")
    assert cur.columns == list(SCORE_COLUMNS)
    assert cur.height == 4 and cur["value"].null_count() == 1
    comp = compare_runs(cur, base, n_resamples=100)
    pass_rate = comp.comparisons[-1]
    assert pass_rate.n_shared == 3 and pass_rate.to_fail == ["c2"]
