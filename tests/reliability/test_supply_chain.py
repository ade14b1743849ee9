"""Supply chain: no known-bad release in the lock or allowed by pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO

pytestmark = pytest.mark.reliability
CHECK = REPO / ".ci" / "check_lock.py"


def _known_bad() -> list[tuple[str, str]]:
    out = []
    for line in (REPO / ".ci" / "known-bad-versions.txt").read_text().splitlines():
        entry = line.partition("#")[0].strip()
        if entry:
            name, _, version = entry.partition("==")
            out.append((name, version))
    return out


def test_the_lock_pins_no_known_bad_release() -> None:
    p = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout
    assert "none found" in p.stdout


def test_the_check_fails_on_a_bad_pin(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("duckdb==2.0.1 \\\n    --hash=sha256:00\nLiteLLM==1.82.8 \\\n    --hash=sha256:11\n")
    p = subprocess.run([sys.executable, str(CHECK), str(lock)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stdout.startswith("requirements.lock: litellm==1.82.8 is a known-bad release")


def test_pyproject_excludes_every_known_bad_release() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lists = {"dependencies": project["dependencies"], **project["optional-dependencies"]}
    bad = _known_bad()
    assert bad
    for where, deps in lists.items():  # the core list and every extra that names the package
        reqs = {Requirement(d).name.lower(): Requirement(d) for d in deps}
        allowed = [f"{n}=={v}" for n, v in bad if n in reqs and reqs[n].specifier.contains(v, prereleases=True)]
        assert allowed == [], where
    named = {Requirement(d).name.lower() for deps in lists.values() for d in deps}
    assert all(name in named for name, _ in bad)  # every known-bad package is pinned somewhere
