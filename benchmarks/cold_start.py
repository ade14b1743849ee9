"""Cold start: wall time of `evalkit run` on a 10-case deterministic suite, end to end.

``wall_s``: tracing on (the default), MLflow off (``--no-mlflow``): the laptop loop. Also measured:
``wall_no_trace_s`` and ``wall_with_mlflow_s`` (the embedded MLflow store; importing mlflow alone
costs 1.7-3 s). ``python -X importtime`` lists which of litellm, mlflow and opentelemetry the
default path imports (``heavy_imports``): litellm and mlflow must not appear.
The package is byte-compiled first (pip does this on install; an editable or uv install may not).
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
        import compileall

        import evalkit

        compileall.compile_dir(str(Path(evalkit.__file__).parent), quiet=1)

        def timed(*extra: str) -> list[float]:
            walls = []
            for i in range(runs + 1):
                t0 = time.perf_counter()
                subprocess.run([exe, "run", "suite.yaml", "--store", f"s{i}{len(extra)}.duckdb", *extra], cwd=d,
                               check=True, capture_output=True)
                walls.append(time.perf_counter() - t0)
            return walls[1:]  # the first run warms the OS file cache

        walls = timed("--no-mlflow")
        no_trace = timed("--no-mlflow", "--no-trace")
        with_mlflow = timed()
        imp = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "evalkit.cli.app", "run", "suite.yaml", "--store", "x.duckdb",
             "--no-mlflow"], cwd=d, capture_output=True, text=True, check=True,
        ).stderr
    heavy = sorted({
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in imp.splitlines()
        if line.rsplit("|", 1)[-1].strip().split(".")[0] in ("litellm", "mlflow", "opentelemetry")
    })
    return {"bench": "cold_start", "cases": 10, "wall_s": round(statistics.median(walls), 3),
            "wall_min_s": round(min(walls), 3), "wall_no_trace_s": round(statistics.median(no_trace), 3),
            "wall_with_mlflow_s": round(statistics.median(with_mlflow), 3), "heavy_imports": heavy}


if __name__ == "__main__":
    print(json.dumps(main()))
