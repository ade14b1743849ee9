"""The leaderboard ranks by the suite's primary metric and leaves partial runs off, on both read paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.errors import UserError
from evalkit.suite import load_suite
from evalkit.tracking.leaderboard import leaderboard
from evalkit.tracking.sqlite_reader import SqliteRunReader
from evalkit.tracking.uri import client
from tests.tracking._cli import cli, cli_json

SUITE = """name: prim
dataset: cases.jsonl
target: tests.core.helpers:echo
scorers:
  - exact_match
  - contains: {values: ["echo"], as: has_echo}
{extra}"""


def _workspace(ws: Path, extra: str) -> None:
    (ws / "cases.jsonl").write_text("".join(
        json.dumps({"id": f"c{i}", "input": str(i), "expected": f"echo: {i}" if i % 2 else "other"}) + "\n"
        for i in range(8)))
    (ws / "suite.yaml").write_text(SUITE.replace("{extra}", extra))


def _run(*args: str) -> str:
    out = cli_json("run", "suite.yaml", "--no-trace", "--json", *args)
    return str(out["run_id"])


@pytest.mark.parametrize(("extra", "metric"), [
    ("primary: has_echo\n", "has_echo/mean"),  # a bare scorer name is its mean
    ("primary: exact_match/pass_rate\n", "exact_match/pass_rate"),
    ("thresholds:\n  - errors/rate<=0.5\n  - has_echo/pass_rate>=0.1\n", "has_echo/pass_rate"),  # first on a scorer
    ("", "exact_match/mean"),  # nothing declared: the first scorer's mean
])
def test_the_default_metric_is_the_suites_primary(tracked: Path, extra: str, metric: str) -> None:
    _workspace(tracked, extra)
    run_id = _run()
    board = cli_json("leaderboard", "-f", "json")  # the embedded store: the SQLite fast path
    assert board["metric"] == metric and board["entries"][0]["run_id"] == run_id
    assert board["metric_source"] == "the suite's primary metric"
    code, text = cli("leaderboard")
    assert code == 0 and f"ranked by {metric} (the suite's primary metric)" in text


def test_a_primary_that_is_no_metric_is_bad_input(workspace: Path) -> None:
    _workspace(workspace, "primary: exact_mach/mean\n")
    with pytest.raises(UserError) as err:
        load_suite(workspace / "suite.yaml")
    assert err.value.line == 7 and err.value.field == "primary"
    assert "did you mean 'exact_match/mean'" in err.value.message


def test_partial_runs_are_left_off_unless_asked(tracked: Path) -> None:
    _workspace(tracked, "primary: has_echo\n")
    whole = _run()
    shard = _run("--shard", "2/2")
    limited = _run("--limit", "1")
    board = cli_json("leaderboard", "-f", "json")
    assert [e["run_id"] for e in board["entries"]] == [whole] and board["partial_skipped"] == 2
    code, text = cli("leaderboard")
    assert code == 0 and "2 partial run(s) left out" in text
    everything = cli_json("leaderboard", "--include-partial", "-f", "json")
    assert {e["run_id"] for e in everything["entries"]} == {whole, shard, limited}
    assert everything["partial_skipped"] == 0
    # the MLflow client path (a server, or --where) agrees with the SQLite fast path
    uri = f"sqlite:///{tracked / '.evalkit' / 'mlflow.db'}"
    reader = SqliteRunReader(tracked / ".evalkit" / "mlflow.db")
    try:
        for include in (False, True):
            fast = leaderboard(reader, suite="prim", include_partial=include)  # type: ignore[arg-type]
            slow = leaderboard(client(uri), suite="prim", include_partial=include)
            assert [e.run_id for e in fast.entries] == [e.run_id for e in slow.entries]
            assert fast.partial_skipped == slow.partial_skipped == (0 if include else 2)
    finally:
        reader.close()


def test_by_agent_shows_the_agent_once(tracked: Path) -> None:
    _workspace(tracked, "")
    _run()
    code, md = cli("leaderboard", "--by", "agent", "-f", "markdown")
    assert code == 0
    head = next(line for line in md.splitlines() if line.startswith("| rank"))
    assert head.count("agent") == 1
    code, md = cli("leaderboard", "--by", "model", "-f", "markdown")
    head = next(line for line in md.splitlines() if line.startswith("| rank"))
    assert head.count("| model |") == 1 and head.count("agent") == 1
