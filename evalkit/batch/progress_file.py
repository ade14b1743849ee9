"""A progress sidecar file next to the store: cheap to read while a run writes, and it names the process
running the run (host and pid), so ``evalkit status`` can tell a live run from one whose process is gone."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any


def progress_path(store_path: Path, run_id: str) -> Path:
    """``progress/<run>.json`` beside the store file (a team store's: in this machine's workspace)."""
    from evalkit.store.db import local_anchor

    return local_anchor(store_path).parent / "progress" / f"{run_id}.json"


def write_progress(path: Path, data: dict[str, Any]) -> bool:
    """Atomically replace the progress file; False when it cannot be written (a full disk): progress is
    advisory, the store is the record, so this never fails a run."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({**data, "updated_at": time.time(), "pid": os.getpid(),
                                   "host": socket.gethostname()}))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True


def read_progress(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def process_gone(snap: dict[str, Any] | None) -> bool:
    """The progress file names a process on this machine that no longer exists."""
    if not snap or not isinstance(snap.get("pid"), int) or snap.get("host") != socket.gethostname():
        return False
    try:
        os.kill(snap["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return False
