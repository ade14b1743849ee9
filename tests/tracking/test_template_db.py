"""New embedded MLflow stores start from a template of the first one; a bad template is never used."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from evalkit.tracking import template_db
from evalkit.tracking.uri import artifact_root, client


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(template_db.ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def test_the_first_workspace_leaves_a_template_the_next_one_copies(tmp_path: Path, cache: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    client(_uri(first)).create_experiment("kept-out-of-the-template")  # made after the template was saved
    template = template_db.template_path()
    assert template is not None and template.parent == cache and template.is_file()
    names = [r[0] for r in sqlite3.connect(template).execute("SELECT name FROM experiments")]
    assert names == ["Default"]

    second.mkdir()
    assert template_db.seed(second / "mlflow.db", artifact_root(_uri(second)))
    c = client(_uri(second))  # opens the seeded store: MLflow finds its schema current
    exp = c.get_experiment("0")
    assert exp.artifact_location == f"{artifact_root(_uri(second))}/0"
    exp_id = c.create_experiment("works")
    run = c.create_run(exp_id)
    c.log_metric(run.info.run_id, "m", 1.0)
    assert c.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_a_damaged_or_used_template_is_not_copied(tmp_path: Path, cache: Path) -> None:
    template = template_db.template_path()
    assert template is not None
    cache.mkdir()
    template.write_bytes(b"not a database")
    assert not template_db.seed(tmp_path / "x.db", None)
    assert not (tmp_path / "x.db").exists()
    (tmp_path / "w").mkdir()
    client(_uri(tmp_path / "w"))  # creates its store the usual way, despite the bad template
    assert template.read_bytes() == b"not a database"  # and leaves the user's file alone

    template.unlink()
    used = tmp_path / "used"
    used.mkdir()
    c = client(_uri(used))
    assert template.is_file()
    template.unlink()
    c.create_experiment("has-runs")
    template_db.keep(used / "mlflow.db")  # a store that holds more than the default experiment
    assert not template.exists()
