"""Calibrating a judge end to end: a scripted judge of known error, its calibration, the corrected pass
rate of later runs, the gate's --min-judge-agreement, and labels in and out of the store."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import evalkit
from evalkit.calibration.correction import rogan_gladen
from evalkit.calibration.labels import Label, load_labels, write_labels
from evalkit.calibration.records import latest_calibrations, save_labels, stored_labels
from evalkit.cli.app import _mount, app
from evalkit.llm import register_mock, unregister_mock
from evalkit.store.db import open_store

JUDGE_MODEL = "mock/scripted-safety"
# The calibration set: 20 items humans call safe ("yes"), 20 unsafe ("no"). The scripted judge
# says "no" to 4 of the safe ones (false negatives) and "yes" to 6 of the unsafe ones (false positives).
SAFE, UNSAFE = range(20), range(20, 40)
MISSED, LET_THROUGH = {0, 1, 2, 3}, {20, 21, 22, 23, 24, 25}
# by hand: tp 16, fn 4, tn 14, fp 6; accuracy 30/40 = 0.75; judge says yes 22 times, humans 20 times:
# pe = (20·22 + 20·18) / 40² = 0.5, so kappa = (0.75 - 0.5) / (1 - 0.5) = 0.5;
# sensitivity 16/20 = 0.8, specificity 14/20 = 0.7.


def _judge(messages: list[dict[str, Any]]) -> str:
    text = messages[-1]["content"]
    m = re.search(r"item-(\d+)", text)
    if m:
        i = int(m.group(1))
        yes = (i in SAFE and i not in MISSED) or i in LET_THROUGH
    else:  # a run's case: "run-<i>"; the judge passes the first 35 of 50
        yes = int(re.search(r"run-(\d+)", text).group(1)) < 35  # type: ignore[union-attr]
    return json.dumps({"rationale": "scripted", "verdict": "yes" if yes else "no"})


@pytest.fixture(autouse=True)
def scripted_judge(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("EVALKIT_NO_MLFLOW", "1")
    register_mock(JUDGE_MODEL, _judge)
    _mount()
    yield
    unregister_mock(JUDGE_MODEL)


def _set_file(tmp_path: Path) -> Path:
    path = tmp_path / "safety_set.jsonl"
    rows = [{"id": f"s{i:02d}", "input": f"question {i}", "output": f"item-{i}", "label": "yes" if i in SAFE else "no",
             "annotator": "ann-1"} for i in range(40)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _calibrate(tmp_path: Path, *args: str) -> dict[str, Any]:
    res = CliRunner().invoke(app, ["calibrate", "safety", *args, "--store", str(tmp_path / "s.duckdb"), "--json",
                                   "--resamples", "500"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout[res.stdout.index("{"):])


def _main(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """The CLI as a user runs it (errors become one line on stderr and an exit code)."""
    from evalkit.cli.app import main

    monkeypatch.setattr(sys, "argv", ["evalkit", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return int(exc.value.code or 0), capsys.readouterr().err


def _run(tmp_path: Path, **kw: Any) -> evalkit.EvalResult:
    cases = [{"id": f"r{i:02d}", "input": f"run-{i}"} for i in range(50)]
    return evalkit.evaluate(cases, target=lambda q: q, scorers=[{"judge": {"judge": "safety", "model": JUDGE_MODEL}}],
                            store=tmp_path / "s.duckdb", mlflow=False, **kw)


def test_calibrating_a_scripted_judge_measures_its_known_error(tmp_path: Path) -> None:
    out = _calibrate(tmp_path, "--set", str(_set_file(tmp_path)), "--model", JUDGE_MODEL)
    assert out["items"] == 40 and out["judge"] == "safety@1.0" and out["model"] == JUDGE_MODEL
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["kappa"] == pytest.approx(0.5) and out["agreement"] == pytest.approx(0.5)
    assert out["agreement_metric"] == "kappa" and out["weighted_kappa"] is None
    assert out["sensitivity"] == pytest.approx(0.8) and out["specificity"] == pytest.approx(0.7)
    assert out["pass_confusion"] == {"tp": 16, "fp": 6, "fn": 4, "tn": 14}
    assert out["confusion_matrix"] == [[14, 6], [4, 16]]  # rows human no/yes, columns judge no/yes
    lo, hi = out["kappa_ci"]
    assert lo < 0.5 < hi and hi - lo < 0.7
    st = open_store(tmp_path / "s.duckdb", read_only=True)
    try:
        cal = latest_calibrations(st)[("safety", "1.0", JUDGE_MODEL)]
        labels = stored_labels(st, judge="safety", run_id=out["run_id"])
        scored = st.execute("SELECT count(*) FROM scores WHERE run_id = ? AND name = 'safety'", [out["run_id"]])[0][0]
    finally:
        st.close()
    assert cal["agreement"] == pytest.approx(0.5) and (cal["tp"], cal["fn"], cal["tn"], cal["fp"]) == (16, 4, 14, 6)
    assert len(labels) == 40 and scored == 40  # the set ran through the pipeline: its scores are a stored run


def test_later_runs_carry_agreement_and_the_corrected_pass_rate(tmp_path: Path) -> None:
    before = _run(tmp_path)
    judge = before.summary.scorers[0].judge
    assert judge is not None and judge.ref == "safety@1.0" and judge.agreement is None
    assert judge.invalid_rate == 0.0 and "safety/judge/invalid_rate" in before.metrics
    _calibrate(tmp_path, "--set", str(_set_file(tmp_path)), "--model", JUDGE_MODEL)
    after = _run(tmp_path)
    s = after.summary.scorers[0]
    assert s.pass_rate == pytest.approx(0.7) and s.judge is not None
    assert s.judge.agreement == pytest.approx(0.5) and s.judge.calibration_items == 40
    # Rogan–Gladen by hand: (0.7 + 0.7 - 1) / (0.8 + 0.7 - 1) = 0.4 / 0.5 = 0.8
    assert s.judge.corrected_pass_rate == pytest.approx(0.8)
    assert rogan_gladen(0.7, 0.8, 0.7) == pytest.approx(0.8)
    lo, hi = s.judge.corrected_pass_rate_ci  # type: ignore[misc]
    assert lo < 0.8 < hi
    raw_lo, raw_hi = s.pass_rate_ci  # type: ignore[misc]
    assert hi - lo > raw_hi - raw_lo  # the calibration's own uncertainty widens the interval
    m = after.metrics
    assert m["safety/corrected_pass_rate"] == pytest.approx(0.8) and m["safety/judge/agreement"] == pytest.approx(0.5)
    gated = _run(tmp_path, thresholds=["safety/corrected_pass_rate>=0.75"])
    assert gated.gate.passed, gated.gate.reason


def test_min_judge_agreement_gates_on_the_calibration(tmp_path: Path) -> None:
    uncalibrated = _run(tmp_path, min_judge_agreement=0.4)
    assert not uncalibrated.gate.passed and uncalibrated.gate.exit_code == 1
    assert "has no calibration" in uncalibrated.gate.reason and "evalkit calibrate safety" in uncalibrated.gate.reason
    _calibrate(tmp_path, "--set", str(_set_file(tmp_path)), "--model", JUDGE_MODEL)
    low = _run(tmp_path, min_judge_agreement=0.6)
    assert not low.gate.passed and "agreement with humans 0.500 (kappa, 40 items) < 0.6" in low.gate.reason
    ok = _run(tmp_path, min_judge_agreement=0.4)
    assert ok.gate.passed, ok.gate.reason
    assert [c.metric for c in ok.gate.checks] == ["safety/judge/agreement"]


def test_labels_file_for_a_stored_run_with_two_annotators(tmp_path: Path) -> None:
    run = _run(tmp_path)
    labels = tmp_path / "labels.csv"
    # ann-1 agrees with the judge on r00-r29 and says "no" to r30-r49 (the judge passed r30-r34);
    # ann-2 agrees with ann-1 except on r00-r04
    rows = [Label(case_id=f"r{i:02d}", judge="safety", value=i < 30, annotator="ann-1") for i in range(50)]
    rows += [Label(case_id=f"r{i:02d}", judge="safety", value=(i < 30) != (i < 5), annotator="ann-2")
             for i in range(50)]
    write_labels(labels, rows)
    assert load_labels(labels) == rows  # a labels file round-trips
    out = _calibrate(tmp_path, "--labels", str(labels), "--run", run.run_id)
    assert out["run_id"] == run.run_id and out["items"] == 45  # r00-r04 split 1:1 between annotators: left out
    assert out["tied"] == 5
    assert out["pass_confusion"] == {"tp": 25, "fp": 5, "fn": 0, "tn": 15}
    ia = out["inter_annotator"]
    assert ia["annotators"] == ["ann-1", "ann-2"] and ia["units"] == 50 and ia["alpha"] < 1.0
    # export what the store holds and import it into a fresh store: the same labels
    exported = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["labels", "export", str(exported), "--store", str(tmp_path / "s.duckdb")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["labels", "import", str(exported), "--store", str(tmp_path / "t.duckdb")])
    assert res.exit_code == 0 and "100 label(s) stored" in res.output
    st = open_store(tmp_path / "t.duckdb", read_only=True)
    try:
        again = stored_labels(st, judge="safety")
    finally:
        st.close()
    key = lambda lb: (lb.case_key, lb.annotator)  # noqa: E731
    assert sorted((lb.case_key, lb.annotator, lb.value) for lb in again) == sorted(
        (lb.case_key, lb.annotator, lb.value) for lb in rows) and len({key(lb) for lb in again}) == 100


def test_labels_are_replaced_not_duplicated_and_bad_files_touch_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    st = open_store(tmp_path / "s.duckdb")
    try:
        save_labels(st, [Label(case_id="a", judge="safety", value=True)])
        save_labels(st, [Label(case_id="a", judge="safety", value=False)])
        assert [lb.value for lb in stored_labels(st)] == [False]
    finally:
        st.close()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"case_id": "b", "judge": "safety", "value": "yes"}\n{"case_id": "c", "judge": "safety"}\n')
    code, err = _main(["labels", "import", str(bad), "--store", str(tmp_path / "s.duckdb")], capsys, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and "bad.jsonl:2: field 'value' is required" in err
    st = open_store(tmp_path / "s.duckdb", read_only=True)
    try:
        assert [lb.case_key for lb in stored_labels(st)] == ["a"]
    finally:
        st.close()


def test_calibrate_refuses_too_few_labels_and_unknown_judges(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(tmp_path)
    labels = tmp_path / "few.jsonl"
    write_labels(labels, [Label(case_id=f"r{i:02d}", judge="safety", value=True) for i in range(3)])
    code, err = _main(["calibrate", "safety", "--labels", str(labels), "--run", run.run_id,
                       "--store", str(tmp_path / "s.duckdb")], capsys, monkeypatch)
    assert code == 2 and "only 3 labelled case(s)" in err
    code, err = _main(["calibrate", "no_such_judge", "--builtin", "--store", str(tmp_path / "s.duckdb")],
                      capsys, monkeypatch)
    assert code == 2 and "unknown judge 'no_such_judge'" in err
    st = open_store(tmp_path / "s.duckdb", read_only=True)
    try:
        assert latest_calibrations(st) == {}  # nothing measured, nothing stored
    finally:
        st.close()


def test_calibration_is_logged_to_its_own_mlflow_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALKIT_NO_MLFLOW")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = _calibrate(tmp_path, "--set", str(_set_file(tmp_path)), "--model", JUDGE_MODEL)
    assert out["mlflow_run_id"] and out["notes"] == []
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = c.get_experiment_by_name("evalkit-judge-calibration")
    assert exp is not None
    [run] = c.search_runs([exp.experiment_id])
    assert run.info.run_id == out["mlflow_run_id"]
    assert run.data.metrics["agreement"] == pytest.approx(0.5) and run.data.metrics["items"] == 40
    assert run.data.metrics["sensitivity"] == pytest.approx(0.8)
    assert run.data.tags["evalkit.judge"] == "safety" and run.data.tags["evalkit.judge_model"] == JUDGE_MODEL
    assert run.data.params["labels_sha256"] == out["labels_sha256"]


def test_builtin_set_runs_through_the_pipeline(tmp_path: Path) -> None:
    out = _calibrate(tmp_path, "--builtin", "--model", "mock/judge-fail")  # always "no": nothing is called safe
    assert out["judge"] == "safety@1.0" and out["items"] >= 40 and out["source"] == "set:safety.jsonl"
    assert out["sensitivity"] == 0.0 and out["specificity"] == 1.0 and out["kappa"] == pytest.approx(0.0)
