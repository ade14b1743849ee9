"""Live progress for long runs: cases done, cases/s, ETA, errors, tokens and cost."""

from __future__ import annotations

import sys
import time
from typing import Any

from evalkit.schema import CaseResult


class Progress:
    """A rich progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int | None, label: str) -> None:
        self.total = total
        self.done = 0
        self.errors = 0
        self.tokens = 0
        self.cost = 0.0
        self.t0 = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        self._last = 0.0
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} cases/s"), TimeRemainingColumn(), TextColumn("{task.fields[extra]}"),
                transient=True,
            )
            self._task = self._bar.add_task(label, total=total, rate="0", extra="")
            self._bar.start()

    def update(self, result: CaseResult) -> None:
        self.done += 1
        self.errors += result.status != "ok"
        self.tokens += result.usage.input_tokens + result.usage.output_tokens
        self.cost += result.usage.cost_usd
        if self._bar is None:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and self.done != self.total:
            return
        self._last = now
        rate = self.done / max(now - self.t0, 1e-9)
        extra = f"errors {self.errors}" + (f"  tokens {self.tokens}  ${self.cost:.4f}" if self.tokens else "")
        self._bar.update(self._task, completed=self.done, rate=f"{rate:,.0f}", extra=extra)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
