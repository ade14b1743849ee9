"""A workspace with several runs of two agent versions (and a third on another branch), and `evalkit ui` on it."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import EVALKIT, REPO
from tests.tracking._runs import make_run

HOSTILE = "helper<img src=x onerror=window.__pwned=1>"


@dataclass
class Workspace:
    root: Path
    store: Path
    runs: dict[str, str] = field(default_factory=dict)  # label -> evalkit run id


def build(root: Path) -> Workspace:
    """qa: bot@1.0 (0.6), bot@2.0 (0.95 then 0.3: a regression), bot@3.0 (1.0, branch feature/x); support: one run."""
    ws = Workspace(root, root / ".evalkit" / "evalkit.duckdb")
    plan = [("v1", 0.6, "bot", "1.0", "qa", "main"), ("v2-good", 0.95, "bot", "2.0", "qa", "main"),
            ("v2-bad", 0.3, "bot", "2.0", "qa", "main"), ("v3", 1.0, "bot", "3.0", "qa", "feature/x"),
            ("support", 0.7, HOSTILE, "1.0", "support", "main")]
    for label, quality, agent, version, suite, branch in plan:
        ws.runs[label] = make_run(ws.store, quality=quality, n=30, agent=agent, version=version, suite=suite,
                                  mlflow=True, tracing=True, branch=branch)
    return ws


@contextmanager
def serve(ws: Workspace, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`evalkit ui` on the workspace (a free port); yields its address."""
    proc = subprocess.Popen([*EVALKIT, "ui", "--port", "0", *args], cwd=ws.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "EVALKIT_STORE": str(ws.store), **(env or {})})
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert m, line + proc.stderr.read() if proc.poll() is not None else line
        yield m.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
