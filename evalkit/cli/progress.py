"""Live progress for long runs: cases done, cases/s, ETA, errors, tokens and cost.

On a terminal a rich progress bar; elsewhere (CI logs) a line every 10 s once a run is long.
Either way a sidecar JSON file next to the store is refreshed every second, so `evalkit status`
can read progress while the run holds the store's write lock.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from evalkit.batch.progress_file import progress_path, write_progress
from evalkit.schema import CaseResult


class Progress:
    """Counts finished cases and reports them to the terminal and the sidecar file."""

    def __init__(self, total: int | None, label: str, store_path: Path | None = None, run_id: str | None = None,
                 done: int = 0) -> None:
        self.total = total
        self.already = done
        self.done = 0
        self.errors = 0
        self.tokens = 0
        self.cost = 0.0
        self.t0 = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        self._last_bar = self._last_file = 0.0
        self._last_log = time.perf_counter()
        self._file = progress_path(store_path, run_id) if store_path is not None and run_id else None
        self.run_id = run_id
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            from evalkit.safe_text import terminal_line

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} cases/s"), TimeRemainingColumn(), TextColumn("{task.fields[extra]}"),
                transient=True,
            )
            self._task = self._bar.add_task(terminal_line(label), total=total, completed=done, rate="0", extra="")
            self._bar.start()

    def snapshot(self, status: str = "running") -> dict[str, Any]:
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        rate = self.done / elapsed
        done = self.already + self.done
        remaining = (self.total - done) if self.total is not None else None
        return {"run_id": self.run_id, "status": status, "done": done, "total": self.total, "errors": self.errors,
                "cases_per_s": round(rate, 2), "eta_s": round(remaining / rate, 1) if remaining and rate > 0 else None,
                "elapsed_s": round(elapsed, 1), "tokens": self.tokens, "cost_usd": round(self.cost, 6)}

    def update(self, result: CaseResult) -> None:
        self.done += 1
        self.errors += result.status != "ok"
        self.tokens += result.usage.input_tokens + result.usage.output_tokens
        self.cost += result.usage.cost_usd
        now = time.perf_counter()
        if self._file is not None and now - self._last_file >= 1.0:
            self._last_file = now
            write_progress(self._file, self.snapshot())
        if self._bar is not None and (now - self._last_bar >= 0.1 or self.already + self.done == self.total):
            self._last_bar = now
            snap = self.snapshot()
            extra = f"errors {self.errors}" + (f"  tokens {self.tokens}  ${self.cost:.4f}" if self.tokens else "")
            self._bar.update(self._task, completed=snap["done"], rate=f"{snap['cases_per_s']:,.0f}", extra=extra)
        elif self._bar is None and now - self._last_log >= 10.0:
            self._last_log = now
            snap = self.snapshot()
            sys.stderr.write(f"progress: {snap['done']}/{snap['total']} cases, {snap['cases_per_s']:.0f}/s, "
                             f"ETA {snap['eta_s']} s, errors {snap['errors']}\n")

    def set_totals(self, done: int, errors: int, tokens: int, cost_usd: float) -> None:
        """Progress reported as running totals (the Ray engine merges results in batches)."""
        self.done, self.errors, self.tokens, self.cost = done - self.already, errors, tokens, cost_usd
        if self._file is not None:
            write_progress(self._file, self.snapshot())
        if self._bar is not None:
            snap = self.snapshot()
            self._bar.update(self._task, completed=snap["done"], rate=f"{snap['cases_per_s']:,.0f}", extra=f"errors {errors}")

    def close(self, status: str = "finished") -> None:
        if self._bar is not None:
            self._bar.stop()
        if self._file is not None:
            write_progress(self._file, self.snapshot(status))
