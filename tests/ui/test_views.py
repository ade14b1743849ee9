"""The dashboard's data: leaderboard ranks and ties, filters, trend flags, case, judge health."""

from __future__ import annotations

from typing import Any

import pytest

from evalkit.errors import UserError
from evalkit.tracking.uri import resolve_tracking_uri
from evalkit.ui import views
from tests.ui._dash import HOSTILE, Workspace


def _tracking(dash: Workspace) -> views.Tracking:
    return views.Tracking(resolve_tracking_uri(dash.store))


def _board(data: dict[str, Any], suite: str) -> list[dict[str, Any]]:
    return next(b for b in data["suites"] if b["suite"] == suite)["rows"]


def test_leaderboard_ranks_latest_run_per_agent_and_marks_ties(dash: Workspace) -> None:
    data = views.leaderboard_view(_tracking(dash))
    assert [b["suite"] for b in data["suites"]] == ["qa", "support"]  # MLflow's empty Default is left out
    rows = _board(data, "qa")
    assert [(r["agent"], r["rank"], r["tied"]) for r in rows] == [("bot@3.0", 1, False), ("bot@1.0", 2, True),
                                                                  ("bot@2.0", 2, True)]
    assert [r["run_id"] for r in rows] == [dash.runs["v3"], dash.runs["v1"], dash.runs["v2-bad"]]  # latest per agent
    assert [r["value"] for r in rows] == [1.0, 0.6, 0.3]
    assert all(r["ci_low"] <= r["value"] <= r["ci_high"] and r["complete"] for r in rows)
    assert rows[0]["branch"] == "feature/x" and rows[1]["branch"] == "main" and rows[1]["agent_version"] == "1.0"
    assert sorted(data["branches"]) == ["feature/x", "main"]
    assert _board(data, "support")[0]["agent_name"] == HOSTILE


def test_leaderboard_filters_best_pick_and_bad_input(dash: Workspace) -> None:
    t = _tracking(dash)
    main = _board(views.leaderboard_view(t, branch="main"), "qa")
    assert [r["agent"] for r in main] == ["bot@1.0", "bot@2.0"] and main[0]["rank"] == 1
    best = _board(views.leaderboard_view(t, pick="best", branch="main"), "qa")
    assert [(r["agent"], r["value"]) for r in best] == [("bot@2.0", 0.9333), ("bot@1.0", 0.6)]  # 28 of 30
    assert [b["suite"] for b in views.leaderboard_view(t, suite="support")["suites"]] == ["support"]
    assert views.leaderboard_view(t, team="nobody")["suites"] == []
    with pytest.raises(UserError, match="pick"):
        views.leaderboard_view(t, pick="worst")


def test_trend_series_flag_the_regression_with_the_gates_paired_test(dash: Workspace) -> None:
    d = views.trend_view(_tracking(dash), dash.store, suite="qa")
    assert d["metric"] == "exact_match/mean"
    series = {s["group"]: s["points"] for s in d["series"]}
    v2 = series["bot@2.0"]
    assert [p["run_id"] for p in v2] == [dash.runs["v2-good"], dash.runs["v2-bad"]]  # oldest first
    assert v2[0]["flag"] is None and v2[1]["flag"] == "regression" and v2[1]["p"] < 0.05
    assert "exact_match/pass_rate" in v2[1]["regressed"]
    assert [p["flag"] for p in series["bot@1.0"] + series["bot@3.0"]] == [None, None]  # no previous run
    assert all(p["commit"] == "" or len(p["commit"]) >= 7 for p in v2)
    only_main = views.trend_view(_tracking(dash), dash.store, suite="qa", branch="main")
    assert "bot@3.0" not in {s["group"] for s in only_main["series"]}


def test_trend_without_the_store_still_draws_points_unflagged(dash: Workspace) -> None:
    d = views.trend_view(_tracking(dash), dash.root / "missing.duckdb", suite="qa")
    assert {p["flag"] for s in d["series"] for p in s["points"]} == {None}


def test_case_runs_and_judges_views(dash: Workspace) -> None:
    with views.store_of(dash.store) as st:
        runs = views.runs_view(st)["runs"]
        assert {r["run_id"] for r in runs} == set(dash.runs.values())
        cases = views.cases_view(st, dash.runs["v2-bad"])["cases"]
        assert len(cases) == 30 and cases[0]["failed"] and not cases[-1]["failed"]  # failed first
        c = views.case_view(st, dash.runs["v2-bad"], "c29")
        assert c["output"] == "no idea" and c["expected"] == "answer 29" and c["outcome"] == "completed"
        helpful = next(s for s in c["scores"] if s["name"] == "helpful")
        assert (helpful["judge"], helpful["rationale"], helpful["passed"]) == ("helpful@2", "judged", False)
        spans = [c["strings"][sp[1]] for sp in c["trace"]["spans"]]
        assert spans[0] == "evalkit.case" and len(spans) >= 3
        with pytest.raises(UserError, match="no case"):
            views.case_view(st, dash.runs["v2-bad"], "nope")
        judges = views.judges_view(st)["judges"]
        assert [(j["judge"], j["model"], j["scores"], j["error_rate"]) for j in judges] == [
            ("helpful@2", "mock/judge", 150, 0.0)]
        assert judges[0]["verbosity_corr"] is not None and judges[0]["agreement"] is None
