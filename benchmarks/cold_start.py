"""Cold start: wall time of `evalkit run` on a 10-case deterministic suite, end to end.

``wall_s``: tracing on (the default), MLflow off (``--no-mlflow``): the laptop loop. ``wall_no_trace_s``:
tracing off too. ``default_fresh_s`` / ``default_warm_s``: the default command (MLflow on; on a laptop
its logging goes to a detached process after the verdict) in a new workspace (no MLflow database yet)
and in one that has it; ``ratio_fresh`` / ``ratio_warm`` divide them by ``wall_s`` (goal ≤ 1.5).
``background_fresh_s`` / ``background_warm_s``: from the command's start until the detached logging
has the run and its case traces in MLflow. ``default_next_s``: the default command started the moment
another one returned, while that one's detached logging runs (``ratio_next`` divides it by ``wall_s``).
``inline_warm_s``: MLflow logged inline (``EVALKIT_MLFLOW_DETACH=0``, what CI does). ``python -X importtime``
lists which of litellm, mlflow and opentelemetry the default path imports (``heavy_imports``): litellm
and mlflow must not appear. The package is byte-compiled first (pip does this on install; an editable
or uv install may not). CI variables are cleared.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = """
name: cold-start
dataset: cases.jsonl
target: agent:answer
scorers:
  - exact_match
  - contains: {values: ["42"]}
"""
AGENT = "def answer(q):\n    return '42'\n"


CI_VARS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD")


def _workspace(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "suite.yaml").write_text(SUITE)
    (d / "agent.py").write_text(AGENT)
    (d / "cases.jsonl").write_text("".join(json.dumps({"input": f"q{i}", "expected": "42"}) + "\n" for i in range(10)))
    return d


def _logged(d: Path) -> bool:
    """The detached `evalkit sync --run` has logged the run and its case traces (its log says so)."""
    return any("new case trace" in p.read_text() for p in (d / "logs").glob("mlflow-*.log"))


def _syncing(d: Path) -> bool:
    """A detached `evalkit sync --run` started in workspace ``d`` is still alive (it lingers after logging,
    shutting MLflow down)."""
    here = d.resolve()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"sync" in argv and b"--run" in argv and (proc / "cwd").resolve() == here:
                return True
        except OSError:
            continue
    return False


def _settle(d: Path, t0: float) -> None:
    """Wait (up to 300 s from ``t0``) until ``d`` has no detached logging left: the next timed command
    shares the CPU with no earlier measurement's."""
    while _syncing(d) and time.perf_counter() - t0 < 300:
        time.sleep(0.05)


def main(runs: int = 5) -> dict[str, object]:
    import os

    exe = str(Path(sys.executable).with_name("evalkit"))
    env = {k: v for k, v in os.environ.items() if k not in CI_VARS and k != "EVALKIT_MLFLOW_DETACH"}
    import compileall

    import evalkit

    compileall.compile_dir(str(Path(evalkit.__file__).parent), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        d = _workspace(root / "warm")

        def timed(*extra: str, where: Path = d, extra_env: dict[str, str] | None = None) -> list[float]:
            walls = []
            for i in range(runs + 1):
                t0 = time.perf_counter()
                subprocess.run([exe, "run", "suite.yaml", "--store", f"s{i}{len(extra)}.duckdb", *extra], cwd=where,
                               check=True, capture_output=True, env={**env, **(extra_env or {})})
                walls.append(time.perf_counter() - t0)
            return walls[1:]  # the first run warms the OS file cache

        def default_run(where: Path, store: str) -> tuple[float, float]:
            """(command wall, until the detached logging is done)."""
            for old in (where / "logs").glob("mlflow-*.log"):
                old.unlink()
            t0 = time.perf_counter()
            subprocess.run([exe, "run", "suite.yaml", "--store", store], cwd=where, check=True, capture_output=True,
                           env=env)
            wall = time.perf_counter() - t0
            while not _logged(where) and time.perf_counter() - t0 < 300:
                time.sleep(0.05)
            logged = time.perf_counter() - t0
            _settle(where, t0)
            return wall, logged

        walls = timed("--no-mlflow")
        no_trace = timed("--no-mlflow", "--no-trace")
        fresh = [default_run(_workspace(root / f"fresh{i}"), "s.duckdb") for i in range(runs)]
        default_run(d, "w.duckdb")  # the warm workspace gets its MLflow database
        warm = [default_run(d, f"w{i}.duckdb") for i in range(runs)]
        following = []
        cmd = [exe, "run", "suite.yaml", "--store"]
        for i in range(runs):
            subprocess.run([*cmd, f"n{i}.duckdb"], cwd=d, check=True, capture_output=True, env=env)
            t0 = time.perf_counter()  # the first one's detached logging has just started
            subprocess.run([*cmd, f"n{i}b.duckdb"], cwd=d, check=True, capture_output=True, env=env)
            following.append(time.perf_counter() - t0)
            _settle(d, t0)
        inline = timed(extra_env={"EVALKIT_MLFLOW_DETACH": "0"})
        imp = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "evalkit.cli.app", "run", "suite.yaml", "--store", "x.duckdb"],
            cwd=d, capture_output=True, text=True, check=True, env=env,
        ).stderr
    heavy = sorted({
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in imp.splitlines()
        if line.rsplit("|", 1)[-1].strip().split(".")[0] in ("litellm", "mlflow", "opentelemetry")
    })
    base = statistics.median(walls)
    med = statistics.median
    return {"bench": "cold_start", "cases": 10, "wall_s": round(base, 3), "wall_min_s": round(min(walls), 3),
            "wall_no_trace_s": round(med(no_trace), 3),
            "default_fresh_s": round(med(w for w, _ in fresh), 3), "default_warm_s": round(med(w for w, _ in warm), 3),
            "ratio_fresh": round(med(w for w, _ in fresh) / base, 3), "ratio_warm": round(med(w for w, _ in warm) / base, 3),
            "background_fresh_s": round(med(b for _, b in fresh), 3), "background_warm_s": round(med(b for _, b in warm), 3),
            "default_next_s": round(med(following), 3), "ratio_next": round(med(following) / base, 3),
            "inline_warm_s": round(med(inline), 3), "heavy_imports": heavy, "goals": {"ratio": 1.5, "wall_s": 1.0}}


if __name__ == "__main__":
    print(json.dumps(main()))
