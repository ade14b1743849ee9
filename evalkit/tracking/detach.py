"""MLflow logging off the critical path: after a local ``evalkit run`` prints its verdict, a detached
``evalkit sync --run RUN_ID`` process logs the run and its case traces, and the command exits.

Importing mlflow and writing the run cost 2–5 s (more the first time a workspace creates its
embedded store); none of it changes the verdict. In CI (``CI``, ``GITHUB_ACTIONS``, ``GITLAB_CI``,
``BUILDKITE``, ``JENKINS_URL``, ``TF_BUILD``) the run logs inline instead, so it is in MLflow when the
job ends; ``EVALKIT_MLFLOW_DETACH=0`` does the same anywhere, ``=1`` detaches even in CI. A detached
process that dies (the machine sleeps, the server is down) leaves the run unsynced in the store:
``evalkit sync`` logs it later. Its output goes to ``.evalkit/logs/mlflow-<run>.log``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DETACH_ENV = "EVALKIT_MLFLOW_DETACH"
CI_VARS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD")


def in_ci() -> bool:
    return any(os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no") for v in CI_VARS)


def should_detach() -> bool:
    """Whether a CLI run hands its MLflow logging to a background process (see the module docstring)."""
    raw = os.environ.get(DETACH_ENV, "").strip().lower()
    if raw in ("0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    return not in_ci()


def log_in_background(run_id: str, *, store: Path | str, tracking_uri: str | None, team: str | None,
                      traces_mode: str | None, log_dir: Path) -> Path:
    """Start ``evalkit sync --run RUN_ID`` detached from this process (its own session: Ctrl-C in the
    terminal does not reach it); returns the log file it writes."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"mlflow-{run_id}.log"
    cmd = [sys.executable, "-m", "evalkit.cli.app", "sync", "--run", run_id, "--store", str(store)]
    if traces_mode != "none":
        cmd += ["--traces-mode", traces_mode] if traces_mode else ["--traces"]
    if tracking_uri:
        cmd += ["--tracking-uri", tracking_uri]
    if team:
        cmd += ["--team", team]
    env = {**os.environ, DETACH_ENV: "0"}
    with open(log, "ab") as out:
        subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True,
                         close_fds=True)
    return log
