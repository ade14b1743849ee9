"""Cold start: wall time of `evalkit run` on a 10-case deterministic suite, end to end.

Also checks with ``python -X importtime`` that litellm, mlflow and opentelemetry are not imported.
Last line: JSON with ``wall_s`` (median of runs) and ``heavy_imports``.
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


def main(runs: int = 5) -> dict[str, object]:
    exe = str(Path(sys.executable).with_name("evalkit"))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "suite.yaml").write_text(SUITE)
        (d / "agent.py").write_text(AGENT)
        (d / "cases.jsonl").write_text("".join(json.dumps({"input": f"q{i}", "expected": "42"}) + "\n" for i in range(10)))
        walls = []
        for i in range(runs + 1):
            t0 = time.perf_counter()
            subprocess.run([exe, "run", "suite.yaml", "--store", f"s{i}.duckdb"], cwd=d, check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
        walls = walls[1:]  # the first run warms the OS file cache
        imp = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "evalkit.cli.app", "run", "suite.yaml", "--store", "x.duckdb"],
            cwd=d, capture_output=True, text=True, check=True,
        ).stderr
    heavy = sorted({
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in imp.splitlines()
        if line.rsplit("|", 1)[-1].strip().split(".")[0] in ("litellm", "mlflow", "opentelemetry")
    })
    return {"bench": "cold_start", "cases": 10, "wall_s": round(statistics.median(walls), 3),
            "wall_min_s": round(min(walls), 3), "heavy_imports": heavy}


if __name__ == "__main__":
    print(json.dumps(main()))
