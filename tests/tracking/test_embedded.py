"""The zero-set-up path: runs logged to the embedded SQLite store beside the DuckDB file."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import polars as pl
import pytest

from evalkit.store.db import open_store
from evalkit.tracking import TrackingUnavailable, log_run
from evalkit.tracking.metric_names import mlflow_name
from evalkit.tracking.sqlite_stats import maybe_analyze
from evalkit.tracking.uri import client
from tests.conftest import REPO
from tests.tracking._cli import cli, cli_json
from tests.tracking._runs import make_run

DEMO = REPO / "datasets" / "demo" / "suite.yaml"


def _uri(ws: Path) -> str:
    return f"sqlite:///{ws / '.evalkit' / 'mlflow.db'}"


def _mlflow_runs(uri: str, experiment: str) -> list:
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    return [] if exp is None else list(c.search_runs([exp.experiment_id], max_results=100))


def test_demo_run_is_an_mlflow_run(tracked: Path) -> None:
    out = cli_json("run", str(DEMO), "--no-trace", "--no-mlflow", "--json")
    run_id = out["run_id"]
    with open_store(tracked / ".evalkit" / "evalkit.duckdb") as st:
        mid = log_run(st, run_id, suite_file=DEMO)
        assert st.get_run(run_id)["mlflow_run_id"] == mid
        assert log_run(st, run_id) == mid  # idempotent
    c = client(_uri(tracked))
    run = c.get_run(mid)
    assert c.get_experiment(run.info.experiment_id).name == "it-support-demo"
    assert run.info.status == "FINISHED" and run.info.run_name == run_id
    for name, value in out["metrics"].items():
        places = 0.05 if name.startswith("latency_ms/") else 5e-5  # rounded: 0.1 ms, four decimals
        assert run.data.metrics[mlflow_name(name)] == pytest.approx(value, abs=places)
    assert {"key_facts/mean", "interval/key_facts/mean_low", "errors/rate", "latency_ms/p95", "cost_usd/total",
            "cases"} <= set(run.data.metrics)
    assert run.data.params["concurrency"] == "8" and run.data.params["repeats"] == "1"
    assert run.data.params["dataset_path"].endswith("cases.jsonl")
    tags = run.data.tags
    assert tags["evalkit.run_id"] == run_id and tags["evalkit.suite"] == "it-support-demo"
    assert tags["evalkit.agent"] == "it-support-agent" and tags["evalkit.agent_version"] == "1.2.0"
    assert len(tags["evalkit.dataset_sha256"]) == 64 and tags["evalkit.version"]
    if out.get("gate"):
        assert tags["evalkit.gate"] == out["gate"]["status"]
    assert [a.path for a in c.list_artifacts(mid)] == ["report.html", "results", "suite"]
    local = Path(c.download_artifacts(mid, "results/case_results.parquet", str(tracked / "dl")))
    frame = pl.read_parquet(local)
    assert frame.height == 29 and "score/key_facts" in frame.columns
    # what the MLflow UI shows: the per-case table artifact, the HTML report and a description with the verdict
    assert json.loads(tags["mlflow.loggedArtifacts"]) == [{"path": "results/cases.json", "type": "table"}]
    table = json.loads(Path(c.download_artifacts(mid, "results/cases.json", str(tracked / "dl"))).read_text())
    assert len(table["data"]) == 29 and {"case_id", "verdict", "key_facts", "output", "trace_id"} <= set(table["columns"])
    assert all(len(row) == len(table["columns"]) for row in table["data"])
    assert table["data"][0][table["columns"].index("verdict")] == "failed"  # failures first
    note = tags["mlflow.note.content"]
    assert note.startswith(f"**Gate: {tags.get('evalkit.gate', 'not gated')}**") and "| key\\_facts |" in note
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == tags["evalkit.dataset_sha256"][:36]
    assert dataset_input.dataset.source_type == "local"


def test_evalkit_run_logs_by_default(tracked: Path) -> None:
    out = cli_json("run", str(DEMO), "--no-trace", "--limit", "3", "--json")
    assert out["mlflow_run_id"]
    assert [r.info.run_id for r in _mlflow_runs(_uri(tracked), "it-support-demo")] == [out["mlflow_run_id"]]


def test_unreachable_server_then_sync_is_idempotent(tracked: Path, dead_uri: str) -> None:
    store = tracked / ".evalkit" / "evalkit.duckdb"
    ids = [make_run(store, quality=q) for q in (0.5, 0.75, 1.0)]
    with open_store(store) as st:
        t0 = time.monotonic()
        with pytest.raises(TrackingUnavailable):
            log_run(st, ids[0], tracking_uri=dead_uri)
        assert time.monotonic() - t0 < 30  # bounded, not MLflow's minutes of retries (a sanity bound)
        assert st.get_run(ids[0])["mlflow_run_id"] is None
    code, text = cli("sync", "--tracking-uri", dead_uri)
    assert code == 3 and "unreachable" in text
    assert set(cli_json("sync", "--json")["logged"]) == set(ids)
    assert cli_json("sync", "--json")["logged"] == {}
    again = cli_json("sync", "--all", "--json")["logged"]
    runs = _mlflow_runs(_uri(tracked), "qa")
    assert len(runs) == 3 and set(again.values()) == {r.info.run_id for r in runs}


def test_half_written_run_is_replaced(tracked: Path) -> None:
    store = tracked / ".evalkit" / "evalkit.duckdb"
    run_id = make_run(store)
    c = client(_uri(tracked))
    exp = c.create_experiment("qa")
    half = c.create_run(exp, tags={"evalkit.run_id": run_id}).info.run_id  # the server died mid-way
    with open_store(store) as st:
        mid = log_run(st, run_id)
    assert mid != half
    assert [r.info.run_id for r in _mlflow_runs(_uri(tracked), "qa")] == [mid]


def test_leaderboard_and_compare(tracked: Path) -> None:
    store = tracked / ".evalkit" / "evalkit.duckdb"
    a1 = make_run(store, quality=0.9, n=40, agent="alpha", version="1")
    b = make_run(store, quality=0.1, n=40, agent="beta")
    a2 = make_run(store, quality=0.85, n=40, agent="alpha", version="2")
    c = make_run(store, quality=0.6, n=40, agent="gamma", judge=False)
    cli_json("sync", "--json")
    board = cli_json("leaderboard", "--suite", "qa", "--metric", "exact_match/mean", "-f", "json")
    entries = board["entries"]
    assert [e["run_id"] for e in entries] == [a1, a2, c, b]
    assert entries[0]["rank"] == entries[1]["rank"] == 1 and entries[0]["tied"]  # overlapping intervals
    assert entries[2]["rank"] == 3 and entries[3]["rank"] == 4
    assert entries[0]["ci_low"] < entries[0]["value"] < entries[0]["ci_high"]
    assert entries[0]["error_rate"] == 0.0 and entries[0]["cost_usd"] == 0.0 and entries[0]["age"]
    assert entries[0]["errors"] == 0 and entries[0]["complete"] is True  # from the logged ledger
    by_agent = cli_json("leaderboard", "--metric", "exact_match/mean", "--by", "agent", "-f", "json")["entries"]
    # one row per agent@version, each its best run
    assert [e["group"] for e in by_agent] == ["alpha@1", "alpha@2", "gamma@1.0", "beta@1.0"]
    latest = cli_json("leaderboard", "--metric", "exact_match/mean", "--last", "2", "-f", "json")["entries"]
    assert [e["run_id"] for e in latest] == [a2, c]
    assert cli_json("leaderboard", "--since", "1d", "-f", "json")["metric"] == "exact_match/mean"
    low = cli_json("leaderboard", "--metric", "latency_ms/p95", "--top", "2", "-f", "json")
    assert low["ascending"] and len(low["entries"]) == 2
    code, md = cli("leaderboard", "--metric", "exact_match/mean", "-f", "markdown")
    assert code == 0 and md.count(f"| {a1} |") == 1
    code, csv_text = cli("leaderboard", "--metric", "exact_match/mean", "-f", "csv")
    assert pl.read_csv(io.StringIO(csv_text)).height == 4
    cmp = cli_json("compare", a1, b, "-f", "json")  # both in the local store: the gate's paired test
    assert cmp["source"] == "store"
    deltas = {m["metric"]: m for m in cmp["metrics"]}
    assert deltas["exact_match/mean"]["delta"] == pytest.approx(0.1 - 0.9)
    assert deltas["exact_match/pass_rate"]["regression"] and deltas["exact_match/pass_rate"]["p_adj"] < 0.05
    assert deltas["exact_match/pass_rate"]["n"] == 40 and deltas["exact_match/pass_rate"]["ci"][1] < 0
    assert cmp["tags"]["agent"] == {"a": "alpha@1", "b": "beta@1.0", "differs": True}
    code, text = cli("compare", a1, "no-such-run")  # not in the store: looked up in MLflow
    assert code == 2 and "not in MLflow" in text


def test_leaderboard_needs_a_store(workspace: Path) -> None:
    code, text = cli("leaderboard")
    assert code == 2 and "no MLflow store" in text


def test_analyze_runs_when_the_store_has_grown(tracked: Path) -> None:
    store = tracked / ".evalkit" / "evalkit.duckdb"
    for q in (0.2, 0.4):
        make_run(store, quality=q, n=4)
    cli_json("sync", "--json")
    uri = _uri(tracked)
    assert maybe_analyze(uri, min_runs=1)
    assert not maybe_analyze(uri, min_runs=1)  # nothing grew
    make_run(store, n=4)
    make_run(store, n=4)
    cli_json("sync", "--json")
    assert maybe_analyze(uri, min_runs=1)  # doubled


def test_export_import_between_workspaces(tracked: Path, mlflow_template: Path) -> None:
    src = tracked / ".evalkit" / "evalkit.duckdb"
    logged, unlogged = make_run(src, quality=0.7), make_run(src, quality=0.4)
    with open_store(src) as st:
        log_run(st, logged)
    out = tracked / "export"
    manifest = cli_json("export", logged, unlogged[:-1], "-o", str(out), "--json")
    assert {r["run_id"]: r["mlflow"] for r in manifest["runs"]} == {logged: True, unlogged: False}
    dst = tracked / "other" / "evalkit.duckdb"
    dst.parent.mkdir()
    (dst.parent / "mlflow.db").write_bytes(mlflow_template.read_bytes())
    only_rows = cli_json("import", str(out), "--store", str(dst), "--no-mlflow", "--json")
    assert sorted(only_rows["store_added"]) == sorted([logged, unlogged])
    with open_store(dst) as st:  # source MLflow ids are not carried over: sync links them here
        assert {st.get_run(r)["mlflow_run_id"] for r in (logged, unlogged)} == {None}
    again = cli_json("import", str(out), "--store", str(dst), "--json")
    assert again["store_added"] == [] and set(again["mlflow_added"]) == {logged} and set(again["logged"]) == {unlogged}
    assert cli_json("import", str(out), "--store", str(dst), "--json")["mlflow_added"] == {}
    before = {r.data.tags["evalkit.run_id"]: r.data.metrics for r in _mlflow_runs(_uri(tracked), "qa")}
    after = {r.data.tags["evalkit.run_id"]: r.data.metrics for r in _mlflow_runs(f"sqlite:///{dst.parent / 'mlflow.db'}", "qa")}
    assert set(after) == {logged, unlogged} and after[logged] == before[logged]
    with open_store(src) as a, open_store(dst) as b:
        for table in ("case_results", "scores"):
            q = f"SELECT count(*) FROM {table}"
            assert a.execute(q) == b.execute(q)


def test_a_judge_outage_is_errors_in_mlflow(tracked: Path) -> None:
    """All 40 judge scores errored: MLflow shows 40 judge errors and the run's error rate, not 0."""
    store = tracked / ".evalkit" / "evalkit.duckdb"
    run_id = make_run(store, n=40, judge_down=True)
    with open_store(store) as st:
        mid = log_run(st, run_id)
    c = client(_uri(tracked))
    m = c.get_run(mid).data.metrics
    assert m["helpful/errors"] == 40 and m["helpful/not_applicable"] == 0
    assert m["errors/count"] == 40 and m["errors/rate"] == pytest.approx(1.0)
    assert m["exact_match/errors"] == 0 and m["cases/planned"] == 40 and m["cases/cancelled"] == 0
    assert "helpful/mean" not in m
    local = Path(c.download_artifacts(mid, "results/case_results.parquet", str(tracked / "dl")))
    frame = pl.read_parquet(local)
    assert set(frame["outcome"]) == {"errored"} and frame["error_kind"].null_count() == 40  # the target was fine
    assert set(frame["outcome/helpful"]) == {"error"} and set(frame["error_kind/helpful"]) == {"provider"}
    assert set(frame["outcome/exact_match"]) == {"ok"} and frame["score/helpful"].null_count() == 40
