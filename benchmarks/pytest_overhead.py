"""Plugin overhead: N trivial cases as pytest tests, with evalkit (``@cases`` + ``evaluate``, one run
written at the end) vs a plain ``@pytest.mark.parametrize`` without evalkit (``-p no:evalkit``).

Each configuration runs in a fresh subprocess (best of ``--repeats``), so the figure includes
everything the plugin costs: its imports, loading the suite, scoring each case through the runner,
tracing, the batched store write, the summary and the gate. MLflow logging is off (a one-off
per session, not per case). A second, smaller size separates the fixed cost from the per-case
slope. Both wall-clock and CPU time (user + system of the pytest process) are reported;
``added_ms_per_case`` uses CPU time by default because wall time on a shared machine mostly
measures the neighbours (``--measure wall`` to change). Last line: JSON with
``added_ms_per_case`` (total added time / N, fixed costs included; goal <= 1 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AGENT = "def agent(question: str) -> str:\n    return question.upper()\n"

PLAIN = """
import json
from pathlib import Path

import pytest

from agent import agent

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_plain(case):
    assert agent(case["input"]) == case["expected"]
"""

EVALKIT = """
from evalkit.testing import cases

from agent import agent


@cases("suite.yaml")
def test_evalkit(case, evaluate):
    evaluate(case, agent(case.input_text)).assert_passed()
"""

SUITE = """
name: overhead
dataset: cases.jsonl
target: agent:agent
scorers: [exact_match]
thresholds: ["exact_match/pass_rate >= 1"]
"""


def _project(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "conftest.py").write_text("import os, sys\nsys.path.insert(0, os.path.dirname(__file__))\n")
    (root / "agent.py").write_text(AGENT)
    (root / "suite.yaml").write_text(SUITE)
    (root / "cases.jsonl").write_text(
        "".join(json.dumps({"id": f"c{i}", "input": f"q{i}", "expected": f"Q{i}"}) + "\n" for i in range(n))
    )
    (root / "test_plain.py").write_text(PLAIN)
    (root / "test_evalkit.py").write_text(EVALKIT)
    return root


def _run(root: Path, mode: str, n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system, all threads)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MLFLOW_", "EVALKIT_"))}
    env["EVALKIT_STORE"] = str(root / ".evalkit" / "evalkit.duckdb")
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    if mode == "plain":
        args += ["-p", "no:evalkit", "test_plain.py"]
    else:
        args += ["--evalkit-no-mlflow", "test_evalkit.py"] + (["--evalkit-no-trace"] if mode == "no_trace" else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or f"{n} passed" not in proc.stdout:
        raise SystemExit(f"{mode} run failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3, help="runs per configuration (the best is kept)")
    ap.add_argument("--measure", choices=("cpu", "wall"), default="cpu",
                    help="what added_ms_per_case compares: CPU time of the pytest process (default; "
                         "stable on a shared machine) or wall-clock time")
    args = ap.parse_args()
    n, small = args.cases, max(1, args.cases // 10)
    modes = ("plain", "evalkit", "no_trace")
    wall: dict[tuple[str, int], float] = {}
    cpu: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        roots = {size: _project(Path(tmp) / f"n{size}", size) for size in (n, small)}
        for _ in range(args.repeats):  # interleaved, so load changes hit every configuration alike
            for size, root in roots.items():
                for mode in modes:
                    w, c = _run(root, mode, size)
                    wall[mode, size] = min(wall.get((mode, size), w), w)
                    cpu[mode, size] = min(cpu.get((mode, size), c), c)

    def added(t: dict[tuple[str, int], float], mode: str, size: int) -> float:
        return (t[mode, size] - t["plain", size]) * 1000

    def slope(t: dict[tuple[str, int], float], mode: str) -> float:
        return (added(t, mode, n) - added(t, mode, small)) / (n - small)

    return {
        "bench": "pytest_overhead", "cases": n, "repeats": args.repeats, "measure": args.measure,
        "wall_s": {m: round(wall[m, n], 3) for m in modes},
        "cpu_s": {m: round(cpu[m, n], 3) for m in modes},
        "wall_added_ms_per_case": round(added(wall, "evalkit", n) / n, 4),
        "cpu_added_ms_per_case": round(added(cpu, "evalkit", n) / n, 4),
        "cpu_added_ms_per_case_no_trace": round(added(cpu, "no_trace", n) / n, 4),
        "cpu_fixed_added_ms": round(added(cpu, "evalkit", n) - slope(cpu, "evalkit") * n, 1),
        "cpu_marginal_ms_per_case": round(slope(cpu, "evalkit"), 4),
        "cpu_marginal_ms_per_case_no_trace": round(slope(cpu, "no_trace"), 4),
        "added_ms_per_case": round(added(cpu if args.measure == "cpu" else wall, "evalkit", n) / n, 4),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
