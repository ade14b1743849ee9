"""Pieces of the tracking package that need no MLflow store: URIs, redaction, payload, ranking, output."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evalkit.redact import MASK, Redactor
from evalkit.store.db import open_store
from evalkit.tracking.errors import TrackingUnavailable
from evalkit.tracking.leaderboard import Board, Entry, lower_is_better, parse_since, rank
from evalkit.tracking.metric_names import interval_keys, interval_of
from evalkit.tracking.payload import build_payload
from evalkit.tracking.render import FORMATS, render_board
from evalkit.tracking.uri import experiment_name, probe, resolve_tracking_uri
from tests.tracking._runs import JUDGE_SHA, make_run


def test_embedded_uri_sits_beside_the_store(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = workspace / ".evalkit" / "evalkit.duckdb"
    assert resolve_tracking_uri(store) == f"sqlite:///{workspace / '.evalkit' / 'mlflow.db'}"
    assert resolve_tracking_uri(store, "http://127.0.0.1:1") == "http://127.0.0.1:1"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:2")
    assert resolve_tracking_uri(store) == "http://127.0.0.1:2"


def test_team_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALKIT_TEAM", raising=False)
    assert experiment_name("qa") == "qa"
    assert experiment_name("qa", "search") == "search/qa"
    monkeypatch.setenv("EVALKIT_TEAM", "ranking/")
    assert experiment_name("qa") == "ranking/qa"
    assert experiment_name("qa", "") == "qa"


def test_unreachable_server_fails_fast(dead_uri: str) -> None:
    with pytest.raises(TrackingUnavailable, match="unreachable"):
        probe(dead_uri, timeout_s=2)
    with pytest.raises(TrackingUnavailable) as info:
        probe(dead_uri.replace("http://", "http://me:hunter22@"), timeout_s=2)
    assert "hunter22" not in str(info.value) and f"me:{MASK}@" in str(info.value)


def test_probe_sends_url_credentials_as_a_header() -> None:
    import base64
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen: list[tuple[str, str | None]] = []

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        probe(f"http://me:p%40ss@127.0.0.1:{server.server_address[1]}/mlflow/", timeout_s=5)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [("/mlflow/health", "Basic " + base64.b64encode(b"me:p@ss").decode())]


def test_redaction_by_name_and_by_value() -> None:
    env = {"OPENAI_API_KEY": "very-secret-1", "GH_TOKEN": "ghp_abcdef", "HOME": "/root"}
    out = Redactor(environ=env).value({"x_api_key": "anything", "url": "https://h/?k=very-secret-1", "home": "/root",
                                       "evalkit.judge.client_secret": "s"})
    assert out == {"x_api_key": MASK, "url": f"https://h/?k={MASK}", "home": "/root",
                   "evalkit.judge.client_secret": MASK}


def test_payload_has_metrics_tags_and_judges(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = workspace / ".evalkit" / "evalkit.duckdb"
    run_id = make_run(store, agent="sk-live-abcdef123")
    monkeypatch.setenv("SERVICE_TOKEN", "sk-live-abcdef123")
    with open_store(store) as st:
        run = st.get_run(run_id)
        p = build_payload(st, run, team="search")
    summary = run["summary"]
    assert {"exact_match/mean", "exact_match/pass_rate", "interval/exact_match/mean_low",
            "interval/exact_match/mean_high", "interval/exact_match/pass_rate_low", "helpful/mean", "errors/rate", "latency_ms/p50", "latency_ms/p95", "tokens/total", "cost_usd/total",
            "cases"} <= set(p.metrics)
    assert p.metrics["exact_match/mean"] == pytest.approx(summary["scorers"][0]["mean"], abs=5e-5)
    assert not any(k.endswith(("ci_low", "ci_high")) for k in p.metrics)  # bounds only in their own group
    assert all(round(v, 4) == v for k, v in p.metrics.items() if not k.startswith("cost_usd/"))  # readable
    assert p.tags["evalkit.run_id"] == run_id
    assert p.tags["evalkit.judge.helpful"] == "helpful@2"
    assert p.tags["evalkit.judge.helpful.prompt_sha256"] == JUDGE_SHA
    assert p.tags["evalkit.team"] == "search"
    assert p.params["judge_models"] == "mock/judge"
    assert {"concurrency", "repeats"} <= set(p.params)
    assert p.params["target"] == MASK and p.tags["evalkit.agent"] == MASK  # the secret never leaves
    assert len(p.tags["evalkit.dataset_sha256"]) == 64 and len(p.dataset["digest"]) <= 36


def _entry(v: float, lo: float | None, hi: float | None, run: str) -> Entry:
    return Entry(rank=0, tied=False, run_id=run, suite="qa", agent="a", value=v, ci_low=lo, ci_high=hi,
                 error_rate=0.0, cost_usd=0.01, started=datetime(2026, 1, 1, tzinfo=UTC), age="1d")


def test_ties_are_overlapping_intervals() -> None:
    rows = rank([_entry(0.9, 0.85, 0.95, "a"), _entry(0.88, 0.80, 0.92, "b"), _entry(0.7, 0.6, 0.79, "c"),
                 _entry(0.5, None, None, "d"), _entry(0.5, None, None, "e")])
    assert [(e.rank, e.tied) for e in rows] == [(1, True), (1, True), (3, False), (4, True), (4, True)]


def test_metric_conventions() -> None:
    assert interval_keys("quality/mean") == ("interval/quality/mean_low", "interval/quality/mean_high")
    assert interval_keys("quality/pass_rate") == ("interval/quality/pass_rate_low", "interval/quality/pass_rate_high")
    # runs logged before the bounds had their own group keep their intervals on the board
    assert interval_of({"quality/ci_low": 0.1, "quality/ci_high": 0.3}, "quality/mean") == (0.1, 0.3)
    assert interval_of({"interval/quality/pass_rate_low": 0.2, "interval/quality/pass_rate_high": 0.4},
                       "quality/pass_rate") == (0.2, 0.4)
    assert interval_of({}, "quality/mean") == (None, None)
    assert interval_keys("cases") is None
    assert lower_is_better("latency_ms/p95") and lower_is_better("errors/rate") and not lower_is_better("x/mean")
    assert lower_is_better("judge/errors") and lower_is_better("judge/not_applicable")
    assert lower_is_better("cases/missing") and not lower_is_better("cases/planned")
    now = datetime(2026, 3, 10, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2026, 3, 3, tzinfo=UTC)
    assert parse_since("2026-01-31") == datetime(2026, 1, 31, tzinfo=UTC)


@pytest.mark.parametrize("fmt", FORMATS)
def test_board_renders_in_every_format(fmt: str) -> None:
    board = Board(metric="quality/mean", ascending=False, by=None,
                  entries=rank([_entry(0.9, 0.85, 0.95, "run-a"), _entry(0.5, 0.4, 0.6, "run-b")]))
    text = render_board(board, fmt)
    assert "run-a" in text and "run-b" in text
    if fmt == "json":
        assert [e["rank"] for e in json.loads(text)["entries"]] == [1, 2]
    if fmt == "csv":
        assert text.splitlines()[0].startswith("rank,run,suite,agent,quality/mean")
    if fmt == "markdown":
        assert "| 1 | run-a |" in text
    if fmt == "html":
        assert "<table>" in text and "<td>run-a</td>" in text


def test_payload_recounts_a_summary_written_before_outcomes_were_typed(workspace: Path) -> None:
    store = workspace / ".evalkit" / "evalkit.duckdb"
    run_id = make_run(store, n=40, judge_down=True)
    with open_store(store) as st:
        new = build_payload(st, st.get_run(run_id)).metrics
        summary = st.get_run(run_id)["summary"]
        # what an older evalkit stored: only target failures counted as errors, no ledger
        old = {k: v for k, v in summary.items() if k not in ("planned", "completed", "cancelled", "missing", "notes")}
        old.update(errors=0, error_rate=0.0)
        for s in old["scorers"]:
            s.pop("not_applicable", None)
        old["scorers"][0]["mean_ci"] = [0.5, 0.9]
        st.update_run(run_id, summary=old)
        recounted = build_payload(st, st.get_run(run_id)).metrics
    assert new["errors/count"] == recounted["errors/count"] == 40
    assert new["errors/rate"] == recounted["errors/rate"] == pytest.approx(1.0)
    assert new["helpful/errors"] == recounted["helpful/errors"] == 40
    assert recounted["helpful/not_applicable"] == 0 and recounted["cases/cancelled"] == 0
    assert (recounted["interval/exact_match/mean_low"], recounted["interval/exact_match/mean_high"]) == (0.5, 0.9)


def test_import_of_an_export_without_outcomes(workspace: Path) -> None:
    """An export written before outcomes were typed: outcomes derived on import, as migration 2 does."""
    import polars as pl

    from evalkit.store import reads
    from evalkit.tracking.export_runs import export_store
    from evalkit.tracking.import_runs import import_store

    src = workspace / ".evalkit" / "evalkit.duckdb"
    down, fine = make_run(src, n=6, judge_down=True), make_run(src, n=6, quality=0.5)
    out = workspace / "export" / "store"
    with open_store(src) as st:
        export_store(st, [down, fine], out)
        before = {r: (reads.ledger(st, r), reads.score_frame(st, r).select("case_id", "name", "outcome", "error_kind"))
                  for r in (down, fine)}
    for table in ("case_results", "scores"):  # as an older evalkit wrote them
        path = out / f"{table}.parquet"
        frame = pl.read_parquet(path)
        assert {"outcome", "error_kind"} <= set(frame.columns)
        frame.drop("outcome", "error_kind").write_parquet(path)
    dst = workspace / "other" / "evalkit.duckdb"
    with open_store(dst) as st:
        added, skipped = import_store(st, out, [down, fine])
        assert sorted(added) == sorted([down, fine]) and skipped == []
        for r in (down, fine):
            ledger, scores = before[r]
            assert reads.ledger(st, r) == ledger
            assert reads.score_frame(st, r).select("case_id", "name", "outcome", "error_kind").equals(scores)
    assert before[down][0].errored == 6 and before[fine][0].completed == 6
