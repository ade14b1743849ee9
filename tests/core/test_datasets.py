"""Dataset loaders and their validation errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from evalkit.datasets import coerce_cases, load_dataset
from evalkit.errors import UserError
from evalkit.schema import Case


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_jsonl_loads_cases_with_stable_ids(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [{"input": "a", "expected": "x"}, {"id": 7, "input": "b"}])
    first = load_dataset(p)
    again = load_dataset(p)
    assert [c.id for c in first] == [c.id for c in again]
    assert first[0].id.startswith("c-") and first[1].id == "7"
    assert first[0].expected == "x"


def test_content_id_changes_with_content() -> None:
    assert Case(input="a").id != Case(input="b").id
    assert Case(input="a").id == Case(input="a", tags=["t"]).id  # tags are not content


@pytest.mark.parametrize(
    ("rows", "line", "needle"),
    [
        ([{"input": "ok"}, {"expected": "no input"}], 2, "field 'input' is required"),
        ([{"input": "ok"}, "{not json"], 2, "invalid JSON"),
        ([{"input": "a", "id": "x"}, {"input": "b", "id": "x"}], 2, "duplicate case id 'x' (first at line 1)"),
        ([{"input": 5}], 1, "field 'input'"),
        ([{"input": "a", "bogus": 1}], 1, "field 'bogus' is not a known field"),
        ([{"input": "a", "tags": "nope"}], 1, "field 'tags'"),
        (["[1, 2]"], 1, "a case must be a mapping"),
    ],
)
def test_jsonl_errors_name_file_line_and_field(tmp_path: Path, rows: list[object], line: int, needle: str) -> None:
    p = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(UserError) as exc:
        load_dataset(p)
    msg = exc.value.format()
    assert msg.startswith(f"{p}:{line}: "), msg
    assert needle in msg
    assert "\n" not in msg


def test_jsonl_skips_blank_lines_and_counts_them(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text('{"input": "a"}\n\n{"nope": 1}\n')
    with pytest.raises(UserError, match=r"d.jsonl:3: field 'nope' is not a known field"):
        load_dataset(p)


def test_non_utf8_and_binary_are_clear_errors(tmp_path: Path) -> None:
    p = tmp_path / "latin.jsonl"
    p.write_bytes(b'{"input": "ok"}\n{"input": "caf\xe9"}\n')
    with pytest.raises(UserError, match=r"latin.jsonl:2: not valid UTF-8"):
        load_dataset(p)
    b = tmp_path / "bin.jsonl"
    b.write_bytes(b'{"input": "ok"}\n\x00\x01\x02\n')
    with pytest.raises(UserError, match=r"bin.jsonl:2: binary data"):
        load_dataset(b)


def test_csv_maps_columns_and_reports_rows(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text('id,input,expected,tags,team\nq1,hello,hi,"a;b",core\nq2,,x,,\n')
    with pytest.raises(UserError, match=r"d.csv:3: field 'input' is required"):
        load_dataset(p)
    p.write_text('id,input,expected,tags,team\nq1,hello,hi,"a;b",core\n')
    (case,) = load_dataset(p)
    assert case.tags == ["a", "b"] and case.metadata == {"team": "core"} and case.expected == "hi"


def test_parquet_and_yaml(tmp_path: Path) -> None:
    pq = tmp_path / "d.parquet"
    pl.DataFrame({"id": ["a", "b"], "input": ["x", "y"], "expected": ["1", "2"]}).write_parquet(pq)
    assert [c.id for c in load_dataset(pq)] == ["a", "b"]
    y = tmp_path / "d.yaml"
    y.write_text("cases:\n  - input: one\n  - input: two\n    expected_tool_calls:\n      - name: search\n  - expected: 3\n")
    with pytest.raises(UserError, match=r"d.yaml:6: field 'input' is required"):
        load_dataset(y)


def test_yaml_python_tags_are_rejected(tmp_path: Path) -> None:
    y = tmp_path / "evil.yaml"
    y.write_text("- input: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(UserError, match=r"evil.yaml:1: invalid YAML"):
        load_dataset(y)


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown dataset format"):
        load_dataset(tmp_path / "d.txt")
    with pytest.raises(UserError, match="not found"):
        load_dataset(tmp_path / "missing.jsonl")


def test_coerce_cases_from_python_objects() -> None:
    cases = coerce_cases(["plain question", {"input": "q", "id": "x"}, Case(input="c")])
    assert [c.input for c in cases] == ["plain question", "q", "c"]
    with pytest.raises(UserError, match="duplicate case id"):
        coerce_cases([{"input": "a", "id": "d"}, {"input": "b", "id": "d"}])


def test_chat_message_input() -> None:
    c = Case(input=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    assert c.input_text == "system: be brief\nuser: hi"
