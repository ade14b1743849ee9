"""How many worker processes a run gets (``--workers N|auto``, ``EVALKIT_WORKERS``, ``defaults: workers:``).

Kept apart from :mod:`evalkit.batch.local_workers` so planning a run imports nothing of the engine.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from evalkit.errors import UserError

if TYPE_CHECKING:
    from evalkit.pipeline.plan import Door
    from evalkit.pipeline.settings import RunSettings
    from evalkit.suite import Suite

# --workers auto: more than one process only for runs this large, one per this many case runs, at most this many
AUTO_MIN_CASES, AUTO_CASES_PER_WORKER, AUTO_MAX = 2000, 1000, 8


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def auto_workers(planned: int, *, from_file: bool, cores: int) -> int:
    """``--workers auto``: one process, unless the run has a suite file, the machine more than one core and
    the plan at least :data:`AUTO_MIN_CASES` case × repeats; then one per :data:`AUTO_CASES_PER_WORKER`,
    at most one per core and :data:`AUTO_MAX`."""
    if not from_file or cores < 2 or planned < AUTO_MIN_CASES:
        return 1
    return max(1, min(cores, planned // AUTO_CASES_PER_WORKER, AUTO_MAX))


def _not_rebuildable(suite: Suite, door: Door) -> str | None:
    """Why worker processes cannot rebuild this suite's target and scorers from its file (None: they can)."""
    if suite.path is None or not suite.path.is_file():
        return "worker processes rebuild the target and scorers from the suite file, and this suite has none"
    if door == "cli":
        return None  # `evalkit run` built them from the file
    from evalkit.batch.chunks import fingerprint
    from evalkit.suite import load_suite

    try:
        again = load_suite(suite.path)
    except UserError as exc:
        return f"the suite file does not load again ({exc.message})"
    if fingerprint(again.target, again.scorers) != fingerprint(suite.target, suite.scorers):
        return ("the suite's target or scorers were replaced in Python, and worker processes rebuild them from "
                "the suite file")
    return None


def plan_workers(suite: Suite, settings: RunSettings, planned: int, door: Door) -> int | None:
    """The run's worker count: local processes (1: the in-process engine), or Ray workers (None: Ray's CPUs).

    Workers explicitly asked for that cannot rebuild the suite are a :class:`UserError`.
    """
    asked = settings.workers
    if settings.engine == "ray":
        return None if asked == "auto" else int(asked)
    if asked == 1:
        return 1
    if asked == "auto":
        n = auto_workers(planned, from_file=suite.path is not None and suite.path.is_file(), cores=cores())
        return n if n == 1 or _not_rebuildable(suite, door) is None else 1
    why = _not_rebuildable(suite, door)
    if why is not None:
        flag = f"--workers {asked}" if door == "cli" else f"workers={asked}"
        raise UserError(f"{flag}: {why}; run it with {'--workers 1' if door == 'cli' else 'workers=1'}")
    return int(asked)


__all__ = ["auto_workers", "cores", "plan_workers"]
