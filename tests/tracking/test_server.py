"""Team use: a real `mlflow server` on loopback — log, leaderboard, compare, sync, export/import."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.store.db import open_store
from evalkit.tracking import TrackingUnavailable, log_run
from evalkit.tracking.uri import client
from tests.tracking._cli import cli, cli_json
from tests.tracking._runs import make_run

pytestmark = pytest.mark.mlflow_server


def _runs(uri: str, experiment: str) -> list:
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    return [] if exp is None else list(c.search_runs([exp.experiment_id], max_results=100))


def test_log_leaderboard_compare_on_a_server(workspace: Path, mlflow_server: str) -> None:
    store = workspace / ".evalkit" / "evalkit.duckdb"
    good = make_run(store, quality=0.95, n=30, agent="alpha")
    bad = make_run(store, quality=0.2, n=30, agent="beta")
    with open_store(store) as st:
        ids = {r: log_run(st, r, tracking_uri=mlflow_server, team="search") for r in (good, bad)}
    runs = _runs(mlflow_server, "search/qa")
    assert {r.info.run_id for r in runs} == set(ids.values())
    assert not (workspace / ".evalkit" / "mlflow.db").exists()  # nothing embedded when a server is used
    run = client(mlflow_server).get_run(ids[good])
    assert run.data.tags["evalkit.team"] == "search"
    assert [a.path for a in client(mlflow_server).list_artifacts(ids[good], "results")] == [
        "results/case_results.parquet", "results/cases.json"]
    board = cli_json("leaderboard", "--tracking-uri", mlflow_server, "--team", "search", "--suite", "qa",
                     "--metric", "exact_match/pass_rate", "-f", "json")
    assert [e["run_id"] for e in board["entries"]] == [good, bad]
    assert not board["entries"][0]["tied"] and board["entries"][0]["ci_low"] is not None
    cmp = cli_json("compare", good, bad, "--tracking-uri", mlflow_server, "-f", "json")
    assert cmp["source"] == "store"  # both runs are in the local store: no server round trip
    assert {m["metric"]: m["delta"] for m in cmp["metrics"]}["exact_match/mean"] < -0.5
    assert {m["metric"]: m["verdict"] for m in cmp["metrics"]}["exact_match/pass_rate"] == "regression"
    remote = cli_json("compare", good, bad, "--tracking-uri", mlflow_server, "--store",
                      str(workspace / "elsewhere.duckdb"), "-f", "json")  # no local store: from the server
    assert remote["source"] == "mlflow" and remote["mlflow_a"] == ids[good] and remote["mlflow_b"] == ids[bad]
    em = {m["metric"]: m for m in remote["metrics"]}["exact_match/mean"]
    assert em["delta"] < -0.5 and em["a_ci"][0] <= em["a"] <= em["a_ci"][1] and em["p"] is None


def test_server_down_then_sync(workspace: Path, mlflow_server: str, dead_uri: str) -> None:
    store = workspace / ".evalkit" / "evalkit.duckdb"
    run_id = make_run(store)
    with open_store(store) as st, pytest.raises(TrackingUnavailable):
        log_run(st, run_id, tracking_uri=dead_uri, team="sync")
    for _ in range(2):  # twice: no duplicates
        cli("sync", "--tracking-uri", mlflow_server, "--team", "sync")
    runs = _runs(mlflow_server, "sync/qa")
    assert len(runs) == 1 and runs[0].data.tags["evalkit.run_id"] == run_id
    with open_store(store) as st:
        assert st.get_run(run_id)["mlflow_run_id"] == runs[0].info.run_id


def _counts(store: Path, run_ids: list[str]) -> dict[str, int]:
    marks = ", ".join("?" for _ in run_ids)
    with open_store(store) as st:
        return {t: st.execute(f"SELECT count(*) FROM {t} WHERE run_id IN ({marks})", run_ids)[0][0]
                for t in ("runs", "case_results", "scores")}


def test_export_import_round_trip(workspace: Path, mlflow_server: str, mlflow_template: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    src = workspace / "src" / "evalkit.duckdb"
    ids = [make_run(src, quality=q, agent=f"agent{q}") for q in (0.4, 0.9)]
    with open_store(src) as st:
        for r in ids:
            log_run(st, r, tracking_uri=mlflow_server, team="move")
    out = workspace / "export"
    manifest = cli_json("export", *ids, "-o", str(out), "--store", str(src), "--tracking-uri", mlflow_server,
                        "--json")
    assert all(r["mlflow"] for r in manifest["runs"])
    # into another workspace with the embedded store, twice
    dst = workspace / "dst" / "evalkit.duckdb"
    dst.parent.mkdir()
    (dst.parent / "mlflow.db").write_bytes(mlflow_template.read_bytes())
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = cli_json("import", str(out), "--store", str(dst), "--json")
    second = cli_json("import", str(out), "--store", str(dst), "--json")
    assert sorted(first["store_added"]) == sorted(ids) and len(first["mlflow_added"]) == 2
    assert second["store_added"] == [] and second["mlflow_added"] == {} and len(second["mlflow_skipped"]) == 2
    assert _counts(dst, ids) == _counts(src, ids)
    local = f"sqlite:///{dst.parent / 'mlflow.db'}"
    imported = {r.data.tags["evalkit.run_id"]: r for r in _runs(local, "move/qa")}
    original = {r.data.tags["evalkit.run_id"]: r for r in _runs(mlflow_server, "move/qa")}
    assert set(imported) == set(original) == set(ids)
    for r in ids:
        a, b = original[r], imported[r]
        assert a.data.metrics == b.data.metrics and a.data.params == b.data.params
        assert a.info.start_time == b.info.start_time and a.info.status == b.info.status
        assert [d.dataset.digest for d in a.inputs.dataset_inputs] == [d.dataset.digest for d in b.inputs.dataset_inputs]
        assert [x.path for x in client(local).list_artifacts(b.info.run_id, "results")] == [
            "results/case_results.parquet", "results/cases.json"]
    with open_store(dst) as st:
        assert {st.get_run(r)["mlflow_run_id"] for r in ids} == {imported[r].info.run_id for r in ids}
    # and back to the server under another team (server to server)
    moved = cli_json("import", str(out), "--store", str(dst), "--tracking-uri", mlflow_server, "--team", "moved",
                     "--json")
    assert len(moved["mlflow_added"]) == 2 and len(_runs(mlflow_server, "moved/qa")) == 2
