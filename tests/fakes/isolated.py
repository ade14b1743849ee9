"""A fresh interpreter's environment for tests that run evalkit as a user would, optionally with a
``sitecustomize`` hook (e.g. one that makes a package unimportable, as if it were not installed)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def isolated_env(ws: Path, *, hook: str | None = None, name: str = "_hook") -> dict[str, str]:
    """The environment without this session's pytest, MLflow, evalkit and API-key variables, with the
    repository importable, the store and LLM cache under ``ws/.evalkit``, and ``hook`` (the text of a
    ``sitecustomize.py``, written to ``ws/<name>``) loaded first when given."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "MLFLOW_", "EVALKIT_")) and not k.endswith("_API_KEY") and k != "PYTHONPATH"}
    path = [str(REPO)]
    if hook is not None:
        folder = ws / name
        folder.mkdir(exist_ok=True)
        (folder / "sitecustomize.py").write_text(hook)
        path.insert(0, str(folder))
    return env | {"PYTHONPATH": os.pathsep.join(path), "PYTHONDONTWRITEBYTECODE": "1",
                  "EVALKIT_STORE": str(ws / ".evalkit" / "evalkit.duckdb"),
                  "EVALKIT_CACHE": str(ws / ".evalkit" / "llm_cache.sqlite"),
                  "EVALKIT_MLFLOW_DETACH": "0"}  # MLflow inline, as in CI: the tests read it right after a run


def imported_by(code: str, modules: tuple[str, ...]) -> tuple[str, list[str]]:
    """Run ``code`` in a fresh interpreter (it must exit 0): its output, and which of ``modules`` it imported."""
    import json
    import subprocess
    import sys

    probe = (f"{code}\nimport json, sys\n"
             f"print('IMPORTED', json.dumps(sorted(m for m in {modules!r} if m in sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    head, sep, found = out.stdout.rpartition("IMPORTED ")
    assert sep, out.stdout
    return head, json.loads(found)
