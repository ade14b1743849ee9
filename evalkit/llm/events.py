"""Listeners notified after every facade call (success, cache hit or final failure).

Tracing subscribes here to make ``gen_ai`` spans::

    from evalkit.llm import events
    events.LISTENERS.append(lambda rec: ...)

When the list is empty the facade builds no record at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from evalkit.llm.types import CallRecord

LISTENERS: list[Callable[[CallRecord], None]] = []

_log = logging.getLogger(__name__)


def emit(record: CallRecord) -> None:
    """Call every listener; a failing listener is logged and never breaks the call."""
    for listener in list(LISTENERS):
        try:
            listener(record)
        except Exception:  # pragma: no cover - defensive
            _log.exception("evalkit.llm listener failed")
