"""A pristine embedded MLflow database, kept once per MLflow version, that new workspaces start from.

Creating an embedded ``mlflow.db`` runs MLflow's schema migrations: 5–18 s on a 2-core machine. The
first workspace pays it and leaves a copy of the fresh database in the user cache
(``$EVALKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/evalkit``, else ``~/.cache/evalkit``); every later
workspace copies it (~0.2 s). The copy's default experiment is pointed at the new workspace. Any
problem with the template (unwritable cache, a damaged or foreign file) falls back to creating the
database the usual way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

ENV = "EVALKIT_CACHE_DIR"


def cache_dir() -> Path:
    """The user-level cache folder evalkit shares across workspaces."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "evalkit"


def template_path() -> Path | None:
    """Where the template for the installed MLflow lives (None when MLflow's version is unknown)."""
    try:
        from importlib.metadata import version

        v = version("mlflow-skinny") if _has("mlflow-skinny") else version("mlflow")
    except Exception:
        return None
    return cache_dir() / f"mlflow-{v}.db"


def _has(dist: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(dist)
    except PackageNotFoundError:
        return False
    return True


def _valid(path: Path) -> bool:
    """A SQLite file with MLflow's schema version recorded and only the default experiment in it."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            heads = con.execute("SELECT version_num FROM alembic_version").fetchall()
            experiments = con.execute("SELECT count(*) FROM experiments").fetchone()
            runs = con.execute("SELECT count(*) FROM runs").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return len(heads) == 1 and experiments == (1,) and runs == (0,)


def seed(db: Path, artifact_root: str | None) -> bool:
    """Create ``db`` from the template (pointing its default experiment at ``artifact_root``); False when
    there is no usable template."""
    template = template_path()
    if template is None or not template.is_file() or not _valid(template) or db.exists():
        return False
    tmp = db.with_name(f".{db.name}.{uuid.uuid4().hex[:8]}")
    try:
        shutil.copyfile(template, tmp)
        if artifact_root:
            con = sqlite3.connect(tmp)
            try:
                con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                            [f"{artifact_root}/0"])
                con.commit()
            finally:
                con.close()
        os.replace(tmp, db)
    except (OSError, sqlite3.Error):
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True


def keep(db: Path) -> None:
    """Save freshly created ``db`` as the template, when there is none yet (best effort, atomic)."""
    template = template_path()
    if template is None or template.exists() or not _valid(db):
        return
    tmp = template.with_name(f".{template.name}.{uuid.uuid4().hex[:8]}")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        src, dst = sqlite3.connect(f"file:{db}?mode=ro", uri=True), sqlite3.connect(tmp)
        try:
            src.backup(dst)  # a consistent copy even while MLflow's engine holds the file open
        finally:
            src.close()
            dst.close()
        os.replace(tmp, template)
    except (OSError, sqlite3.Error):
        with contextlib.suppress(OSError):
            tmp.unlink()
