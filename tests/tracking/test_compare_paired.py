"""`evalkit compare`: the gate's paired test when both runs are in the local store, MLflow's headline
metrics (each with its interval in one cell) when one is not."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.store.db import open_store
from evalkit.tracking import log_run
from evalkit.tracking.metric_names import interval_of, is_interval_metric
from evalkit.tracking.uri import client
from tests.conftest import REPO
from tests.core.helpers import run_main
from tests.tracking._cli import cli, cli_json
from tests.tracking._runs import make_run

N = 30
SUITE = "name: paired\ndataset: cases.jsonl\ntarget: {target}\nscorers:\n  - exact_match\n"


def half_right(question: str) -> str:
    """A candidate that lost the odd cases: right on case 0, 2, 4 …, wrong on 1, 3, 5 …."""
    i = int(question.split()[-1])
    return f"echo: {question}" if i % 2 == 0 else "no idea"


def _cli_run(workspace: Path, target: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    (workspace / "suite.yaml").write_text(SUITE.format(target=target))
    code, out, err = run_main(["run", str(workspace / "suite.yaml"), "--no-mlflow", "--no-trace", "--json"],
                              capsys, monkeypatch)
    assert code == 0, err
    return str(json.loads(out)["run_id"])


@pytest.fixture
def runs(workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Three runs of one deterministic suite: a baseline, the same again, and a candidate that regressed."""
    (workspace / "cases.jsonl").write_text("".join(
        json.dumps({"id": f"c{i:02d}", "input": f"question {i}", "expected": f"echo: question {i}"}) + "\n"
        for i in range(N)))
    base = _cli_run(workspace, "tests.core.helpers:echo", capsys, monkeypatch)
    same = _cli_run(workspace, "tests.core.helpers:echo", capsys, monkeypatch)
    worse = _cli_run(workspace, f"{__name__}:half_right", capsys, monkeypatch)
    return {"base": base, "same": same, "worse": worse}


def _metrics(cmp: dict) -> dict[str, dict]:
    return {m["metric"]: m for m in cmp["metrics"]}


def test_a_real_regression_is_flagged(runs: dict[str, str]) -> None:
    cmp = cli_json("compare", runs["base"], runs["worse"], "-f", "json")
    assert cmp["source"] == "store" and cmp["significance"] and cmp["mlflow_a"] is None
    assert cmp["run_a"] == runs["base"] and cmp["run_b"] == runs["worse"]
    assert "paired by case id" in cmp["method"] and "Holm-adjusted" in cmp["method"] and "alpha 0.05" in cmp["method"]
    pr = _metrics(cmp)["exact_match/pass_rate"]
    assert pr["a"] == 1.0 and pr["b"] == 0.5 and pr["delta"] == pytest.approx(-0.5) and pr["n"] == N
    assert pr["p_adj"] is not None and pr["p_adj"] < 0.05 and pr["p"] <= pr["p_adj"]
    low, high = pr["ci"]
    assert low <= pr["delta"] <= high < 0  # the interval excludes 0
    assert pr["significant"] and pr["regression"] and not pr["improvement"] and pr["verdict"] == "regression"
    mean = _metrics(cmp)["exact_match/mean"]
    assert mean["p_adj"] is None and mean["p"] < 0.05 and mean["test"] == "paired_sign_flip"  # not in the family
    run_rows = {r["name"]: r for r in cmp["run_metrics"]}
    assert run_rows["cases"] == {"name": "cases", "metric": "cases", "a": N, "b": N, "delta": 0}
    assert run_rows["error rate"]["metric"] == "errors/rate" and run_rows["error rate"]["delta"] == 0
    assert {"latency p50 (ms)", "latency p95 (ms)", "cost (USD)"} <= set(run_rows)
    assert cmp["tags"]["dataset sha256"]["differs"] is False  # same cases
    assert cmp["tags"]["agent"]["differs"] is True

    code, table = cli("compare", runs["base"][:17], runs["worse"])  # a unique prefix will do
    assert code == 0
    row = next(line for line in table.splitlines() if "exact_match/pass_rate" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[:4] == ["exact_match/pass_rate", "1.000", "0.500", "-0.500"]
    assert cells[4] == f"[{low:+.3f}, {high:+.3f}]" and cells[6] == "regression" and cells[7] == str(N)
    assert "paired by case id" in table and "bootstrap" in table
    assert not any(line.lstrip("│ ").startswith("dataset sha256") for line in table.splitlines())  # equal: not listed
    assert any(line.lstrip("│ ").startswith("agent") for line in table.splitlines())


def test_identical_runs_show_no_significant_change(runs: dict[str, str]) -> None:
    cmp = cli_json("compare", runs["base"], runs["same"], "-f", "json")
    assert cmp["metrics"]
    for m in cmp["metrics"]:
        assert m["delta"] == 0 and m["ci"] == [0.0, 0.0] and m["n"] == N
        assert not m["significant"] and not m["regression"] and not m["improvement"]
        assert m["verdict"] == "no significant change"
    assert not any(t["differs"] for t in cmp["tags"].values())
    code, md = cli("compare", runs["base"], runs["same"], "-f", "markdown")
    assert code == 0 and md.count("no significant change") == len(cmp["metrics"])
    assert "regression" not in md and "| agent |" not in md and "same suite, agent" in md


def test_every_format_renders(runs: dict[str, str]) -> None:
    code, text = cli("compare", runs["base"], runs["worse"], "-f", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["metric", "A", "B", "delta", "95% interval of delta", "p (Holm-adjusted)", "verdict", "n"]
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["exact_match/pass_rate"][6] == "regression" and by_name["cases"][1:4] == [str(N), str(N), "0"]
    code, page = cli("compare", runs["base"], runs["worse"], "-f", "html")
    assert code == 0 and "<td>regression</td>" in page and "<th>p (Holm-adjusted)</th>" in page
    assert "paired by case id" in page
    code, text = cli("compare", runs["base"], runs["worse"], "-f", "yaml")
    assert code == 2 and "--format 'yaml'" in text


def test_the_store_path_imports_no_mlflow(runs: dict[str, str], workspace: Path) -> None:
    code = ("import sys; sys.argv = ['evalkit', 'compare', sys.argv[1], sys.argv[2], '-f', 'json']\n"
            "from evalkit.cli.app import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('MLFLOW_IMPORTED' if any(m.split('.')[0] == 'mlflow' for m in sys.modules) else 'NO_MLFLOW')")
    out = subprocess.run([sys.executable, "-c", code, runs["base"], runs["worse"]], cwd=workspace,
                         capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(workspace),
                              "EVALKIT_STORE": str(workspace / ".evalkit" / "evalkit.duckdb")})
    assert out.returncode == 0, out.stderr
    body, _, verdict = out.stdout.rstrip().rpartition("\n")
    assert verdict == "NO_MLFLOW"
    assert _metrics(json.loads(body))["exact_match/pass_rate"]["regression"] is True
    assert not (workspace / ".evalkit" / "mlflow.db").exists()  # no MLflow store was needed either


def test_interval_names_in_either_spelling() -> None:
    old = {"q/ci_low": 0.1, "q/ci_high": 0.3, "q/pass_rate_ci_low": 0.4, "q/pass_rate_ci_high": 0.6}
    new = {"interval/q/mean_low": 0.1, "interval/q/mean_high": 0.3,
           "interval/q/pass_rate_low": 0.4, "interval/q/pass_rate_high": 0.6}
    for metrics in (old, new):
        assert interval_of(metrics, "q/mean") == (0.1, 0.3)
        assert interval_of(metrics, "q/pass_rate") == (0.4, 0.6)
        assert all(is_interval_metric(k) for k in metrics)
    assert interval_of({"q/ci_low": 0.1}, "q/mean") == (None, None)  # one bound is no interval
    assert not any(is_interval_metric(k) for k in ("q/mean", "q/pass_rate", "errors/rate", "latency_ms/p95"))


def _renamed(name: str) -> str:
    """An interval bound metric in the new spelling: q/ci_low -> interval/q/mean_low and so on."""
    scorer, _, bound = name.rpartition("/")
    if bound.startswith("pass_rate_ci_"):
        return f"interval/{scorer}/pass_rate_{bound.rsplit('_', 1)[1]}"
    return f"interval/{scorer}/mean_{bound.rsplit('_', 1)[1]}" if bound.startswith("ci_") else name


def test_mlflow_fallback_when_a_run_is_not_in_the_local_store(tracked: Path) -> None:
    """Runs logged to MLflow from another workspace's store: headline metrics, intervals in one cell;
    the candidate's intervals spelled the new way (``interval/<scorer>/mean_low`` …)."""
    from mlflow.entities import Metric

    elsewhere = tracked / "elsewhere" / "evalkit.duckdb"
    good = make_run(elsewhere, quality=0.9, n=20, agent="alpha")
    bad = make_run(elsewhere, quality=0.4, n=20, agent="beta")
    uri = f"sqlite:///{tracked / '.evalkit' / 'mlflow.db'}"
    with open_store(elsewhere) as st:
        log_run(st, good, tracking_uri=uri)
        mid_bad = log_run(st, bad, tracking_uri=uri)
    c = client(uri)
    logged = c.get_run(mid_bad)
    renamed = "renamed-" + bad
    mid_new = c.create_run(logged.info.experiment_id, tags={**logged.data.tags, "evalkit.run_id": renamed}).info.run_id
    c.log_batch(mid_new, metrics=[Metric(_renamed(k), v, 0, 0) for k, v in logged.data.metrics.items()])
    assert "interval/exact_match/mean_low" in c.get_run(mid_new).data.metrics
    assert not any(k.endswith("ci_low") for k in c.get_run(mid_new).data.metrics)

    make_run(tracked / ".evalkit" / "evalkit.duckdb", quality=0.5, n=4)  # a local store without these runs
    old = cli_json("compare", good, bad, "-f", "json")
    cmp = cli_json("compare", good, renamed, "-f", "json")
    assert cmp["source"] == "mlflow" and not cmp["significance"] and cmp["mlflow_b"] == mid_new
    assert "significance needs both runs in the local store" in cmp["method"]
    assert [m["metric"] for m in cmp["metrics"]] == [
        "exact_match/mean", "exact_match/pass_rate", "helpful/mean", "helpful/pass_rate"]
    assert cmp["metrics"] == old["metrics"]  # either spelling, the same intervals
    em = _metrics(cmp)["exact_match/mean"]
    assert em["delta"] == pytest.approx(0.4 - 0.9) and em["p"] is None and em["verdict"] is None
    for m in cmp["metrics"]:
        assert m["a_ci"][0] <= m["a"] <= m["a_ci"][1] and m["b_ci"][0] <= m["b"] <= m["b_ci"][1]
    assert [r["metric"] for r in cmp["run_metrics"]] == [
        "errors/rate", "latency_ms/p50", "latency_ms/p95", "cost_usd/total", "cases"]
    assert cmp["tags"]["agent"] == {"a": "alpha@1.0", "b": "beta@1.0", "differs": True}

    for b in (bad, renamed):
        code, table = cli("compare", good, b)
        assert code == 0
        assert "ci_low" not in table and "ci_high" not in table and "interval/" not in table and "/errors" not in table
        row = next(line for line in table.splitlines() if "exact_match/mean" in line)
        cells = [x.strip() for x in row.strip("│ ").split("│")]
        lo, hi = em["a_ci"]
        assert cells[:3] == ["exact_match/mean", f"{em['a']:.3f}", f"[{lo:.3f}, {hi:.3f}]"]
        assert cells[4] == f"[{em['b_ci'][0]:.3f}, {em['b_ci'][1]:.3f}]" and cells[5] == f"{em['delta']:+.3f}"
        assert "significance needs both runs in the local store" in table
    code, text = cli("compare", good, renamed, "-f", "csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["metric", "A", "A interval", "B", "B interval", "delta", "relative"]
    assert len(rows) == 1 + 4 + 5 + 1  # scorer metrics, run totals, the agent tag: no interval bound rows
    assert not any(is_interval_metric(r[0]) for r in rows[1:])
    code, text = cli("compare", good, "no-such-run")
    assert code == 2 and "not in MLflow" in text
