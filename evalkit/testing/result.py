"""What the ``evaluate`` fixture returns: the case's scores, a verdict and a readable failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.schema import Case, CaseResult, Score

_OUTPUT_CHARS = 300


def _num(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


@dataclass
class CaseEval:
    """One scored case. ``passed`` is true when the case ran and every scorer scored it and passed it."""

    case: Case
    result: CaseResult
    suite: str = ""
    thresholds: dict[str, float | None] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.result.run_id

    @property
    def trace_id(self) -> str | None:
        return self.result.trace_id

    @property
    def output(self) -> Any:
        return self.result.output

    @property
    def scores(self) -> list[Score]:
        return self.result.scores

    def __getitem__(self, name: str) -> Score:
        for s in self.result.scores:
            if s.name == name:
                return s
        raise KeyError(f"no score '{name}' (scores: {', '.join(s.name for s in self.result.scores)})")

    @property
    def failures(self) -> list[Score]:
        """Scores that failed or errored (a not-applicable score is neither)."""
        return [s for s in self.result.scores if s.passed is False or s.outcome == "error"]

    @property
    def passed(self) -> bool:
        return self.result.status == "ok" and not self.failures

    @property
    def trace_command(self) -> str:
        return f"evalkit trace {self.run_id} {self.case.id}"

    def _score_line(self, s: Score) -> str:
        if s.value is None:
            line = f"{s.name}: not scored ({s.error_kind}: {s.error or 'no value'})"
        else:
            bar = self.thresholds.get(s.name)
            if bar is None and isinstance(s.metadata.get("threshold"), int | float):
                bar = float(s.metadata["threshold"])
            if isinstance(s.value, bool):
                line = f"{s.name}: {_num(s.value)} (needs true)"
            elif bar is not None:
                line = f"{s.name}: {_num(s.value)} < threshold {_num(bar)}"
            else:
                line = f"{s.name}: {_num(s.value)} (failed)"
        if s.rationale:
            line += f" — {s.rationale}"
        return line

    def explain(self) -> str:
        """The failure message: what failed, by how much, why, and where the trace is."""
        head = f"case '{self.case.id}'" + (f" of {self.suite}" if self.suite else "")
        if self.result.status != "ok":
            lines = [f"{head}: {self.result.status}: {self.result.error}"]
        else:
            n = len(self.result.scores)
            lines = [f"{head} failed {len(self.failures)} of {n} scorer(s):"]
        lines += [f"  {self._score_line(s)}" for s in self.failures if self.result.status == "ok"]
        out = repr(self.result.output)
        if len(out) > _OUTPUT_CHARS:
            out = out[:_OUTPUT_CHARS] + "…"
        lines.append(f"  output: {out}")
        lines.append(
            f"  trace: {self.trace_id or 'not recorded (tracing off)'}; view it with `{self.trace_command}` "
            "(stored when the pytest session ends)"
        )
        return "\n".join(lines)

    def assert_passed(self) -> None:
        """Fail the test with :meth:`explain` unless every scorer passed."""
        __tracebackhide__ = True
        if not self.passed:
            raise AssertionError(self.explain())

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        """Short, so ``assert result.passed`` shows it whole: the failures, then the trace."""
        if self.passed:
            return f"<CaseEval {self.case.id!r} passed, trace {self.trace_id}>"
        what = (f"{self.result.status}: {self.result.error}" if self.result.status != "ok"
                else "; ".join(self._score_line(s) for s in self.failures))
        return f"<CaseEval {self.case.id!r} FAILED {what} | trace {self.trace_id} | `{self.trace_command}`>"
