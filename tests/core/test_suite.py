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


def test_custom_judge_path_is_relative_to_the_suite_and_named_after_the_judge(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = tmp_path / "proj"
    (proj / "judges").mkdir(parents=True)
    (proj / "judges" / "polite.yaml").write_text(
        "name: polite\nversion: 3\ndescription: d\noutput: yes_no\nmodel: mock/judge-pass\nprompt: 'polite? {output}'\n")
    (proj / "cases.jsonl").write_text('{"id": "a", "input": "hi"}\n')
    (proj / "suite.yaml").write_text(
        "name: s\ndataset: cases.jsonl\ntarget: evalkit.demo.agent:answer\nscorers:\n"
        "  - judge: {judge: judges/polite.yaml}\n  - judges/polite.yaml: {as: polite_again}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the judge file is found from the suite's folder, not the working one
    suite = load_suite(proj / "suite.yaml")
    assert [s.name for s in suite.scorers] == ["polite", "polite_again"]


def test_every_mistake_is_reported_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "cases.jsonl").write_text('{"id": "a", "input": "hi"}\n')
    (tmp_path / "suite.yaml").write_text(
        "name: s\ndataset: cases.jsonl\ntarget: evalkit.demo.agent:answer\nscorers:\n"
        "  - exact_mach\n  - contains: {valuez: [a]}\n  - exact_match\n")
    with pytest.raises(UserError) as info:
        load_suite(tmp_path / "suite.yaml")
    lines = info.value.lines()
    assert len(lines) == 2
    assert lines[0].endswith("suite.yaml:5: unknown scorer 'exact_mach' (did you mean 'exact_match'? known: "
                             + lines[0].split("known: ", 1)[1])
    assert "suite.yaml:6: scorer 'contains': argument 'valuez' is not a known argument (did you mean 'values'?)" in lines[1]
    (tmp_path / "suite.yaml").write_text(
        "name: s\ndataset: cases.jsonl\ntarget: evalkit.demo.agent:answer\nscorer: [exact_match]\nrepeatz: 2\n")
    with pytest.raises(UserError) as info:
        load_suite(tmp_path / "suite.yaml")
    assert [line.split(": ", 1)[1].split(" (")[0] for line in info.value.lines()] == [
        "field 'scorer' is not a known field", "field 'repeatz' is not a known field"]  # not "'scorers' is required"


def test_a_model_target_without_credentials_is_refused_up_front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "EVALKIT_API_KEY", "EVALKIT_API_BASE", "MY_KEY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "cases.jsonl").write_text('{"id": "a", "input": "hi"}\n')
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\ndataset: cases.jsonl\ntarget:\n  model: openai/gpt-4o-mini\nscorers: [exact_match]\n")
    with pytest.raises(UserError) as info:
        load_suite(suite)
    assert info.value.line == 3 and "no credentials: set OPENAI_API_KEY" in str(info.value)
    suite.write_text("name: s\ndataset: cases.jsonl\ntarget:\n  model: openai/gpt-4o-mini\n  api_key_env: MY_KEY\n"
                     "scorers: [exact_match]\n")
    with pytest.raises(UserError, match=r"\$MY_KEY \(its api_key_env\) is not set"):
        load_suite(suite)
    monkeypatch.setenv("MY_KEY", "k-123456")
    assert load_suite(suite).target is not None
    monkeypatch.setenv("EVALKIT_API_BASE", "http://127.0.0.1:9/v1")  # a local server needs no key
    suite.write_text("name: s\ndataset: cases.jsonl\ntarget:\n  model: openai/gpt-4o-mini\nscorers: [exact_match]\n")
    assert load_suite(suite).target is not None
