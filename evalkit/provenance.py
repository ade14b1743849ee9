"""Where a run came from: git commit, dirty flag, evalkit version, new run ids."""

from __future__ import annotations

import secrets
import subprocess
from datetime import UTC, datetime
from pathlib import Path


def new_run_id() -> str:
    """Sortable, unique: ``20261127-231455-3f9a1c``."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def git_branch(cwd: Path | None = None) -> str | None:
    """The checked-out branch (``GITHUB_HEAD_REF``/``GITHUB_REF_NAME`` in CI), or None."""
    import os

    for var in ("EVALKIT_GIT_BRANCH", "GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME"):
        if value := os.environ.get(var):  # one read: another thread may change the environment
            return value
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out if out and out != "HEAD" else None


def git_info(cwd: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the repository around ``cwd``; (None, None) outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True,
                timeout=5, check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, dirty


def evalkit_version() -> str:
    from evalkit import __version__

    return __version__
