"""One MLflow trace per case × repeat of an evalkit run, with its scores as assessments.

MLflow's GenAI views (Evaluation runs, Traces, Quality) read traces, not run metrics. After a run
is logged (:func:`evalkit.tracking.mlflow_log.log_run`), :func:`log_case_traces` writes one trace
per selected case × repeat, linked to that MLflow run (``mlflow.sourceRun``):

- a root span with the case's (redacted) inputs and output, latency, token usage and cost;
- one assessment per score: LLM-judge scores as ``Feedback`` from ``LLM_JUDGE`` (source id
  ``judge@version``), other scorers as ``Feedback`` from ``CODE``, a scorer error as feedback
  carrying an ``AssessmentError`` (never a value), the expected value as ``Expectation``\\ s;
- tags ``evalkit.run_id``, ``evalkit.case_id``, ``evalkit.repeat`` and ``evalkit.trace_id`` (the
  observability store's trace: the full span tree stays in DuckDB).

The fast path: each trace is a :class:`~mlflow.entities.TraceInfo` with its assessments embedded,
written with the tracking store's ``start_trace`` (one transaction per case on SQL stores, one
request on a server), and the root spans of a batch in one ``log_spans`` call. Trace and
assessment ids are derived from (experiment, run, case, repeat), and traces already tagged with
the run are skipped, so logging a run twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from evalkit.errors import UserError
from evalkit.redact import default as redactor
from evalkit.tracking.payload import TAG as RUN_TAG

if TYPE_CHECKING:
    from mlflow.entities import Assessment, Span, TraceInfo

    from evalkit.store.db import Store

CASE_TAG, REPEAT_TAG, TRACE_TAG = "evalkit.case_id", "evalkit.repeat", "evalkit.trace_id"
SPANS_TAG = "mlflow.trace.spansLocation"  # set by log_spans: the trace is complete
DEFAULT_MODE = "all:1000"
"""Every case × repeat up to 1000 traces, failures first. The Quality views aggregate over traces,
so logging only failures would bias them; logging runs in the background after the verdict at
hundreds of traces per second (see ``benchmarks/mlflow_traces.py``), so 1000 costs seconds and
bounds a very large run's MLflow footprint (the rest stays in the store and ``cases.json``)."""
PREVIEW = 1000  # characters of request/response preview
BATCH = 100  # root spans per log_spans call
SERVER_WORKERS = 4  # start_trace requests in flight to a server (an embedded SQLite store takes one writer)
_MODE_RE = re.compile(r"^(all|failed|sample|none)(?::(\d+))?$")


@dataclass(frozen=True)
class TraceMode:
    """Which case × repeat rows get a trace: ``all``, ``failed`` (each up to ``cap``), ``sample`` (``cap``
    rows, deterministic), ``none``."""

    kind: Literal["all", "failed", "sample", "none"]
    cap: int | None = None

    def __str__(self) -> str:
        return self.kind if self.cap is None else f"{self.kind}:{self.cap}"


def parse_mode(text: str | TraceMode, *, flag: str | None = None) -> TraceMode:
    """``all[:CAP]``, ``failed[:CAP]``, ``sample:N`` or ``none``; anything else is a :class:`UserError`
    (naming ``flag``, the option or variable the value came from, when given)."""
    if isinstance(text, TraceMode):
        return text
    m = _MODE_RE.match(str(text).strip().lower())
    if m is None or (m[1] == "sample" and m[2] is None) or (m[1] == "none" and m[2] is not None) \
            or (m[2] is not None and int(m[2]) < 1):
        raise UserError(f"{flag + ': ' if flag else ''}MLflow traces mode '{text}': choose all, all:<cap>, failed, "
                        "failed:<cap>, sample:<n> or none")
    return TraceMode(m[1], int(m[2]) if m[2] else None)  # type: ignore[arg-type]


@dataclass
class TraceLogResult:
    """What one logging pass did: traces written, skipped (already in MLflow or not selected), failed."""

    logged: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # the first few failure messages


def _rank(run_id: str, case: dict[str, Any]) -> str:
    return hashlib.sha256(f"{run_id}\0{case['case_id']}\0{case['repeat']}".encode()).hexdigest()


def select_cases(cases: list[dict[str, Any]], mode: TraceMode, run_id: str) -> list[dict[str, Any]]:
    """The case rows ``mode`` keeps (failures first where capped; a sample is stable for a run)."""
    if mode.kind == "none":
        return []
    if mode.kind == "sample":
        return sorted(cases, key=lambda c: _rank(run_id, c))[:mode.cap]
    rows = [c for c in cases if c["failed"]] if mode.kind == "failed" else cases
    rows = sorted(rows, key=lambda c: (not c["failed"], _rank(run_id, c)))
    return rows if mode.cap is None else rows[:mode.cap]


# -- reading the store (synchronous: the background writer never touches the store) ----------------

@dataclass
class RunCases:
    """What a trace logging pass needs from the store, read once."""

    run_id: str
    suite: str
    mlflow_run_id: str | None
    total: int
    cases: list[dict[str, Any]]


def read_cases(store: Store, run_id: str, mode: str | TraceMode) -> RunCases:
    """The run's selected case rows with their scores and start times (ms)."""
    from evalkit.store.reads import cases_with_scores

    run = store.get_run(run_id)
    chosen = parse_mode(mode)
    cases = cases_with_scores(store, run_id)
    picked = select_cases(cases, chosen, run_id)
    if picked:
        starts = {(r[0], int(r[1])): r[2] for r in store.execute(
            "SELECT case_id, repeat, epoch_ms(started_at) FROM case_results WHERE run_id = ?", [run_id])}
        for c in picked:
            c["start_ms"] = starts.get((c["case_id"], c["repeat"]))
    return RunCases(run_id, run["suite"], run.get("mlflow_run_id"), len(cases), picked)


# -- building the entities ---------------------------------------------------------------------------

def _hex(*parts: Any, n: int = 32) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:n]


def _dump(v: Any) -> str:
    return json.dumps(v, default=str, ensure_ascii=False)


def _preview(v: Any) -> str | None:
    if v is None:
        return None
    text = v if isinstance(v, str) else _dump(v)
    return text if len(text) <= PREVIEW else text[:PREVIEW - 1] + "…"


def _inputs(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {"input": v}


def _usage(case: dict[str, Any]) -> dict[str, int] | None:
    i, o = case.get("input_tokens"), case.get("output_tokens")
    if i is None and o is None:
        return None
    return {"input_tokens": int(i or 0), "output_tokens": int(o or 0), "total_tokens": int(i or 0) + int(o or 0)}


def _str_meta(meta: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else _dump(v) for k, v in meta.items() if v is not None}


def score_assessment(score: dict[str, Any], *, trace_id: str, mlflow_run_id: str, when: int) -> Assessment | None:
    """The assessment of one evalkit score (None for a not-applicable one: it has no verdict)."""
    from mlflow.entities import AssessmentError, AssessmentSource, Feedback

    if score["outcome"] == "not_applicable":
        return None
    red = redactor()
    meta = score.get("metadata") or {}
    judge = meta.get("judge")
    source = AssessmentSource("LLM_JUDGE", str(judge)) if judge else AssessmentSource("CODE", f"evalkit:{score['name']}")
    extra = {"mlflow.assessment.sourceRunId": mlflow_run_id, "evalkit.outcome": score["outcome"],
             "evalkit.passed": None if score["passed"] is None else str(bool(score["passed"])).lower(),
             "evalkit.model": meta.get("model"), "evalkit.prompt_sha256": meta.get("prompt_sha256")}
    rationale = red.text(score["rationale"]) if score.get("rationale") else None
    if score["outcome"] == "ok" and score["value"] is not None:
        value: Any = score["value"]
        error = None
    else:
        value = None
        error = AssessmentError(error_code=str(score.get("error_kind") or "scorer_error").upper(),
                                error_message=red.text(str(score.get("error") or "no value")))
    fb = Feedback(name=str(score["name"]), value=value, error=error, source=source, trace_id=trace_id,
                  metadata=_str_meta(extra), rationale=rationale, create_time_ms=when, last_update_time_ms=when)
    fb.assessment_id = "a-" + _hex(trace_id, "feedback", score["name"])
    return fb


def expectations(expected: Any, *, trace_id: str, mlflow_run_id: str, when: int) -> list[Assessment]:
    """The case's expected value: one ``Expectation`` per key of a mapping, else ``expected_response``."""
    from mlflow.entities import AssessmentSource, Expectation

    if expected is None:
        return []
    value = redactor().value(expected)
    items = value.items() if isinstance(value, dict) and value else [("expected_response", value)]
    out: list[Assessment] = []
    for name, v in items:
        if v is None:
            continue
        e = Expectation(name=str(name), value=v, source=AssessmentSource("CODE", "evalkit:dataset"),
                        trace_id=trace_id, metadata={"mlflow.assessment.sourceRunId": mlflow_run_id},
                        create_time_ms=when, last_update_time_ms=when)
        e.assessment_id = "a-" + _hex(trace_id, "expectation", name)
        out.append(e)
    return out


@dataclass
class CaseTrace:
    """One case's trace, ready to write."""

    info: TraceInfo
    span: Span


def build_trace(case: dict[str, Any], *, run: RunCases, experiment_id: str, mlflow_run_id: str) -> CaseTrace:
    """The :class:`TraceInfo` (tags, metadata, assessments) and root span of one case × repeat."""
    from mlflow.entities import Span, TraceInfo, TraceLocation, TraceState

    red = redactor()
    otel_id = _hex(experiment_id, run.run_id, case["case_id"], case["repeat"])
    trace_id = f"tr-{otel_id}"
    start = int(case.get("start_ms") or time.time() * 1000)
    duration = max(0, round(case.get("latency_ms") or 0))
    inputs = red.value(_inputs(case.get("input")))
    output = red.value(case.get("output"))
    err = red.text(str(case["error"])) if case.get("error") else None
    ok = case["outcome"] == "completed"
    usage = _usage(case)
    cost = case.get("cost_usd")
    metadata = {"mlflow.sourceRun": mlflow_run_id, "mlflow.trace_schema.version": "3",
                "mlflow.traceInputs": _preview(inputs) or "", "mlflow.traceOutputs": _preview(output) or ""}
    if usage:
        metadata["mlflow.trace.tokenUsage"] = _dump(usage)
    if cost is not None:
        metadata["mlflow.trace.cost"] = _dump({"total_cost": float(cost)})
    tags = {RUN_TAG: run.run_id, CASE_TAG: red.text(str(case["case_id"])), REPEAT_TAG: str(case["repeat"]),
            "evalkit.suite": run.suite, "evalkit.verdict": "failed" if case["failed"] else "passed",
            "evalkit.outcome": str(case["outcome"]), "mlflow.traceName": red.text(str(case["case_id"]))[:250]}
    if case.get("trace_id"):
        tags[TRACE_TAG] = str(case["trace_id"])
    assessments: list[Assessment] = expectations(case.get("expected"), trace_id=trace_id,
                                                 mlflow_run_id=mlflow_run_id, when=start)
    for s in case["scores"]:
        a = score_assessment(s, trace_id=trace_id, mlflow_run_id=mlflow_run_id, when=start + duration)
        if a is not None:
            assessments.append(a)
    info = TraceInfo(trace_id=trace_id, trace_location=TraceLocation.from_experiment_id(experiment_id),
                     request_time=start, state=TraceState.OK if ok else TraceState.ERROR,
                     request_preview=_preview(inputs), response_preview=_preview(output),
                     client_request_id=f"evalkit:{run.run_id}:{case['case_id']}:{case['repeat']}"[:250],
                     execution_duration=duration, trace_metadata=metadata, tags=tags, assessments=assessments)
    attrs = {"mlflow.traceRequestId": trace_id, "mlflow.spanType": "AGENT", "mlflow.spanInputs": inputs,
             "mlflow.spanOutputs": output, "evalkit.case_id": tags[CASE_TAG], "evalkit.repeat": case["repeat"]}
    if usage:
        attrs["mlflow.chat.tokenUsage"] = usage
    if cost is not None:
        attrs["mlflow.llm.cost"] = {"total_cost": float(cost)}
    if case.get("trace_id"):
        attrs[TRACE_TAG] = str(case["trace_id"])
    span = Span.from_dict({
        "trace_id": trace_id, "span_id": _hex(trace_id, "root", n=16), "parent_span_id": None,
        "name": tags["mlflow.traceName"], "start_time_unix_nano": start * 1_000_000,
        "end_time_unix_nano": (start + duration) * 1_000_000, "events": [], "links": [],
        "status": {"code": "STATUS_CODE_OK" if ok else "STATUS_CODE_ERROR", "message": err or ""},
        "attributes": {k: _dump(v) for k, v in attrs.items()},
    })
    return CaseTrace(info, span)


# -- writing -------------------------------------------------------------------------------------------

def logged_keys(tracking_store: Any, experiment_id: str, run_id: str) -> set[tuple[str, int]]:
    """(case id, repeat) of the complete traces (info and spans) of ``run_id`` already in the experiment."""
    safe = run_id.replace("'", "")
    keys: set[tuple[str, int]] = set()
    token = None
    while True:
        infos, token = tracking_store.search_traces(
            experiment_ids=[experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{safe}'", max_results=500,
            page_token=token)
        for i in infos:
            if CASE_TAG in i.tags and REPEAT_TAG in i.tags and i.tags.get(SPANS_TAG) == "TRACKING_STORE":
                keys.add((i.tags[CASE_TAG], int(i.tags[REPEAT_TAG])))
        if not token:
            return keys


def _start_all(tracking_store: Any, part: list[CaseTrace], workers: int) -> list[Exception | None]:
    """``start_trace`` for each trace (``workers`` requests in flight); the error of each, or None."""
    def one(t: CaseTrace) -> Exception | None:
        try:
            tracking_store.start_trace(t.info)
            return None
        except Exception as exc:
            return exc

    if workers <= 1:
        return [one(t) for t in part]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="evalkit-trace") as pool:
        return list(pool.map(one, part))


def write_traces(tracking_store: Any, traces: Iterable[CaseTrace], experiment_id: str, result: TraceLogResult,
                 *, workers: int = 1) -> None:
    """Each trace's info with its assessments (``start_trace``), then the batch's root spans in one ``log_spans``
    call. A trace whose spans did not land has no spans location and is written again next time. Stops when
    the server goes away (the rest counts as failed)."""
    from evalkit.tracking.errors import TrackingUnavailable
    from evalkit.tracking.uri import wrap

    def failed(exc: Exception, n: int) -> bool:
        """Count ``n`` failures; True when the server is gone."""
        result.failed += n
        err = wrap(exc, "")
        if len(result.errors) < 5:
            result.errors.append(err.message)
        return isinstance(err, TrackingUnavailable)

    batch = list(traces)
    for i in range(0, len(batch), BATCH):
        part = batch[i:i + BATCH]
        errors = _start_all(tracking_store, part, workers)
        gone = [failed(e, 1) for e in errors if e is not None]
        written = [t for t, e in zip(part, errors, strict=True) if e is None]
        if written:
            try:
                tracking_store.log_spans(experiment_id, [t.span for t in written])
                result.logged += len(written)
            except Exception as exc:
                gone.append(failed(exc, len(written)))
        if any(gone):
            result.failed += len(batch) - i - len(part)
            return


def write_run_traces(run: RunCases, *, tracking_uri: str, team: str | None = None,
                     mlflow_run_id: str | None = None) -> TraceLogResult:
    """Write the traces of ``run`` (read with :func:`read_cases`) to MLflow; never reads the store."""
    from evalkit.tracking.errors import TrackingError
    from evalkit.tracking.mlflow_log import ensure_experiment
    from evalkit.tracking.uri import bounded_http, client, experiment_name, probe, sqlite_path, wrap

    started = time.perf_counter()
    result = TraceLogResult(skipped=run.total - len(run.cases))
    mid = mlflow_run_id or run.mlflow_run_id
    if not run.cases:
        result.seconds = time.perf_counter() - started
        return result
    if mid is None:
        raise TrackingError(f"run {run.run_id} is not logged to MLflow yet: `evalkit sync` logs it")
    probe(tracking_uri)
    with bounded_http():
        try:
            c = client(tracking_uri)
            exp_id = ensure_experiment(c, experiment_name(run.suite, team), tracking_uri)
            ts = c._tracking_client.store  # the tracking store: start_trace with embedded assessments
            done = logged_keys(ts, exp_id, run.run_id)
            todo = [x for x in run.cases if (str(redactor().text(str(x["case_id"]))), x["repeat"]) not in done]
            result.skipped += len(run.cases) - len(todo)
            write_traces(ts, (build_trace(x, run=run, experiment_id=exp_id, mlflow_run_id=mid) for x in todo),
                         exp_id, result, workers=SERVER_WORKERS if sqlite_path(tracking_uri) is None else 1)
            if result.logged and c.get_run(mid).data.tags.get("mlflow.runType") is None:
                c.set_tag(mid, "mlflow.runType", "genai_evaluate")  # listed among Evaluation runs
        except TrackingError:
            raise
        except Exception as exc:
            raise wrap(exc, tracking_uri) from None
    result.seconds = time.perf_counter() - started
    return result


def log_case_traces(store: Store, run_id: str, *, mode: str | TraceMode = DEFAULT_MODE,
                    tracking_uri: str | None = None, mlflow_run_id: str | None = None,
                    team: str | None = None) -> TraceLogResult:
    """Log the traces of a stored run (already logged as an MLflow run) to MLflow; idempotent.

    ``mlflow_run_id`` defaults to the run's ``runs.mlflow_run_id``. Raises :class:`TrackingError`
    when MLflow cannot be reached or the run is not in MLflow; per-trace failures are counted.
    """
    from evalkit.tracking.uri import resolve_tracking_uri

    run = read_cases(store, run_id, mode)
    return write_run_traces(run, tracking_uri=resolve_tracking_uri(store.path, tracking_uri), team=team,
                            mlflow_run_id=mlflow_run_id)


# -- in the background, after a run -------------------------------------------------------------------

class TraceJob:
    """Trace logging for one finished run in a (non-daemon) background thread."""

    def __init__(self, run: RunCases, *, tracking_uri: str, team: str | None, mlflow_run_id: str) -> None:
        self.count = len(run.cases)
        self.result: TraceLogResult | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._work, args=(run, tracking_uri, team, mlflow_run_id),
                                        name=f"evalkit-mlflow-traces-{run.run_id}")
        self._thread.start()
        _pending.append(self)

    def _work(self, run: RunCases, uri: str, team: str | None, mid: str) -> None:
        try:
            self.result = write_run_traces(run, tracking_uri=uri, team=team, mlflow_run_id=mid)
            if self.result.failed:
                self.error = (f"{self.result.failed} of {self.count} case trace(s) failed to log to MLflow "
                              f"({'; '.join(self.result.errors[:1])}); `evalkit sync --traces` retries")
        except Exception as exc:  # a tracking failure is a note, never a traceback
            msg = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self.error = f"MLflow trace logging failed: {msg}; `evalkit sync --traces` retries"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done (or ``timeout``); True when finished."""
        self._thread.join(timeout)
        done = not self._thread.is_alive()
        if done and self in _pending:
            _pending.remove(self)
        return done


_pending: list[TraceJob] = []


def start_job(store: Store, run_id: str, *, mode: str | TraceMode, mlflow_run_id: str, team: str | None,
              tracking_uri: str | None = None) -> TraceJob | None:
    """Read the run's selected cases now and log them in the background; None when none are selected."""
    from evalkit.tracking.uri import resolve_tracking_uri

    run = read_cases(store, run_id, mode)
    if not run.cases:
        return None
    return TraceJob(run, tracking_uri=resolve_tracking_uri(store.path, tracking_uri), team=team,
                    mlflow_run_id=mlflow_run_id)


def pending() -> bool:
    """Whether background trace jobs are still registered (running or not yet waited for)."""
    return bool(_pending)


def wait_pending(note: Callable[[str], None], *, quiet_s: float = 0.5) -> list[str]:
    """Wait for every background trace job; ``note`` is told once when that takes over ``quiet_s``.
    Returns the jobs' failure messages."""
    errors: list[str] = []
    told = False
    for job in list(_pending):
        if not job.wait(quiet_s) and not told:
            note(f"logging {sum(j.count for j in _pending)} case traces to MLflow…")
            told = True
        job.wait()
        if job.error:
            errors.append(job.error)
    return errors
