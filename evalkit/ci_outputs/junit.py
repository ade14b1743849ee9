"""JUnit XML: one testcase per case x scorer, plus the gate's own checks, for CI test reports."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC
from pathlib import Path

from evalkit import safe_text
from evalkit.ci_outputs._cases import CaseRow, CaseTable, ScoreRow, normalise_cases
from evalkit.gate.verdict import GateResult
from evalkit.schema import RunSummary

__all__ = ["render_junit", "write_junit"]

_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MESSAGE_MAX = 200


def _clean(text: object) -> str:
    """Text for XML: control characters visible (:func:`evalkit.safe_text.visible`), anything else XML
    cannot hold (lone surrogates, U+FFFE) replaced."""
    return _INVALID_XML.sub("\ufffd", safe_text.visible(text))


def _message(text: str | None, fallback: str) -> str:
    first = (text or "").strip().splitlines()[0] if (text or "").strip() else fallback
    return _clean(first if len(first) <= _MESSAGE_MAX else first[: _MESSAGE_MAX - 1] + "…")


def _fmt(v: float | None) -> str:
    return "null" if v is None else f"{v:.6g}"


class _Counts:
    def __init__(self) -> None:
        self.tests = self.failures = self.errors = self.skipped = 0
        self.time = 0.0

    def add(self, other: _Counts) -> None:
        self.tests += other.tests
        self.failures += other.failures
        self.errors += other.errors
        self.skipped += other.skipped
        self.time += other.time

    def stamp(self, el: ET.Element) -> None:
        el.set("tests", str(self.tests))
        el.set("failures", str(self.failures))
        el.set("errors", str(self.errors))
        el.set("skipped", str(self.skipped))
        el.set("time", f"{self.time:.3f}")


def _testcase(parent: ET.Element, counts: _Counts, name: str, classname: str, seconds: float) -> ET.Element:
    tc = ET.SubElement(
        parent, "testcase", name=_clean(name), classname=_clean(classname), time=f"{seconds:.3f}"
    )
    counts.tests += 1
    counts.time += seconds
    return tc


def _skip(tc: ET.Element, counts: _Counts, message: str) -> None:
    ET.SubElement(tc, "skipped", message=_message(message, "skipped"))
    counts.skipped += 1


def _error(tc: ET.Element, counts: _Counts, kind: str | None, text: str | None, fallback: str, trace: str) -> None:
    el = ET.SubElement(tc, "error", message=_message(text, fallback), type=_clean(kind or "internal"))
    el.text = _clean(f"{text or fallback}{trace}")
    counts.errors += 1


def _outcome(tc: ET.Element, counts: _Counts, case: CaseRow, score: ScoreRow | None) -> None:
    """A testcase's result: ``<failure>`` a failed score, ``<error type="<error kind>">`` an error,
    ``<skipped>`` a score that does not apply or a case the run cancelled before it ran."""
    trace = f"\ntrace_id: {case.trace_id}" if case.trace_id else ""
    if score is None:
        if case.outcome == "cancelled":
            _skip(tc, counts, f"cancelled: {case.error or 'the run was interrupted'}")
        elif case.target_failed or case.error:
            _error(tc, counts, case.error_kind or "target_exception", case.error, "case failed", trace)
        else:
            _skip(tc, counts, "scorer produced no score for this case")
        return
    if score.outcome == "not_applicable":
        _skip(tc, counts, f"not applicable: {score.error or 'the case lacks what this scorer needs'}")
        return
    if score.outcome == "error":
        if score.error_kind == "cancelled":
            _skip(tc, counts, f"cancelled: {score.error or 'the run was interrupted'}")
            return
        text = score.error
        if case.target_failed and case.error:  # not scored because the target failed: say why it failed
            text = f"{score.error or 'not scored'}: {case.error}"
        _error(tc, counts, score.error_kind, text, "scorer error", trace)
        return
    detail = f"value: {_fmt(score.value)}\npassed: {score.passed}"
    detail += f"\nrationale: {score.rationale}" if score.rationale else ""
    detail += trace
    if score.passed is False:
        el = ET.SubElement(
            tc,
            "failure",
            message=_message(score.rationale, f"{score.name} = {_fmt(score.value)}"),
            type="ScoreFailed",
        )
        el.text = _clean(detail)
        counts.failures += 1
    else:
        out = ET.SubElement(tc, "system-out")
        out.text = _clean(detail)


def _props(suite_el: ET.Element, props: dict[str, object]) -> None:
    el = ET.SubElement(suite_el, "properties")
    for k, v in props.items():
        if v is not None:
            ET.SubElement(el, "property", name=k, value=_clean(v))


def _timestamp(summary: RunSummary) -> str | None:
    ts = summary.started_at
    if ts is None:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.strftime("%Y-%m-%dT%H:%M:%S")


def render_junit(summary: RunSummary, gate: GateResult | None, cases: CaseTable | None) -> str:
    """The JUnit XML document as a string (UTF-8, with declaration)."""
    rows = normalise_cases(cases)
    multi_repeat = any(r.repeat for r in rows)
    scorer_names = [s.name for s in summary.scorers]
    for r in rows:
        scorer_names += [s.name for s in r.scores if s.name not in scorer_names]
    if not scorer_names and rows:
        scorer_names = ["run"]

    root = ET.Element("testsuites", name=_clean(f"evalkit {summary.suite}"))
    total = _Counts()
    stamp = _timestamp(summary)
    by_name = {s.name: s for s in summary.scorers}
    for idx, scorer in enumerate(scorer_names):
        classname = f"{summary.suite}/{scorer}"
        suite_el = ET.SubElement(root, "testsuite", name=_clean(classname), id=str(idx))
        if stamp:
            suite_el.set("timestamp", stamp)
        s = by_name.get(scorer)
        _props(
            suite_el,
            {
                "run_id": summary.run_id,
                "scorer": scorer,
                "mean": None if s is None or s.mean is None else _fmt(s.mean),
                "mean_ci": None
                if s is None or s.mean_ci is None
                else f"[{_fmt(s.mean_ci[0])}, {_fmt(s.mean_ci[1])}]",
                "pass_rate": None if s is None or s.pass_rate is None else _fmt(s.pass_rate),
                "pass_rate_ci": None
                if s is None or s.pass_rate_ci is None
                else f"[{_fmt(s.pass_rate_ci[0])}, {_fmt(s.pass_rate_ci[1])}]",
                "scored": None if s is None else s.scored,
                "not_applicable": None if s is None else s.not_applicable,
                "errors": None if s is None else s.errors,
            },
        )
        counts = _Counts()
        for case in rows:
            score = next((x for x in case.scores if x.name == scorer), None)
            if score is None and case.scores and case.outcome != "cancelled" and not case.target_failed:
                continue  # this scorer did not run on the case (a scorer added later, a subset)
            name = f"{case.case_id} [repeat {case.repeat}]" if multi_repeat else case.case_id
            tc = _testcase(suite_el, counts, name, classname, (case.latency_ms or 0.0) / 1000.0)
            _outcome(tc, counts, case, score)
        counts.stamp(suite_el)
        total.add(counts)

    if gate is not None:
        _gate_suite(root, summary, gate, len(scorer_names), stamp, total)
    total.stamp(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


_KNOWN_STATUSES = ("passed", "failed", "infra_error", "incomplete")


def _ledger(summary: RunSummary) -> str:
    planned = f"planned {summary.planned}, " if summary.planned is not None else ""
    missing = f", missing {summary.missing}" if summary.planned is not None else ""
    return (f"{planned}completed {summary.completed}, errored {summary.errors}, cancelled {summary.cancelled}"
            f"{missing}")


def _gate_suite(
    root: ET.Element, summary: RunSummary, gate: GateResult, idx: int, stamp: str | None, total: _Counts
) -> None:
    classname = f"{summary.suite}/gate"
    suite_el = ET.SubElement(root, "testsuite", name=_clean(classname), id=str(idx))
    if stamp:
        suite_el.set("timestamp", stamp)
    _props(
        suite_el,
        {"run_id": summary.run_id, "status": gate.status, "exit_code": gate.exit_code, "reason": gate.reason},
    )
    counts = _Counts()
    tc = _testcase(suite_el, counts, "run complete", classname, 0.0)
    if gate.status == "incomplete":
        el = ET.SubElement(tc, "error", message=_message(gate.reason, "run incomplete"), type="Incomplete")
        el.text = _clean(f"{gate.reason}\n{_ledger(summary)}")
        counts.errors += 1
    elif gate.status not in _KNOWN_STATUSES:  # a verdict this writer does not know: never a pass
        el = ET.SubElement(tc, "error", message=_message(gate.reason, f"gate {gate.status}"), type=_clean(gate.status))
        el.text = _clean(gate.reason)
        counts.errors += 1
    else:
        ET.SubElement(tc, "system-out").text = _clean(_ledger(summary))
    tc = _testcase(suite_el, counts, f"errors/rate<={gate.max_error_rate:g}", classname, 0.0)
    if gate.status == "infra_error":
        el = ET.SubElement(
            tc, "error", message=_message(gate.reason, "error budget exceeded"), type="InfraError"
        )
        el.text = _clean(gate.reason)
        counts.errors += 1
    for check in gate.checks:
        name = f"{check.metric}{check.op}{check.value:g}" + (
            "" if check.mode == "point" else f"@{check.mode}"
        )
        tc = _testcase(suite_el, counts, name, classname, 0.0)
        if not check.passed:
            el = ET.SubElement(
                tc, "failure", message=_message(check.message, "threshold not met"), type="ThresholdFailed"
            )
            el.text = _clean(check.message)
            counts.failures += 1
    if gate.baseline is not None:
        for comp in gate.baseline.comparisons:
            if not comp.gating:
                continue
            tc = _testcase(suite_el, counts, f"no regression: {comp.label}", classname, 0.0)
            text = (
                f"{comp.label}: baseline {_fmt(comp.baseline)} -> current {_fmt(comp.current)}, "
                f"delta {_fmt(comp.delta)}, p={_fmt(comp.p_adjusted)} ({comp.test}), n={comp.n_shared}"
            )
            if comp.regression and gate.fail_on_regression:
                el = ET.SubElement(tc, "failure", message=_message(text, "regression"), type="Regression")
                el.text = _clean(text + ("\npass->fail: " + ", ".join(comp.to_fail) if comp.to_fail else ""))
                counts.failures += 1
            else:
                ET.SubElement(tc, "system-out").text = _clean(text)
    counts.stamp(suite_el)
    total.add(counts)


def write_junit(
    path: str | Path, summary: RunSummary, gate: GateResult | None, cases: CaseTable | None
) -> Path:
    """Write :func:`render_junit` to ``path`` (parents created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_junit(summary, gate, cases), encoding="utf-8")
    return p
