"""Aligning a judge with human labels: a scripted judge with a learnable bias gets a new version that agrees
better on held-out items; a judge that ignores its prompt gets none; bad input is one line, exit 2."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import evalkit
from evalkit.calibration.align import (
    EXAMPLES_HEADER,
    NOTES_HEADER,
    Miss,
    choose_examples,
    next_version,
    split_items,
)
from evalkit.calibration.calibration_set import CalibrationItem, load_calibration_set
from evalkit.calibration.labels import Label, write_labels
from evalkit.cli.app import _mount
from evalkit.judging.loader import find_judge
from evalkit.llm import register_mock, unregister_mock
from evalkit.schema import Case

LEARNER, STUBBORN = "mock/align-learner", "mock/align-stubborn"
# 60 items for the correctness judge (1-5): 20 exact answers people grade 5, 15 "roughly" answers they grade 4,
# and 25 answers in the wrong unit (miles for km) they grade 2. Every scripted judge grades the first two kinds
# as people do. The wrong unit fools it into a 5 — unless its prompt carries the alignment's examples (then it
# grades 2, as people do) or only its calibration notes (then 3: half learnt). The stubborn judge always gives 5.
EXACT, ROUGH, WRONG_UNIT = range(20), range(20, 35), range(35, 60)


def _output(i: int) -> str:
    if i in EXACT:
        return f"The bridge is exactly {i + 10} km long."
    if i in ROUGH:
        return f"The bridge is roughly {i + 10} km long."
    return f"The bridge is {i + 10} miles long. {{output}}"  # a placeholder in the data must stay data


def _label(i: int) -> int:
    return 5 if i in EXACT else 4 if i in ROUGH else 2


def _response(messages: list[dict[str, Any]], *, learns: bool) -> str:
    prompt = messages[-1]["content"]
    # the response under judgement is the one the renderer fenced as data; the examples' outputs are elsewhere
    fenced = re.search(r'<data-([0-9a-f]+) name="output">\n(.*?)\n</data-\1>', prompt, re.S)
    assert fenced is not None
    answer = fenced.group(2)
    if "miles" in answer:
        score = 5
        if learns and EXAMPLES_HEADER in prompt:
            score = 2
        elif learns and NOTES_HEADER in prompt:
            score = 3
    else:
        score = 4 if "roughly" in answer else 5
    return json.dumps({"rationale": "scripted", "score": score})


@pytest.fixture(autouse=True)
def scripted_judges(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("EVALKIT_NO_MLFLOW", "1")
    register_mock(LEARNER, lambda m: _response(m, learns=True))
    register_mock(STUBBORN, lambda m: _response(m, learns=False))
    _mount()
    yield
    unregister_mock(LEARNER)
    unregister_mock(STUBBORN)


def _rows() -> list[dict[str, Any]]:
    return [{"id": f"q{i:02d}", "input": f"How long is bridge {i}?", "expected": f"{i + 10} km",
             "output": _output(i), "label": _label(i), "annotator": "ann-1",
             **({"note": "wrong unit: miles, not km"} if i in WRONG_UNIT else {})} for i in range(60)]


def _set_file(tmp_path: Path) -> Path:
    path = tmp_path / "correctness_set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    return path


def _main(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """The CLI as a user runs it: (exit code, stdout, stderr)."""
    from evalkit.cli.app import main

    monkeypatch.setattr(sys, "argv", ["evalkit", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


# Hand-computed agreement (quadratic-weighted kappa, levels 1-5, weight ((i - j) / 4)²; kappa = 1 - Do / De with
# Do, De the observed and chance-expected mean weights). The split holds out round(0.4 × n) of each human level:
# held-out 8 fives, 6 fours, 10 twos (24); training 12 / 9 / 15 (36) — the same proportions, so the same kappas.
# Current version on either part (fractions of 24): the ten twos are graded 5, weight 9/16:
#   Do = 10/24 · 9/16 = 90/384;  human marginals 2: 10, 4: 6, 5: 8; judge 4: 6, 5: 18 (of 24):
#   De = [10·(6·4/16 + 18·9/16) + 6·(18·1/16) + 8·(6·1/16)] / 24² = (1860 + 108 + 48) / (16 · 576) = 2016/9216
#   kappa = 1 - (90/384) / (2016/9216) = 1 - 15/14 = -1/14
# Notes only, on training (36): the fifteen twos are graded 3, weight 1/16: Do = 15/(16 · 36);
#   judge marginals 3: 15, 4: 9, 5: 12;  De = [15·(15·1 + 9·4 + 12·9) + 9·(15·1 + 12·1) + 12·(15·4 + 9·1)] / (16 · 36²)
#      = (2385 + 243 + 828) / (16 · 1296) = 1/6;  kappa = 1 - (15/576) / (96/576) = 81/96
# Examples (and both): every item graded as people grade it: kappa = 1.
BEFORE, NOTES, PERFECT = -1 / 14, 81 / 96, 1.0


def test_align_learns_the_bias_and_writes_a_new_version(
        workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    builtin = find_judge("correctness")
    assert builtin is not None
    old_sha, old_prompt = builtin.prompt_sha256, builtin.prompt
    code, out, err = _main(["judges", "align", "correctness", "--set", str(_set_file(workspace)), "--model", LEARNER,
                            "--store", str(workspace / "s.duckdb"), "--json"], capsys, monkeypatch)
    assert code == 0, err
    r = json.loads(out)
    assert (r["items"], r["train_items"], r["heldout_items"], r["train_disagreements"]) == (60, 36, 24, 15)
    assert r["agreement_metric"] == "weighted_kappa" and r["model"] == LEARNER
    assert r["before"]["heldout"] == pytest.approx(BEFORE) and r["before"]["train"] == pytest.approx(BEFORE)
    train = {c["kind"]: c["train_agreement"] for c in r["candidates"]}
    assert train == {"examples": pytest.approx(PERFECT), "notes": pytest.approx(NOTES), "both": pytest.approx(PERFECT)}
    assert r["chosen"] == "examples"  # as good as both on training, with the shorter prompt
    assert r["after"]["heldout"] == pytest.approx(PERFECT) and r["improved"] is True
    path = Path(r["written"])
    assert path == Path("judges") / "correctness-1.0-aligned.1.yaml" and (workspace / path).is_file()

    new = find_judge(str(path))
    assert new is not None and new.name == "correctness" and new.version == "1.0-aligned.1"
    assert r["new_judge"] == "correctness@1.0-aligned.1" and r["new_prompt_sha256"] == new.prompt_sha256
    assert new.model == LEARNER and new.output == builtin.output and new.threshold == builtin.threshold
    assert new.prompt.startswith(old_prompt.rstrip()) and EXAMPLES_HEADER in new.prompt
    assert NOTES_HEADER not in new.prompt
    assert new.placeholders == builtin.placeholders  # the rubric's own placeholders, intact and only those
    examples = new.prompt[new.prompt.index(EXAMPLES_HEADER):]
    assert examples.count("— human grade: 2") == 6 and "Example 7" not in examples  # --max-examples 6
    assert "{ output }" in examples and "miles" in examples  # quoted data: the placeholder is defused
    tag = re.search(r"<(example-[0-9a-f]{16}) name=\"output\">", examples)
    assert tag is not None and examples.count(f"<{tag.group(1)} name=") == 6 * 4  # input, expected, output, reason
    assert "wrong unit: miles, not km" in examples

    # the old version is unchanged and still what the name means; the new one is also name@version from here
    again = find_judge("correctness")
    assert again is not None and again.version == "1.0" and again.prompt_sha256 == old_sha
    by_ref = find_judge("correctness@1.0-aligned.1")
    assert by_ref is not None and by_ref.prompt_sha256 == new.prompt_sha256
    assert find_judge("correctness@1.0") is not None and find_judge("correctness@9.9") is None
    # every scoring was a run in the store: current, three candidates, the held-out check
    from evalkit.store.db import open_store

    st = open_store(workspace / "s.duckdb", read_only=True)
    try:
        suites = sorted(r["suite"] for r in st.query("SELECT suite FROM runs"))
    finally:
        st.close()
    assert suites == sorted(f"align/correctness/{s}" for s in (
        "current", "train-examples", "train-notes", "train-both", "heldout-examples"))
    # aligning again numbers the next version
    assert next_version(builtin, workspace / "judges") == "1.0-aligned.2"


def test_a_judge_that_ignores_its_prompt_is_not_aligned(
        workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _main(["judges", "align", "correctness", "--set", str(_set_file(workspace)), "--model", STUBBORN,
                            "--store", str(workspace / "s.duckdb"), "--json"], capsys, monkeypatch)
    assert code == 1
    r = json.loads(out)
    assert r["before"]["heldout"] == pytest.approx(BEFORE) and r["after"]["heldout"] == pytest.approx(BEFORE)
    assert {c["kind"]: c["train_agreement"] for c in r["candidates"]} == {
        k: pytest.approx(BEFORE) for k in ("examples", "notes", "both")}
    assert r["chosen"] == "notes" and r["improved"] is False and r["written"] is None  # all tie: the shortest prompt
    assert err.count("\n") == 1 and err == (
        "held-out weighted_kappa on 24 items: -0.071 before, -0.071 after (candidate notes), not higher; "
        "nothing was written\n")
    assert not (workspace / "judges").exists()


def test_align_rebuilds_items_from_a_stored_run(
        workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows()
    answers = {r["input"]: r["output"] for r in rows}
    run = evalkit.evaluate([{"id": r["id"], "input": r["input"], "expected": r["expected"]} for r in rows],
                           target=lambda q: answers[q], scorers=[{"judge": {"judge": "correctness", "model": LEARNER}}],
                           store=workspace / "s.duckdb", mlflow=False)
    labels = workspace / "labels.csv"
    write_labels(labels, [Label(case_id=r["id"], judge="correctness", value=r["label"], annotator="ann-1",
                                note=r.get("note")) for r in rows])
    code, out, err = _main(["judges", "align", "correctness", "--labels", str(labels), "--run", run.run_id,
                            "--model", LEARNER, "--store", str(workspace / "s.duckdb"), "--out",
                            str(workspace / "mine.yaml"), "--json"], capsys, monkeypatch)
    assert code == 0, err
    r = json.loads(out)
    # the same items (ids, outputs, labels) as the set: the same split and the same numbers
    assert (r["items"], r["train_items"], r["heldout_items"]) == (60, 36, 24)
    assert r["before"]["heldout"] == pytest.approx(BEFORE) and r["after"]["heldout"] == pytest.approx(PERFECT)
    assert r["source"] == f"labels:labels.csv@{run.run_id}"
    new = find_judge(str(workspace / "mine.yaml"))
    assert new is not None and new.version == "1.0-aligned.1" and "km" in new.prompt  # expected came from the run


def test_bad_input_is_one_line_and_exit_2(
        workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    store = str(workspace / "s.duckdb")
    code, _, err = _main(["judges", "align", "no_such_judge", "--builtin", "--store", store], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and "unknown judge 'no_such_judge'" in err
    rows = _rows()[:12]
    answers = {r["input"]: r["output"] for r in rows}
    run = evalkit.evaluate([{"id": r["id"], "input": r["input"], "expected": r["expected"]} for r in rows],
                           target=lambda q: answers[q], scorers=[{"judge": {"judge": "correctness", "model": LEARNER}}],
                           store=workspace / "s.duckdb", mlflow=False)
    few = workspace / "few.jsonl"
    write_labels(few, [Label(case_id=r["id"], judge="correctness", value=r["label"]) for r in rows])
    code, _, err = _main(["judges", "align", "correctness", "--labels", str(few), "--run", run.run_id, "--model",
                          LEARNER, "--store", store], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1
    assert "12 labelled item(s) split into 7 training and 5 held-out; aligning needs at least 10 in each" in err
    code, _, err = _main(["judges", "align", "correctness", "--labels", str(few), "--store", store], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and "--labels needs --run RUN_ID" in err
    (workspace / "taken.yaml").write_text("x")
    code, _, err = _main(["judges", "align", "correctness", "--set", str(_set_file(workspace)), "--model", LEARNER,
                          "--out", str(workspace / "taken.yaml"), "--store", store], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and "exists already" in err
    assert (workspace / "taken.yaml").read_text() == "x" and not (workspace / "judges").exists()


def test_judges_still_lists_and_shows(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = _main(["judges", "--json"], capsys, monkeypatch)
    assert code == 0 and "correctness" in {j["name"] for j in json.loads(out)}
    code, out, _ = _main(["judges", "correctness", "--json"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["ref"] == "correctness@1.0"
    code, out, _ = _main(["judges", "--json", "correctness@1.0"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["ref"] == "correctness@1.0"


def _items(tmp_path: Path) -> list[CalibrationItem]:
    jd = find_judge("correctness")
    assert jd is not None
    return load_calibration_set(_set_file(tmp_path), jd)


def test_the_split_is_seeded_and_stratified(tmp_path: Path) -> None:
    jd = find_judge("correctness")
    assert jd is not None
    items = _items(tmp_path)
    train, held = split_items(items, jd, seed=0)
    assert [it.id for it in split_items(items, jd, seed=0)[1]] == [it.id for it in held]
    assert [it.id for it in split_items(items, jd, seed=1)[1]] != [it.id for it in held]
    count = lambda part, level: sum(1 for it in part if it.label == level)  # noqa: E731
    assert [count(held, v) for v in (5, 4, 2)] == [8, 6, 10] and [count(train, v) for v in (5, 4, 2)] == [12, 9, 15]
    assert {it.id for it in train}.isdisjoint({it.id for it in held}) and len(train) + len(held) == 60


def test_examples_are_balanced_across_the_human_levels_the_judge_got_wrong() -> None:
    jd = find_judge("correctness")
    assert jd is not None

    def miss(i: int, human: int, judge: int) -> Miss:
        item = CalibrationItem(case=Case(id=f"m{i}", input="q", expected="e"), output="o", label=human)
        return Miss(item, human, judge)

    misses = [miss(i, 1, 5) for i in range(8)] + [miss(10 + i, 2, 3) for i in range(2)] + [miss(20, 4, 2)]
    chosen = choose_examples(misses, jd, 6, seed=0)
    assert Counter(m.human for m in chosen) == {1: 3, 2: 2, 4: 1}  # in turn from each level, while they last
    assert choose_examples(misses, jd, 6, seed=0) == chosen and len(choose_examples(misses, jd, 2)) == 2
