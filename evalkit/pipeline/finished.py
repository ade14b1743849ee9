"""The one finished-run type every door returns: summary, gate verdict, where it is stored and tracked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.errors import EXIT_INTERRUPTED

if TYPE_CHECKING:
    import polars as pl

    from evalkit.gate.verdict import GateResult
    from evalkit.schema import RunSummary
    from evalkit.tracking.mlflow_traces import TraceJob, TraceLogResult


@dataclass
class FinishedRun:
    """A run after finalise, gate, outputs and tracking, with its ``cases`` and ``scores`` frames."""

    run_id: str
    summary: RunSummary
    gate: GateResult
    store_path: Path | None = None
    mlflow_run_id: str | None = None
    notes: list[str] = field(default_factory=list)
    resume_command: str | None = None
    cases: pl.DataFrame | None = None
    scores: pl.DataFrame | None = None
    trace_job: TraceJob | None = None  # per-case MLflow traces, logging in the background

    def wait_traces(self, timeout: float | None = None) -> TraceLogResult | None:
        """Wait for the background MLflow trace logging (None: none started, or still running at ``timeout``)."""
        if self.trace_job is None or not self.trace_job.wait(timeout):
            return None
        return self.trace_job.result

    @property
    def status(self) -> str:
        return self.summary.status

    @property
    def passed(self) -> bool:
        return self.gate.passed

    @property
    def metrics(self) -> dict[str, float]:
        return self.summary.metrics()

    @property
    def exit_code(self) -> int:
        """What the CLI exits with: 130 for an interrupted run, else the gate's code."""
        return EXIT_INTERRUPTED if self.summary.status == "interrupted" else int(self.gate.exit_code)

    def wide(self) -> pl.DataFrame:
        """One row per case and repeat, one column per scorer value."""
        if self.cases is None or self.scores is None:
            raise ValueError("this run carries no case frames")
        if self.scores.height == 0:
            return self.cases
        piv = self.scores.pivot(on="name", index=["case_id", "repeat"], values="value", aggregate_function="first")
        return self.cases.join(piv, on=["case_id", "repeat"], how="left")
