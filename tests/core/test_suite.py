"""Suite files: validation with file and line, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.errors import UserError
from evalkit.suite import load_suite

GOOD = """\
name: s
dataset: cases.jsonl
target: tests.core.helpers:echo
scorers:
  - exact_match
  - contains:
      values: [echo]
"""


@pytest.fixture
def suite_dir(workspace: Path) -> Path:
    (workspace / "cases.jsonl").write_text('{"input": "a", "expected": "echo: a"}\n')
    return workspace


def write(d: Path, text: str) -> Path:
    p = d / "suite.yaml"
    p.write_text(text)
    return p


def test_good_suite_loads(suite_dir: Path) -> None:
    s = load_suite(write(suite_dir, GOOD))
    assert s.name == "s" and len(s.cases) == 1 and [x.name for x in s.scorers] == ["exact_match", "contains"]
    assert s.target is not None and s.target.name == "tests.core.helpers:echo"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (GOOD.replace("  - exact_match\n", "  - exact_matchh\n"), 5, "unknown scorer 'exact_matchh'"),
        (GOOD.replace("values: [echo]", "values: 5"), 6, "argument 'values'"),
        (GOOD + "colour: red\n", 8, "field 'colour' is not a known field"),
        (GOOD.replace("name: s\n", ""), 1, "field 'name' is required"),
        (GOOD.replace("cases.jsonl", "missing.jsonl"), 2, "dataset 'missing.jsonl' not found"),
        (GOOD.replace("cases.jsonl", "../../../etc/passwd.jsonl"), 2, "outside the workspace"),
        (GOOD.replace("tests.core.helpers:echo", "nope.module:fn"), 3, "cannot import target module"),
        (GOOD.replace("  - exact_match\n", "  - {regex: {pattern: '(('}}\n"), 5, "invalid regex"),
        (GOOD + "defaults:\n  concurrency: 0\n", 9, "concurrency"),
        ("name: [unclosed\n", 2, "invalid YAML"),
    ],
)
def test_suite_errors_name_file_and_line(suite_dir: Path, text: str, line: int, needle: str) -> None:
    p = write(suite_dir, text)
    with pytest.raises(UserError) as exc:
        load_suite(p)
    msg = exc.value.format()
    assert msg.startswith(f"{p}:{line}: "), msg
    assert needle in msg


def test_dataset_errors_point_into_the_dataset(suite_dir: Path) -> None:
    (suite_dir / "cases.jsonl").write_text('{"input": "a"}\n{"expected": 1}\n')
    with pytest.raises(UserError, match=r"cases.jsonl:2: field 'input' is required"):
        load_suite(write(suite_dir, GOOD))


def test_inline_cases_and_duplicate_scorer_names(suite_dir: Path) -> None:
    text = GOOD.replace("dataset: cases.jsonl", "dataset:\n  - input: x\n    expected: 'echo: x'\n  - input: y")
    s = load_suite(write(suite_dir, text))
    assert len(s.cases) == 2
    with pytest.raises(UserError, match="two scorers are named 'exact_match'"):
        load_suite(write(suite_dir, GOOD + "  - exact_match\n"))
