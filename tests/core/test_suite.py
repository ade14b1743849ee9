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


@pytest.mark.parametrize(
    ("dataset", "content", "needle"),
    [
        ("dataset: cases.jsonl", "", "dataset 'cases.jsonl' has no cases"),
        ("dataset: cases.jsonl", "\n\n", "dataset 'cases.jsonl' has no cases"),
        ("dataset: cases.csv", "input,expected\n", "dataset 'cases.csv' has no cases"),
        ("dataset: cases.yaml", "cases: []\n", "dataset 'cases.yaml' has no cases"),
        ("dataset: []", None, "dataset (an inline list) has no cases"),
    ],
)
def test_empty_dataset_names_the_dataset_line(suite_dir: Path, dataset: str, content: str | None, needle: str) -> None:
    if content is not None:
        (suite_dir / dataset.split(": ")[1]).write_text(content)
    p = write(suite_dir, GOOD.replace("dataset: cases.jsonl", dataset))
    with pytest.raises(UserError) as exc:
        load_suite(p)
    assert exc.value.format() == f"{p}:2: {needle}"


def test_imports_run_in_order_before_scorers(suite_dir: Path) -> None:
    (suite_dir / "suite_order_first.py").write_text("ORDER = ['first']\n")
    (suite_dir / "suite_order_second.py").write_text(
        "import evalkit\nfrom suite_order_first import ORDER\nORDER.append('second')\n\n"
        "@evalkit.scorer\ndef suite_order_check(case, output):\n    return ORDER == ['first', 'second']\n")
    text = GOOD.replace("scorers:\n", "imports:\n  - suite_order_first\n  - suite_order_second\nscorers:\n  - suite_order_check\n")
    s = load_suite(write(suite_dir, text), build_target_now=False)
    assert s.target is None and [x.name for x in s.scorers] == ["suite_order_check", "exact_match", "contains"]


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("suite_no_such_module", "cannot import 'suite_no_such_module': ModuleNotFoundError: No module named"),
        ("suite_raises_on_import", "cannot import 'suite_raises_on_import': RuntimeError: not configured"),
        ("suite_bad_syntax", "cannot import 'suite_bad_syntax': SyntaxError"),
        ("checks.py", "cannot import 'checks.py': ModuleNotFoundError: No module named 'checks' (write the module name: 'checks')"),
        ("lib/checks.py", "imports: 'lib/checks.py' is not a module name (write the module name: 'lib.checks')"),
        ("checks:polite", "imports: 'checks:polite' is not a module name (imports lists modules"),
    ],
)
def test_bad_import_names_suite_line_and_module(suite_dir: Path, entry: str, needle: str) -> None:
    (suite_dir / "suite_raises_on_import.py").write_text("raise RuntimeError('not configured')\n")
    (suite_dir / "suite_bad_syntax.py").write_text("def (:\n")
    text = GOOD.replace("scorers:\n", f"imports:\n  - json\n  - {entry}\nscorers:\n")
    p = write(suite_dir, text)
    with pytest.raises(UserError) as exc:
        load_suite(p, build_target_now=False)
    msg = exc.value.format()
    assert msg.startswith(f"{p}:6: ") and needle in msg, msg
    assert "\n" not in msg


def test_target_module_is_imported_before_scorers(suite_dir: Path) -> None:
    (suite_dir / "suite_agent_mod.py").write_text(
        "import evalkit\n\ndef answer(q):\n    return 'echo: ' + q\n\n"
        "@evalkit.scorer\ndef suite_agent_echoes(case, output):\n    return output.startswith('echo')\n")
    text = GOOD.replace("tests.core.helpers:echo", "suite_agent_mod:answer").replace(
        "  - exact_match\n", "  - suite_agent_echoes\n")
    s = load_suite(write(suite_dir, text))
    assert [x.name for x in s.scorers] == ["suite_agent_echoes", "contains"]
