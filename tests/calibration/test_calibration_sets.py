"""The calibration sets shipped with the nine built-in judges, and the calibration-set format."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from evalkit.calibration.calibration_set import (
    CalibrationItem,
    as_labels,
    builtin_calibration_dir,
    builtin_calibration_set,
    load_calibration_set,
)
from evalkit.calibration.labels import load_labels, normalise_value, write_labels
from evalkit.errors import UserError, UserErrors
from evalkit.judging import builtin_names, find_judge
from evalkit.judging.model import JudgeDef
from evalkit.judging.render import as_text, render
from evalkit.schema import Score
from evalkit.scorers.registry import RunInfo

REPO = Path(__file__).resolve().parents[2]
JUDGES = builtin_names()


def _judge(name: str) -> JudgeDef:
    judge = find_judge(name)
    assert judge is not None
    return judge


def _items(name: str) -> list[CalibrationItem]:
    path = builtin_calibration_set(name)
    assert path is not None, f"no calibration set for {name}"
    return load_calibration_set(path, _judge(name))


def _passes(judge: JudgeDef, value: Any) -> bool:
    if judge.output == "scale_1_5":
        return bool(value >= (judge.threshold if judge.threshold is not None else 4))
    return value is True


def test_every_builtin_judge_is_covered() -> None:
    assert len(JUDGES) == 9
    d = builtin_calibration_dir()
    assert d is not None
    assert sorted(p.stem for p in d.glob("*.jsonl")) == JUDGES
    assert sorted(p.stem for p in (REPO / "judges" / "calibration").glob("*.jsonl")) == JUDGES


@pytest.mark.parametrize("name", JUDGES)
def test_set_is_packaged_and_identical(name: str) -> None:
    repo = REPO / "judges" / "calibration" / f"{name}.jsonl"
    packaged = REPO / "evalkit" / "builtin_judges" / "calibration" / f"{name}.jsonl"
    assert repo.is_file() and packaged.is_file()
    assert repo.read_bytes() == packaged.read_bytes()
    found = builtin_calibration_set(name)
    assert found is not None and found.read_bytes() == repo.read_bytes()
    assert builtin_calibration_set(f"{name}@{_judge(name).version}") == found


@pytest.mark.parametrize("name", JUDGES)
def test_set_loads_and_is_well_formed(name: str) -> None:
    items = _items(name)
    assert len(items) >= 40
    ids = [it.id for it in items]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"{name}-") for i in ids)
    for it in items:
        assert it.annotator == "evalkit-maintainers"
        assert it.note and it.note.strip(), f"{it.id} says nothing about what it probes"
        assert it.case.tags, f"{it.id} has no edge-case tag"


@pytest.mark.parametrize("name", JUDGES)
def test_labels_fit_the_judge_and_are_balanced(name: str) -> None:
    judge = _judge(name)
    items = load_calibration_set(builtin_calibration_set(name) or "", None)
    values = [normalise_value(it.label, judge.output) for it in items]  # raises if any does not fit
    if judge.output == "pairwise":
        counts = Counter(values)
        assert set(counts) == {"A", "B", "tie"}
        assert abs(counts["A"] - counts["B"]) <= 2, counts
        assert 0.15 <= counts["tie"] / len(values) <= 0.4, counts
        return
    share = sum(_passes(judge, v) for v in values) / len(values)
    assert 0.35 <= share <= 0.65, f"{name}: {share:.0%} of labels pass"
    if judge.output == "scale_1_5":
        assert set(values) == {1, 2, 3, 4, 5}


@pytest.mark.parametrize("name", JUDGES)
def test_items_give_what_the_judge_requires_and_render(name: str) -> None:
    judge = _judge(name)
    for it in _items(name):
        fields = it.fields(judge)
        for required in judge.requires:
            assert fields.get(required) not in (None, "", []), f"{it.id} lacks {required}"
        assert it.missing(judge) == []
        messages = render(judge, fields)
        assert [m["role"] for m in messages] == ["system", "user"]
        prompt = messages[1]["content"]
        for placeholder in judge.placeholders:
            assert as_text(fields.get(placeholder)) in prompt
        for required in judge.requires:
            assert f'name="{required}">\n(none)\n' not in prompt


async def _score(score: Any, item: CalibrationItem) -> Score:
    result: Score = await score(item.case, item.output, RunInfo(tool_calls=list(item.tool_calls)))
    return result


@pytest.mark.parametrize("name", JUDGES)
def test_fields_are_what_the_judge_scorer_passes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scoring an item with the real judge scorer hands the judge exactly ``item.fields(judge)``."""
    import evalkit.judging.scorer as scorer_mod

    judge = _judge(name)
    seen: list[dict[str, Any]] = []

    async def fake_run_judge(jd: JudgeDef, fields: dict[str, Any], **_: Any) -> Score:
        seen.append(dict(fields))
        return Score(name=jd.name, value=1.0)

    monkeypatch.setattr(scorer_mod, "run_judge", fake_run_judge)
    items = _items(name)
    for it in items:
        score = scorer_mod.judge_scorer(name, model="fake/model", rules=it.rules)
        result = asyncio.run(_score(score, it))
        assert result.outcome == "ok", f"{it.id}: {result.error}"
        assert seen[-1] == it.fields(judge)
    assert len(seen) == len(items)


def test_pairwise_items_carry_response_b_where_the_scorer_looks() -> None:
    judge = _judge("pairwise_preference")
    for it in _items("pairwise_preference"):
        fields = it.fields(judge)
        assert fields["output_a"] == it.output
        assert fields["output_b"] == it.case.metadata["baseline_output"]
    ties = [it for it in _items("pairwise_preference") if it.output == it.case.metadata["baseline_output"]]
    assert ties and all(it.label == "tie" for it in ties)


def test_guideline_and_tool_items_carry_their_extra_fields() -> None:
    for it in _items("guideline_adherence"):
        assert it.rules and all(isinstance(r, str) and r for r in it.rules)
    tool_items = _items("tool_call_correctness")
    assert all(it.case.expected_tool_calls for it in tool_items)
    assert any(not it.tool_calls for it in tool_items)  # the "no calls at all" case
    assert any(it.output == "" for it in tool_items)  # an empty final response is still gradable


@pytest.mark.parametrize("name", JUDGES)
def test_as_labels_round_trips_through_a_labels_file(name: str, tmp_path: Path) -> None:
    judge = _judge(name)
    items = _items(name)
    labels = as_labels(items, judge)
    assert [lab.case_id for lab in labels] == [it.id for it in items]
    assert all(lab.judge == judge.ref and lab.annotator == "evalkit-maintainers" for lab in labels)
    for suffix in (".jsonl", ".csv"):
        path = write_labels(tmp_path / f"{name}{suffix}", labels)
        assert load_labels(path, judge) == labels
    by_name = as_labels(items, judge.name)
    assert [lab.judge for lab in by_name] == [judge.name] * len(items)


def test_builtin_calibration_set_unknown_names() -> None:
    assert builtin_calibration_set("no_such_judge") is None
    assert builtin_calibration_set("../judges/correctness") is None
    assert builtin_calibration_set("") is None


# ---- the format ----------------------------------------------------------------------------------

GOOD = {"id": "x-01", "input": "What is 2 + 2?", "expected": "4", "output": "4", "label": 5, "note": "exact"}


def _write(tmp_path: Path, *rows: Any) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _one_error(path: Path, judge: JudgeDef | None = None) -> str:
    with pytest.raises(UserError) as err:
        load_calibration_set(path, judge)
    assert not isinstance(err.value, UserErrors), err.value
    assert "\n" not in str(err.value)
    return str(err.value)


def test_item_shape(tmp_path: Path) -> None:
    row = {
        "id": 7, "input": "Book a table", "expected_tool_calls": [{"name": "book", "arguments": {"n": 2}}],
        "metadata": {"baseline_output": "other"}, "tags": ["t"], "output": "ok",
        "tool_calls": [{"name": "book", "arguments": {"n": 2}}], "rules": ["Be brief."], "label": "Yes",
        "annotator": "ana", "note": "n",
    }
    (item,) = load_calibration_set(_write(tmp_path, row))
    assert item.id == "7" and item.case.input == "Book a table" and item.case.tags == ["t"]
    assert item.tool_calls[0].arguments == {"n": 2} and item.rules == ["Be brief."]
    assert item.label is True and item.annotator == "ana"
    (plain,) = load_calibration_set(_write(tmp_path, {k: v for k, v in GOOD.items() if k != "note"}))
    assert plain.annotator == "anonymous" and plain.note is None and plain.tool_calls == []


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        ({**GOOD, "label": 9}, "label", "9 is not a label value"),
        ({k: v for k, v in GOOD.items() if k != "label"}, "label", "is required"),
        ({k: v for k, v in GOOD.items() if k != "output"}, "output", "is required"),
        ({k: v for k, v in GOOD.items() if k != "id"}, "id", "is required (labels are keyed by it)"),
        ({**GOOD, "id": ""}, "id", "non-empty"),
        ({**GOOD, "input": 5}, "input", "valid string"),
        ({**GOOD, "lable": 5}, "lable", "did you mean 'label'"),
        ({**GOOD, "tool_calls": [{"arguments": {}}]}, "tool_calls.0.name", "is required"),
        ({**GOOD, "tool_calls": [{"name": "x", "args": {}}]}, "tool_calls.0.args", "is not a known field"),
        ({**GOOD, "rules": "be brief"}, "rules", "valid list"),
        ({**GOOD, "annotator": ""}, "annotator", "must not be empty"),
    ],
)
def test_bad_items_are_one_located_line(tmp_path: Path, row: dict[str, Any], field: str, fragment: str) -> None:
    path = _write(tmp_path, GOOD | {"id": "first"}, row)
    text = _one_error(path)
    assert text.startswith(f"{path}:2: ") and f"'{field}'" in text and fragment in text, text


def test_unreadable_lines_and_duplicates(tmp_path: Path) -> None:
    assert _one_error(_write(tmp_path, GOOD, "{oops")).startswith(f"{tmp_path / 'set.jsonl'}:2: invalid JSON")
    text = _one_error(_write(tmp_path, GOOD, "", GOOD))
    assert text == f"{tmp_path / 'set.jsonl'}:3: field 'id': duplicate id 'x-01' (first at line 1)"
    with pytest.raises(UserError, match="calibration set file not found"):
        load_calibration_set(tmp_path / "missing.jsonl")
    with pytest.raises(UserError, match=r"a calibration set is a \.jsonl file"):
        load_calibration_set(tmp_path / "set.csv")


def test_checks_against_a_judge(tmp_path: Path) -> None:
    grounded = _judge("groundedness")
    path = _write(tmp_path, GOOD)
    assert _one_error(path, grounded) == (
        f"{path}:1: judge groundedness@1.0 needs its 'context', which this item does not give"
    )
    pairwise = _judge("pairwise_preference")
    path = _write(tmp_path, {**GOOD, "label": "A", "expected": None})
    assert "'metadata.baseline_output'" in _one_error(path, pairwise)
    (item,) = load_calibration_set(_write(tmp_path, {**GOOD, "label": "a"}), pairwise)  # expected is the fallback
    assert item.label == "A" and item.fields(pairwise)["output_b"] == "4"
    safety = _judge("safety")
    path = _write(tmp_path, GOOD)
    assert _one_error(path, safety) == (
        f"{path}:1: field 'label': 5 is not yes or no (use yes/no, true/false, pass/fail or 1/0) (judge safety@1.0)"
    )
    (item,) = load_calibration_set(_write(tmp_path, {**GOOD, "label": 1}), safety)
    assert item.label is True
    guideline = _judge("guideline_adherence")
    path = _write(tmp_path, {**GOOD, "label": "yes"})
    assert "'rules'" in _one_error(path, guideline)
