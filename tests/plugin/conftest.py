"""Plugin tests run pytest in a subprocess inside an isolated project folder.

(``pytester`` is not used: ``pytest_plugins`` in a non-root conftest is an error under pytest 8+
when the suite is collected from the repository root, and the root conftest is not ours.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
_COUNTS = re.compile(r"(\d+) (passed|failed|error|errors|skipped|deselected)")


@dataclass
class PytestRun:
    ret: int
    out: str

    def outcomes(self) -> dict[str, int]:
        tail = self.out.strip().splitlines()[-1] if self.out.strip() else ""
        return {k.rstrip("s") if k == "errors" else k: int(n) for n, k in _COUNTS.findall(tail)}


class Project:
    """A throwaway project: a pytest.ini, test files, its own evalkit store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = path / ".evalkit" / "evalkit.duckdb"
        (path / "pytest.ini").write_text("[pytest]\n")

    def write(self, name: str, text: str) -> Path:
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def copy_demo(self) -> None:
        shutil.copytree(REPO / "datasets" / "demo", self.path / "datasets" / "demo")
        (self.path / "tests").mkdir(exist_ok=True)
        shutil.copy(REPO / "tests" / "examples" / "test_demo_agent.py", self.path / "tests" / "test_demo_agent.py")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST_", "MLFLOW_", "EVALKIT_")) and not k.endswith("_API_KEY")}
        env |= {"EVALKIT_STORE": str(self.store), "EVALKIT_CACHE": str(self.path / ".evalkit" / "cache.sqlite"),
                "PYTHONDONTWRITEBYTECODE": "1"}
        return env | extra

    def pytest(self, *args: str, mlflow: bool = False, cache: bool = False, **env: str) -> PytestRun:
        cmd = [sys.executable, "-m", "pytest", "-q", *args]
        if not cache:
            cmd[4:4] = ["-p", "no:cacheprovider"]
        if not mlflow:
            cmd.append("--evalkit-no-mlflow")
        proc = subprocess.run(cmd, cwd=self.path, env=self.env(**env), capture_output=True, text=True)
        return PytestRun(proc.returncode, proc.stdout + proc.stderr)

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        import duckdb

        con = duckdb.connect(str(self.store), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)
