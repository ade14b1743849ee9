"""A CI pipeline's first build: a keyword baseline with no earlier run is a notice, not an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.helpers import run_main

SUITE = ("name: first\ndataset: cases.jsonl\ntarget: tests.core.helpers:echo\nscorers:\n  - exact_match\n"
         "thresholds: ['exact_match/pass_rate>={floor}']\n")


@pytest.fixture
def suite(workspace: Path) -> Path:
    (workspace / "cases.jsonl").write_text('{"id": "a", "input": "x", "expected": "echo: x"}\n'
                                           '{"id": "b", "input": "y", "expected": "z"}\n')
    return workspace / "suite.yaml"


def test_no_baseline_on_a_first_build_skips_only_the_regression_check(
        suite: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    base = ["run", str(suite), "--no-mlflow", "--no-trace", "--baseline", "last-on-branch:main", "--fail-on-regression"]
    suite.write_text(SUITE.format(floor=0.4))
    code, _, err = run_main(base, capsys, monkeypatch)
    assert code == 0, err
    assert "no completed run of suite 'first'" in err and "regression check is skipped" in err
    suite.write_text(SUITE.format(floor=0.9))  # thresholds still gate
    code, _, err = run_main(base, capsys, monkeypatch)
    assert code == 1 and "regression check is skipped" in err
    code, _, err = run_main([*base, "--require-baseline"], capsys, monkeypatch)
    assert code == 2 and err.startswith("error: --baseline last-on-branch:main: no completed run")
