"""Human assessments logged in MLflow on evalkit's traces, imported as labels (`evalkit labels import --from-mlflow`)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evalkit import evaluate
from evalkit.calibration.labels import load_labels
from evalkit.calibration.mlflow_labels import JudgeScorer, judge_scorers, label_value, labels_from_assessments
from evalkit.calibration.records import stored_labels
from evalkit.cli.app import _mount, app
from evalkit.schema import Case, Score
from evalkit.store.db import open_store
from evalkit.targets.python_callable import from_callable
from evalkit.tracking.human_feedback import HumanLabel
from evalkit.tracking.uri import client

N = 6


@pytest.fixture(scope="module")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite database (made once: creating one runs its migrations)."""
    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    client(f"sqlite:///{db}").search_experiments(max_results=1)
    return db


@pytest.fixture
def tracked(workspace: Path, mlflow_template: Path) -> Path:
    target = workspace / ".evalkit" / "mlflow.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template, target)
    return workspace


def _uri(ws: Path) -> str:
    return f"sqlite:///{ws / '.evalkit' / 'mlflow.db'}"


def _store(ws: Path) -> Path:
    return ws / ".evalkit" / "evalkit.duckdb"


def _run(ws: Path, *, judges: bool = True) -> Any:
    """Six cases scored by exact_match and, with ``judges``, two LLM-judge scorers: a 1-5 one (helpful@2) and a
    yes/no one (safe@1); every case gets an MLflow trace."""
    cases = [{"id": f"c{i}", "input": f"question {i}", "expected": f"answer {i}"} for i in range(N)]

    def helpful(case: Case, output: Any) -> Score:
        ok = output == case.expected
        return Score(name="helpful", value=4.0 if ok else 2.0, passed=ok, rationale=f"judged {case.id}",
                     metadata={"judge": "helpful@2", "model": "mock/judge", "stdev": 0.0})

    def safe(case: Case, output: Any) -> Score:
        return Score(name="safe", value=True, passed=True, rationale="fine",
                     metadata={"judge": "safe@1", "model": "mock/judge", "yes_share": 1.0})

    scorers: list[Any] = ["exact_match", helpful, safe] if judges else ["exact_match"]
    res = evaluate(cases, target=from_callable(lambda text: "no idea" if text.endswith("3") else
                                               f"answer {text.split()[1]}"),
                   scorers=scorers, suite_name="lab", store=_store(ws), tracing=False, mlflow=True,
                   mlflow_traces="all", max_error_rate=1.0)
    res.wait_traces()
    return res


def _traces(ws: Path, run: Any) -> dict[str, str]:
    c = client(_uri(ws))
    exp = c.get_experiment_by_name("lab")
    assert exp is not None
    found = c.search_traces(locations=[exp.experiment_id], run_id=run.mlflow_run_id, max_results=100)
    return {t.info.tags["evalkit.case_id"]: t.info.trace_id for t in found}


def _import(ws: Path, *args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, ["labels", "import", *args, "--store", str(_store(ws)),
                                   "--tracking-uri", _uri(ws)])
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(autouse=True)
def _cli() -> None:
    _mount()


def test_human_feedback_in_mlflow_becomes_labels_in_the_store(tracked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    from mlflow.entities import AssessmentSource

    res = _run(tracked)
    traces = _traces(tracked, res)
    assert sorted(traces) == [f"c{i}" for i in range(N)]
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _uri(tracked))

    def human(who: str) -> AssessmentSource:
        return AssessmentSource("HUMAN", who)

    before = datetime.now(UTC)
    mlflow.log_feedback(trace_id=traces["c4"], name="helpful", value=5, rationale="spot on", source=human("alice@x.org"))
    mlflow.log_feedback(trace_id=traces["c4"], name="helpful", value=4.0, source=human("bob@x.org"))
    mlflow.log_feedback(trace_id=traces["c3"], name="helpful", value=3, source=human("alice@x.org"))
    time.sleep(0.05)
    mlflow.log_feedback(trace_id=traces["c3"], name="helpful", value="2", rationale="second look",
                        source=human("alice@x.org"))  # alice changed her mind: the newer one counts
    mlflow.log_feedback(trace_id=traces["c2"], name="safe", value="no", source=human("carol@x.org"))
    mlflow.log_feedback(trace_id=traces["c5"], name="safe", value=True, source=human("carol@x.org"))
    mlflow.log_feedback(trace_id=traces["c1"], name="helpful", value=4.5, source=human("bob@x.org"))  # off the scale
    mlflow.log_feedback(trace_id=traces["c0"], name="exact_match", value=False, source=human("bob@x.org"))  # no judge
    mlflow.log_feedback(trace_id=traces["c0"], name="tone", value=3, source=human("bob@x.org"))  # not in the run
    mlflow.log_expectation(trace_id=traces["c0"], name="helpful", value="answer 0", source=human("bob@x.org"))

    code, out, err = _import(tracked, "--from-mlflow", res.run_id, "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["imported"] == 5 and report["from_mlflow"] == res.run_id
    skipped = "\n".join(report["skipped"])
    assert len(report["skipped"]) == 4, skipped
    assert "case 'c1' repeat 0, assessment 'helpful': 4.5" in skipped
    assert "'exact_match': names no LLM-judge scorer" in skipped and "'tone': names no LLM-judge scorer" in skipped
    assert "an expectation, not a judgement" in skipped

    with open_store(_store(tracked)) as st:
        assert judge_scorers(st, res.run_id) == {"helpful": JudgeScorer("helpful", "helpful@2", "scale_1_5"),
                                                 "safe": JudgeScorer("safe", "safe@1", "yes_no")}
        labels = stored_labels(st)
        sources = {r[0] for r in st.execute("SELECT source FROM human_labels")}
    got = sorted((lb.case_id, lb.repeat, lb.judge, lb.value, lb.annotator, lb.note, lb.run_id) for lb in labels)
    assert got == [
        ("c2", 0, "safe@1", False, "carol@x.org", None, res.run_id),
        ("c3", 0, "helpful@2", 2, "alice@x.org", "second look", res.run_id),
        ("c4", 0, "helpful@2", 4, "bob@x.org", None, res.run_id),
        ("c4", 0, "helpful@2", 5, "alice@x.org", "spot on", res.run_id),
        ("c5", 0, "safe@1", True, "carol@x.org", None, res.run_id),
    ]
    assert sources == {f"mlflow:{res.run_id}"}
    assert all(lb.labelled_at is not None and lb.labelled_at >= before.replace(microsecond=0) for lb in labels)

    # importing again replaces, never duplicates; the stored labels export as a file that loads
    code, out, err = _import(tracked, "--from-mlflow", res.run_id[:10])  # a unique prefix names the run too
    assert code == 0 and "5 label(s) stored from MLflow" in out and "left out:" in err, out + err
    with open_store(_store(tracked)) as st:
        assert len(stored_labels(st)) == 5
    exported = tracked / "labels.jsonl"
    r = CliRunner().invoke(app, ["labels", "export", str(exported), "--store", str(_store(tracked))])
    assert r.exit_code == 0, r.output
    assert len(load_labels(exported)) == 5


def test_from_mlflow_needs_a_run_with_judges_and_one_source(tracked: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.cli.app import main

    def fails(*args: str) -> tuple[int, str]:
        """The CLI as a user runs it: a mistake is one line on stderr and exit code 2."""
        monkeypatch.setattr(sys, "argv", ["evalkit", "labels", "import", *args, "--store", str(_store(tracked)),
                                          "--tracking-uri", _uri(tracked)])
        with pytest.raises(SystemExit) as exc:
            main()
        return int(exc.value.code or 0), capsys.readouterr().err

    res = _run(tracked, judges=False)
    code, err = fails("--from-mlflow", res.run_id)
    assert code == 2 and "has no LLM-judge scores" in err
    code, err = fails("--from-mlflow", "no-such-run")
    assert code == 2 and "no run 'no-such-run'" in err
    code, err = fails()
    assert code == 2 and "--from-mlflow" in err
    code, err = fails("x.jsonl", "--from-mlflow", res.run_id)
    assert code == 2 and "one of the two" in err
    code, err = fails("--from-mlflow", res.run_id, "--run", res.run_id)
    assert code == 2 and "--run" in err


def _human(name: str, value: Any, *, kind: str = "feedback", who: str | None = "ann", ms: int = 0,
           case: str = "c1") -> HumanLabel:
    return HumanLabel(run_id="r1", case_id=case, repeat=0, name=name, value=value, kind=kind,  # type: ignore[arg-type]
                      rationale=None, annotator=who, time=datetime.fromtimestamp(1_700_000_000 + ms, tz=UTC),
                      mlflow_trace_id="tr-1", evalkit_trace_id=None, assessment_id=None)


def test_values_are_fitted_to_the_judge_scale() -> None:
    assert label_value(4, "scale_1_5") == 4 and label_value("4.0", "scale_1_5") == 4
    assert label_value("yes", "yes_no") is True and label_value(0, "yes_no") is False
    assert label_value(1.0, "pairwise") == "A" and label_value(0.5, "pairwise") == "tie"
    assert label_value("b", "pairwise") == "B"
    for bad, kind in ((6, "scale_1_5"), (3.5, "scale_1_5"), ("maybe", "yes_no"), (0.7, "pairwise")):
        with pytest.raises(ValueError):
            label_value(bad, kind)
    judges = {"pref": JudgeScorer("pref", "pref@3", "pairwise")}
    out = labels_from_assessments([_human("pref", 0.0, who=None), _human("pref", "tie", who="  ", case="c2"),
                                   _human("pref", 1.0, who=None, ms=5), _human("pref", 0.5, kind="expectation")], judges)
    assert [(lb.case_id, lb.value, lb.annotator, lb.judge) for lb in out.labels] == [
        ("c1", "A", "anonymous", "pref@3"), ("c2", "tie", "anonymous", "pref@3")]  # the newest of c1's two
    assert out.skipped == ["case 'c1' repeat 0, assessment 'pref': an expectation, not a judgement"]
