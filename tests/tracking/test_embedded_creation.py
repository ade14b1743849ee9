"""Two processes that create one embedded MLflow store at once both get a working store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

CREATE = """
import sys
from evalkit.tracking.mlflow_log import ensure_experiment
from evalkit.tracking.uri import client
uri = f"sqlite:///{sys.argv[1]}"
c = client(uri)
exp = ensure_experiment(c, "shared-suite", uri)
run = c.create_run(exp)
c.log_metric(run.info.run_id, "m", float(sys.argv[2]))
c.set_terminated(run.info.run_id)
print(exp)
"""


def test_first_creation_by_two_processes_does_not_race(tmp_path: Path) -> None:
    db = tmp_path / ".evalkit" / "mlflow.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", CREATE, str(db), str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert outs[0][0].strip() == outs[1][0].strip()  # one experiment, found by the second creator
    from evalkit.tracking.uri import client

    c = client(f"sqlite:///{db}")
    exp = c.get_experiment_by_name("shared-suite")
    assert exp is not None
    runs = c.search_runs([exp.experiment_id])
    assert sorted(r.data.metrics["m"] for r in runs) == [0.0, 1.0]
    assert not Path(f"{db}.creating").exists()
