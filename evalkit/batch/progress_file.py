"""A progress sidecar file next to the store, readable while a run holds the store's write lock."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def progress_path(store_path: Path, run_id: str) -> Path:
    return store_path.parent / "progress" / f"{run_id}.json"


def write_progress(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace the progress file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**data, "updated_at": time.time()}))
    os.replace(tmp, path)


def read_progress(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
