"""The bad-input corpus: every file is rejected with one clear line, exit 2, and the store unchanged."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalkit.cli.app import main
from evalkit.datasets import load_dataset
from evalkit.errors import UserError
from tests.conftest import REPO

pytestmark = pytest.mark.reliability
BAD = REPO / "tests" / "data" / "bad"

# file -> (line or None, text the message must contain)
EXPECTED: dict[str, tuple[int | None, str]] = {
    "bad_concurrency.suite.yaml": (7, "field 'defaults.concurrency'"),
    "bad_indent.yaml": (3, "invalid YAML"),
    "bad_json.jsonl": (2, "invalid JSON"),
    "bad_json_cell.csv": (3, "field 'expected_tool_calls' must be JSON"),
    "bad_message_role.jsonl": (2, "field 'input'"),
    "bad_scorer_arg_type.suite.yaml": (6, "argument 'max_words'"),
    "bad_threshold_syntax.suite.yaml": (7, "cannot parse threshold"),
    "bad_tool_call.jsonl": (2, "field 'expected_tool_calls.0.name' is required"),
    "binary.jsonl": (2, "binary data"),
    "dataset_outside_workspace.suite.yaml": (2, "outside the workspace"),
    "duplicate_ids.jsonl": (3, "duplicate case id 'a' (first at line 1)"),
    "empty.suite.yaml": (1, "a suite file must be a mapping"),
    "empty_scorers.suite.yaml": (4, "field 'scorers'"),
    "invalid_json_schema.suite.yaml": (6, "invalid JSON schema"),
    "invalid_regex.suite.yaml": (6, "invalid regex"),
    "missing_dataset.suite.yaml": (2, "dataset 'nowhere.jsonl' not found"),
    "missing_input.csv": (3, "field 'input' is required"),
    "missing_input.jsonl": (2, "field 'input' is required"),
    "missing_input.yaml": (3, "field 'input' is required"),
    "missing_name.suite.yaml": (1, "field 'name' is required"),
    "missing_target_module.suite.yaml": (3, "cannot import target module 'no_such_pkg.agent'"),
    "non_utf8.jsonl": (2, "not valid UTF-8"),
    "not_a_list.yaml": (1, "must be a list of cases"),
    "not_a_mapping.suite.yaml": (1, "a suite file must be a mapping"),
    "not_an_object.jsonl": (2, "a case must be a mapping"),
    "not_parquet.parquet": (None, "cannot read Parquet"),
    "python_tag.suite.yaml": (1, "could not determine a constructor"),
    "python_tag.yaml": (1, "could not determine a constructor"),
    "target_not_callable.suite.yaml": (3, "is not callable"),
    "trailing_garbage.jsonl": (2, "invalid JSON: Extra data"),
    "unknown_field.jsonl": (2, "field 'expceted' is not a known field"),
    "unknown_format.txt": (None, "unknown dataset format '.txt'"),
    "unknown_judge.suite.yaml": (6, "unknown judge 'no_such_judge'"),
    "unknown_scorer.suite.yaml": (5, "unknown scorer 'exact_mtach'"),
    "unknown_scorer_arg.suite.yaml": (6, "argument 'colour' is not a known argument"),
    "unknown_threshold_metric.suite.yaml": (7, "unknown metric 'corectness/mean'"),
    "unknown_top_level_key.suite.yaml": (6, "field 'scorerz' is not a known field (did you mean 'scorers'?"),
    "misspelled_key.suite.yaml": (4, "field 'scorer' is not a known field (did you mean 'scorers'?"),
    "ragged_row.csv": (4, "row has 4 fields, the header has 3"),
    "wrong_type_input.jsonl": (2, "field 'input'"),
    "wrong_type_metadata.jsonl": (2, "field 'metadata'"),
    "wrong_type_tags.jsonl": (2, "field 'tags'"),
    "enormous_line.jsonl": (2, "over the 16777216 byte limit"),
}


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["evalkit", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return int(exc.value.code or 0), capsys.readouterr().err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    for f in BAD.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    line = json.dumps({"id": "b", "input": "x" * (17 * 1024 * 1024)})
    (d / "enormous_line.jsonl").write_text('{"id": "a", "input": "hello"}\n' + line + "\n")
    return d


def test_corpus_is_complete() -> None:
    on_disk = {f.name for f in BAD.iterdir() if f.name not in ("good.jsonl", "README.md")}
    assert on_disk | {"enormous_line.jsonl"} == set(EXPECTED)
    assert len(EXPECTED) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_is_rejected_cleanly(name: str, corpus: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # suites name targets in tests/core/helpers.py
    store = corpus / "store.duckdb"
    monkeypatch.setenv("EVALKIT_STORE", str(store))
    if not store.exists():  # one good run, shared by the whole corpus
        ok_suite = corpus / "ok.yaml"
        ok_suite.write_text(f"name: ok\ndataset: {corpus / 'good.jsonl'}\ntarget: tests.core.helpers:echo\n"
                            "scorers:\n  - exact_match\n")
        code, _ = run_cli(["run", str(ok_suite), "--no-mlflow", "--no-trace"], capsys, monkeypatch)
        assert code == 0
    before = digest(store)
    bad = corpus / name
    if name.endswith(".suite.yaml"):
        suite = bad
    else:
        suite = corpus / "wrap.yaml"
        suite.write_text(f"name: wrap\ndataset: {bad}\ntarget: tests.core.helpers:echo\nscorers:\n  - exact_match\n")
    code, err = run_cli(["run", str(suite), "--no-mlflow", "--no-trace"], capsys, monkeypatch)
    line, needle = EXPECTED[name]
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    where = f"{bad}:{line}: " if line else f"{bad}: "
    assert lines[0].startswith(f"error: {where}"), lines[0]
    assert needle in lines[0]
    assert digest(store) == before


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
records = st.dictionaries(
    st.sampled_from(["id", "input", "expected", "tags", "metadata", "context", "bogus"]), json_values, max_size=5
)
lines_strategy = st.lists(
    st.one_of(records.map(json.dumps), st.text(max_size=30), st.binary(max_size=30).map(lambda b: b.decode("latin-1"))),
    min_size=1, max_size=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=lines_strategy)
def test_loader_property_cases_or_a_located_user_error(tmp_path: Path, lines: list[str]) -> None:
    """Whatever the bytes, the loader yields valid cases or one UserError naming file and line."""
    p = tmp_path / "prop.jsonl"
    p.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    try:
        cases = load_dataset(p)
    except UserError as exc:
        msg = exc.format()
        assert msg.startswith(f"{p}:") and "\n" not in msg
        n = int(msg[len(str(p)) + 1:].split(":", 1)[0])
        assert 1 <= n <= p.read_bytes().count(b"\n") + 1  # a generated line may itself hold newlines
    else:
        assert len({c.id for c in cases}) == len(cases)
        assert all(isinstance(c.input, str | list) for c in cases)
