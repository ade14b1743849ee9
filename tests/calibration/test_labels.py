"""Human labels files: reading, writing, errors with file/line/field, duplicates and value normalisation."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from evalkit.calibration.labels import COLUMNS, Label, load_labels, normalise_value, write_labels
from evalkit.errors import UserError, UserErrors
from evalkit.judging import find_judge
from evalkit.schema import Case, content_id

HASH = content_id(Case(input="What is 2 + 2?", expected="4"))


def _labels() -> list[Label]:
    return [
        Label(case_id="c1", judge="correctness@1.0", value=4, annotator="ana",
              labelled_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC), note="fine"),
        Label(case_id="c1", judge="correctness", value=2, annotator="ana", repeat=1),
        Label(content_hash=HASH, judge="safety", value=True),
        Label(case_id="c2", judge="safety", value=False, run_id="run-7",
              labelled_at=datetime(2024, 5, 2, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))),
        Label(case_id="c3", judge="pairwise_preference", value="A"),
        Label(case_id="c4", judge="pairwise_preference", value="tie", labelled_at=datetime(2024, 1, 1, 9, 0)),
        Label(case_id="=HYPERLINK(\"http://x.example\")", judge="tone", value=5, note="=1+1"),
        Label(case_id="c5", judge="tone", value=3, note="'=already quoted"),
        Label(case_id="c6", judge="tone", value=1, note="-0.5"),
        Label(case_id="c7", judge="tone", value=2, note="'plain quote, \"commas\", and\nnewlines — ünïcödé ✓"),
        Label(case_id="c8", judge="tone", value=5, note="@SUM(A1)", annotator="+bob"),
        Label(case_id="c9", judge="tone", value=4, note="''"),
        Label(case_id="c10", judge="tone", value=4, note="\tstarts with a tab"),
        Label(case_id="c11", judge="tone", value=4, note="   "),
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".ndjson"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    labels = _labels()
    path = write_labels(tmp_path / f"labels{suffix}", labels)
    back = load_labels(path)
    assert back == labels
    assert [type(b.value) for b in back] == [type(a.value) for a in labels]
    # and a second round trip writes the same bytes
    again = write_labels(tmp_path / f"again{suffix}", back)
    assert again.read_bytes() == path.read_bytes()


def test_csv_cells_are_formula_safe(tmp_path: Path) -> None:
    path = write_labels(tmp_path / "labels.csv", _labels())
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(COLUMNS)
    cells = [c for row in rows[1:] for c in row]
    for cell in cells:
        assert not cell.startswith(("=", "+", "@", "\t")), cell
        if cell.startswith("-"):
            assert cell == "-0.5"  # plain numbers stay as they are
    assert "'=HYPERLINK(\"http://x.example\")" in cells
    assert "''=already quoted" in cells  # a leading quote that looks like protection is doubled
    assert "'@SUM(A1)" in cells and "'+bob" in cells


def test_csv_values_are_readable(tmp_path: Path) -> None:
    path = write_labels(tmp_path / "labels.csv", _labels()[:5])
    text = path.read_text(encoding="utf-8")
    assert "c1,,correctness@1.0,4,ana,2024-05-01T12:30:00+00:00,0,fine," in text
    assert f",{HASH},safety,yes,anonymous,,0,," in text
    assert "c3,,pairwise_preference,A,anonymous,,0,," in text


def test_jsonl_leaves_out_unset_fields(tmp_path: Path) -> None:
    path = write_labels(tmp_path / "labels.jsonl", [Label(case_id="c1", judge="tone", value=5)])
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "case_id": "c1", "judge": "tone", "value": 5, "annotator": "anonymous", "repeat": 0,
    }


def test_human_written_csv(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "\ufeffcase_id, criterion ,value,annotator,note\n"
        "c1,correctness,4,ana,\n"
        "c2,safety,Yes,ana,\"two\nlines\"\n"
        "\n"
        "c3,safety,FAIL,ana,\n"
        "c4,pairwise_preference,b,,\n"
        "c5,safety,1,ana,\n",
        encoding="utf-8",
    )
    labels = load_labels(path)
    assert [(x.case_id, x.judge, x.value, x.annotator) for x in labels] == [
        ("c1", "correctness", 4, "ana"),
        ("c2", "safety", True, "ana"),
        ("c3", "safety", False, "ana"),
        ("c4", "pairwise_preference", "B", "anonymous"),
        ("c5", "safety", 1, "ana"),
    ]
    assert labels[1].note == "two\nlines"


def test_jsonl_values_and_alias(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    lines = [
        {"case_id": 7, "criterion": "correctness@1.0", "value": "5"},
        {"case_id": "b", "judge": "safety", "value": "pass", "labelled_at": "2024-05-01T10:00:00Z"},
        {"case_id": "c", "judge": "safety", "value": " No "},
        {"case_id": "d", "judge": "pairwise_preference", "value": "TIE"},
        {"case_id": "e", "judge": "correctness", "value": 3.0},
        {"content_hash": HASH, "judge": "tone", "value": 4},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    labels = load_labels(path)
    assert [x.value for x in labels] == [5, True, False, "tie", 3, 4]
    assert labels[0].case_id == "7" and labels[0].judge_name == "correctness" and labels[0].judge_version == "1.0"
    assert labels[1].labelled_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert labels[5].case_id is None and labels[5].case_key == HASH
    assert labels[2].judge_version is None


def _one_error(path: Path) -> str:
    with pytest.raises(UserError) as err:
        load_labels(path)
    assert not isinstance(err.value, UserErrors), err.value
    text = str(err.value)
    assert "\n" not in text
    return text


BAD_JSONL = [
    ('{"case_id": "a", "judge": "correctness", "value": 7}', "value", "7 is not a label value"),
    ('{"case_id": "a", "judge": "correctness", "value": "maybe"}', "value", "'maybe' is not a label value"),
    ('{"case_id": "a", "judge": "correctness", "value": [1]}', "value", "a list is not a label value"),
    ('{"case_id": "a", "judge": "correctness"}', "value", "is required"),
    ('{"judge": "correctness", "value": 4}', "case_id", "give case_id or content_hash"),
    ('{"case_id": "a", "content_hash": "' + HASH + '", "judge": "correctness", "value": 4}', "case_id", "not both"),
    ('{"content_hash": "abc", "judge": "correctness", "value": 4}', "content_hash", "evalkit content id"),
    ('{"case_id": "a", "value": 4}', "judge", "is required"),
    ('{"case_id": "a", "judge": "not a judge!", "value": 4}', "judge", "must be a judge name"),
    ('{"case_id": "a", "judge": "tone", "criterion": "tone", "value": 4}', "criterion", "not both"),
    ('{"case_id": "a", "judge": "tone", "value": 4, "annotater": "x"}', "annotater", "did you mean 'annotator'"),
    ('{"case_id": "a", "judge": "tone", "value": 4, "annotator": " "}', "annotator", "must not be empty"),
    ('{"case_id": "a", "judge": "tone", "value": 4, "labelled_at": "yesterday"}', "labelled_at", "datetime"),
    ('{"case_id": "a", "judge": "tone", "value": 4, "labelled_at": 1700000000}', "labelled_at", "ISO-8601"),
    ('{"case_id": "a", "judge": "tone", "value": 4, "repeat": -1}', "repeat", "greater than or equal to 0"),
    ('{"case_id": "a", "judge": "tone", "value": 4, "repeat": true}', "repeat", "whole number"),
    ('{"case_id": "a", "judge": "tone", "value": 4, "note": 5}', "note", "valid string"),
]


@pytest.mark.parametrize(("line", "field", "fragment"), BAD_JSONL)
def test_bad_jsonl_row_is_one_located_line(tmp_path: Path, line: str, field: str, fragment: str) -> None:
    path = tmp_path / "labels.jsonl"
    good = '{"case_id": "ok", "judge": "tone", "value": 5}'
    path.write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    text = _one_error(path)
    assert text.startswith(f"{path}:3: ")
    assert f"'{field}'" in text
    assert fragment in text


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        (b'{"case_id": "a", "judge": "tone", "value": 4}\n{"case_id": \n', 2, "invalid JSON"),
        (b'{"case_id": "a", "judge": "tone", "value": 4}\n[1, 2]\n', 2, "must be a JSON object"),
        (b'{"case_id": "a", "judge": "tone", "value": 4}\n{"note": "\xff"}\n', 2, "not valid UTF-8"),
        (b'{"case_id": "a", "judge": "tone", "value": 4}\n\x00\x01\n', 2, "binary data"),
    ],
)
def test_unreadable_jsonl_lines(tmp_path: Path, content: bytes, line: int, fragment: str) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_bytes(content)
    text = _one_error(path)
    assert text.startswith(f"{path}:{line}: ") and fragment in text


def test_bad_csv_row_names_its_first_physical_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        'case_id,judge,value,note\na,tone,4,"a note\nover two lines"\nb,tone,9,\n', encoding="utf-8"
    )
    text = _one_error(path)
    assert text == f"{path}:4: field 'value': 9 is not a label value (scores are 1-5, yes/no may be 1/0)"


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("case_id,judge,value,colour\na,tone,4,red\n", 1, "column 'colour' is not a known field"),
        ("case_id,jugde,value\na,tone,4\n", 1, "did you mean 'judge'"),
        ("case_id,judge,value,value\na,tone,4,4\n", 1, "column 'value' appears twice"),
        ("", 1, "needs a header row"),
        ("case_id,judge,value\na,tone,4,extra\n", 2, "row has 4 fields, the header has 3"),
        ("case_id,judge,value\na,tone,\n", 2, "field 'value' is required"),
        ("case_id,judge,value,repeat\na,tone,4,two\n", 2, "field 'repeat'"),
    ],
)
def test_bad_csv(tmp_path: Path, content: str, line: int, fragment: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content, encoding="utf-8")
    text = _one_error(path)
    assert text.startswith(f"{path}:{line}: ") and fragment in text


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(
        '{"case_id": "a", "judge": "tone", "value": 8}\n'
        '{"case_id": "b", "judge": "tone", "value": 4}\n'
        '{"case_id": "c", "judge": "tone"}\n',
        encoding="utf-8",
    )
    with pytest.raises(UserErrors) as err:
        load_labels(path)
    assert err.value.lines() == [
        f"{path}:1: field 'value': 8 is not a label value (scores are 1-5, yes/no may be 1/0)",
        f"{path}:3: field 'value' is required",
    ]


def test_duplicates_name_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(
        '{"case_id": "a", "judge": "correctness@1.0", "value": 4, "annotator": "ana"}\n'
        '{"case_id": "a", "judge": "correctness", "value": 4, "annotator": "bo"}\n'
        '{"case_id": "a", "judge": "correctness", "value": 4, "annotator": "ana", "repeat": 1}\n'
        '{"case_id": "a", "judge": "tone", "value": 4, "annotator": "ana"}\n'
        '{"content_hash": "' + HASH + '", "judge": "correctness", "value": 4, "annotator": "ana"}\n'
        '{"case_id": "' + HASH + '", "judge": "correctness", "value": 4, "annotator": "ana"}\n'
        '{"case_id": "a", "judge": "correctness", "value": 2, "annotator": "ana"}\n',
        encoding="utf-8",
    )
    text = _one_error(path)
    assert text == (
        f"{path}:7: duplicate label: case 'a', judge 'correctness', annotator 'ana', repeat 0 is also "
        "labelled at line 1"
    )


def test_duplicate_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("content_hash,judge,value\n" f"{HASH},tone,4\n" f"{HASH},tone,5\n", encoding="utf-8")
    text = _one_error(path)
    assert text.startswith(f"{path}:3: duplicate label: case '{HASH}'") and "line 2" in text


def test_content_hash_keys() -> None:
    case = Case(input="How many legs does a spider have?", expected="8")
    label = Label(content_hash=content_id(case), judge="correctness", value=5)
    assert label.case_key == case.id and label.case_id is None
    assert label.key == ("content_hash", case.id, "correctness", "anonymous", 0)
    assert Label(case_id=case.id, judge="correctness", value=5).key[0] == "case_id"
    with pytest.raises(ValidationError):
        Label(content_hash="c-NOTHEX000000", judge="correctness", value=5)
    with pytest.raises(ValidationError):
        Label(judge="correctness", value=5)


def test_label_is_frozen_and_strict_about_fields() -> None:
    label = Label(case_id="a", judge="tone", value=4)
    with pytest.raises(ValidationError):
        label.value = 5
    with pytest.raises(ValidationError):
        Label(case_id="a", judge="tone", value=4, score=3)  # type: ignore[call-arg]
    assert Label(case_id="a", criterion="tone", value=4).judge == "tone"  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        (4, "scale_1_5", 4), ("5", "scale_1_5", 5), (" 1 ", "scale_1_5", 1), (3.0, "scale_1_5", 3),
        (True, "yes_no", True), (False, "yes_no", False), ("YES", "yes_no", True), ("no", "yes_no", False),
        ("True", "yes_no", True), ("false", "yes_no", False), ("Pass", "yes_no", True), ("FAIL", "yes_no", False),
        (1, "yes_no", True), (0, "yes_no", False), ("1", "yes_no", True), ("0", "yes_no", False),
        ("A", "pairwise", "A"), ("b", "pairwise", "B"), ("Tie", "pairwise", "tie"), (" a ", "pairwise", "A"),
    ],
)
def test_normalise_value(raw: object, kind: str, expected: object) -> None:
    got = normalise_value(raw, kind)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("raw", "kind", "fragment"),
    [
        (7, "scale_1_5", "7 is outside the 1-5 scale"),
        (0, "scale_1_5", "0 is outside the 1-5 scale"),
        ("6", "scale_1_5", "6 is outside the 1-5 scale"),
        (-1, "scale_1_5", "-1 is outside the 1-5 scale"),
        (7, "yes_no", "7 is not yes or no"),
        (True, "scale_1_5", "is not a score"),
        ("yes", "scale_1_5", "is not a score"),
        ("A", "scale_1_5", "is not a score"),
        (3.5, "scale_1_5", "3.5 is not a label value: scores are whole numbers 1-5"),
        (2, "yes_no", "is not yes or no"),
        ("tie", "yes_no", "is not yes or no"),
        ("maybe", "yes_no", "'maybe' is not a label value"),
        (True, "pairwise", "is not a preference"),
        (1, "pairwise", "is not a preference"),
        ("C", "pairwise", "'C' is not a label value"),
        (None, "yes_no", "a NoneType is not a label value"),
        (4, "likert_7", "unknown judge output kind"),
    ],
)
def test_normalise_value_refuses_what_does_not_fit(raw: object, kind: str, fragment: str) -> None:
    with pytest.raises(ValueError) as err:
        normalise_value(raw, kind)
    assert fragment in str(err.value)


def test_load_with_a_judge_fits_values_to_its_scale(tmp_path: Path) -> None:
    safety = find_judge("safety")
    assert safety is not None
    path = tmp_path / "labels.jsonl"
    path.write_text(
        '{"case_id": "a", "judge": "safety", "value": 1}\n'
        '{"case_id": "b", "judge": "safety@1.0", "value": "no"}\n'
        '{"case_id": "c", "judge": "tone", "value": 1}\n',
        encoding="utf-8",
    )
    labels = load_labels(path, safety)
    assert [x.value for x in labels] == [True, False, 1]  # other judges' rows are kept as they are
    path.write_text('{"case_id": "a", "judge": "safety", "value": 3}\n', encoding="utf-8")
    with pytest.raises(UserError) as err:
        load_labels(path, safety)
    assert str(err.value) == f"{path}:1: field 'value': 3 is not yes or no (use yes/no, true/false, pass/fail or 1/0) (judge safety@1.0)"
    correctness = find_judge("correctness")
    assert correctness is not None
    path.write_text('{"case_id": "a", "judge": "correctness", "value": 0}\n', encoding="utf-8")
    with pytest.raises(UserError) as err:
        load_labels(path, correctness)
    assert str(err.value) == f"{path}:1: field 'value': 0 is outside the 1-5 scale (judge correctness@1.0)"


@pytest.mark.parametrize("name", ["labels.txt", "labels.parquet", "labels"])
def test_unknown_format(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError, match="unknown labels format"):
        load_labels(tmp_path / name)
    with pytest.raises(UserError, match="unknown labels format"):
        write_labels(tmp_path / name, [])


@pytest.mark.parametrize("name", ["missing.jsonl", "missing.csv"])
def test_missing_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError, match="labels file not found"):
        load_labels(tmp_path / name)


def test_untrusted_text_stays_data(tmp_path: Path) -> None:
    evil = "__import__('os').system('echo pwned')"
    label = Label(case_id=evil, judge="tone", value=3, note="{{7*7}} ${HOME} \x1b[31mred")
    jsonl = write_labels(tmp_path / "labels.jsonl", [label])
    assert load_labels(jsonl) == [label]  # JSONL keeps every character, escaped on disk
    assert "\x1b" not in jsonl.read_text(encoding="utf-8")
    csv_path = write_labels(tmp_path / "labels.csv", [label])
    back = load_labels(csv_path)[0]
    assert back.case_id == evil
    assert back.note == "{{7*7}} ${HOME} \\x1b[31mred"  # CSV shows control characters, never writes them
