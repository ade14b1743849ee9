"""Assemble one run's report payload from the store: metadata, metrics, cases, scores and spans.

The payload is plain JSON-able data, shaped for size: per-case fields are columns (lists indexed by
case row), repeated strings (tags, span names, models, tools, error types) are interned in one
``strings`` table, and spans keep only what the waterfall draws (no attributes, events or resource).

``labelling`` is what the report's Label mode needs: each LLM-judge scorer (a score whose metadata
names a ``judge``) with the judge@version of each case it scored (interned; null where it did not,
or did not apply), and each judge@version's output kind (``scale_1_5``, ``yes_no`` or ``pairwise``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from evalkit.store import reads

if TYPE_CHECKING:
    from evalkit.store.db import Store

OUTPUT_KINDS = ("pairwise", "yes_no", "scale_1_5")
LABEL_JUDGE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*(@[^\s@]+)?")  # the judge field of a labels file
MAX_TEXT = 20_000  # characters kept of one input/output/expected/rationale
MAX_SPANS = 300  # spans kept per case (the rest are counted, not drawn)
HIST_BINS = 10


class Strings:
    """An intern table: each distinct string gets a small integer."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, s: str | None) -> int | None:
        if s is None:
            return None
        i = self._index.get(s)
        if i is None:
            i = self._index[s] = len(self.items)
            self.items.append(s)
        return i


def clip(text: str | None, limit: int = MAX_TEXT) -> str | None:
    """Text cut to ``limit`` characters, saying how much was left out."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit} more characters not included in the report]"


def as_text(value: Any) -> str | None:
    """A decoded value (as :mod:`evalkit.store.reads` returns it) as display text: strings as they are,
    anything else pretty-printed."""
    if value is None:
        return None
    if isinstance(value, str):
        return clip(value)
    return clip(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def tool_calls_text(raw: Any) -> str | None:
    """Recorded tool calls, one ``name {arguments}`` line each."""
    calls = _loads(raw)
    if not calls or not isinstance(calls, list):
        return None
    lines = [
        f"{c.get('name')} {json.dumps(c.get('arguments') or {}, ensure_ascii=False, default=str)}"
        if isinstance(c, dict) else json.dumps(c, ensure_ascii=False, default=str)
        for c in calls
    ]
    return clip("\n".join(lines))


def _iso(v: Any) -> str | None:
    return v.isoformat() if isinstance(v, datetime) else (None if v is None else str(v))


def _loads(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return raw


def run_meta(store: Store, run: dict[str, Any]) -> dict[str, Any]:
    """The run's provenance: suite, agent, models, judges with versions, dataset hash, git commit."""
    config = run.get("config") or {}
    suite_raw = config.get("suite")
    agent = suite_raw.get("agent") if isinstance(suite_raw, dict) else None
    if not isinstance(agent, dict):
        agent = None
    judges: dict[tuple[str, str, str | None], str | None] = {}  # (scorer, judge, model) -> prompt sha256
    for j in reads.judges(store, run["run_id"]):
        key = (j.scorer, j.judge, j.model)
        judges[key] = judges.get(key) or j.prompt_sha256
    models = {m for _, _, m in judges if m}
    models |= {
        r[0]
        for r in store.execute(
            "SELECT DISTINCT request_model FROM spans WHERE request_model IS NOT NULL AND trace_id IN"
            f" ({reads.RUN_TRACE_IDS})",
            [run["run_id"]],
        )
    }
    target_cfg = config.get("target")
    if isinstance(target_cfg, dict) and isinstance(target_cfg.get("model"), str):
        models.add(target_cfg["model"])
    return {
        "run_id": run["run_id"],
        "suite": run.get("suite"),
        "status": run.get("status"),
        "started_at": _iso(run.get("started_at")),
        "ended_at": _iso(run.get("ended_at")),
        "target": run.get("target"),
        "agent": {"name": _str(agent.get("name")), "version": _str(agent.get("version"))} if agent else None,
        "models": sorted(models),
        "judges": [
            {"scorer": s, "judge": j, "model": m, "prompt_sha256": judges[(s, j, m)]}
            for (s, j, m) in sorted(judges, key=str)
        ],
        "dataset_path": run.get("dataset_path"),
        "dataset_sha256": run.get("dataset_sha256"),
        "git_commit": run.get("git_commit"),
        "git_dirty": run.get("git_dirty"),
        "evalkit_version": run.get("evalkit_version"),
        "cases_total": run.get("cases_total"),
        "repeats": run.get("repeats"),
        "concurrency": run.get("concurrency"),
    }


def _finite(v: Any) -> bool:
    return v is not None and math.isfinite(float(v))


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


def histogram(values: Sequence[float], is_bool: bool, bins: int = HIST_BINS) -> dict[str, Any]:
    """Counts for the distribution chart: fail/pass for booleans, equal-width bins otherwise."""
    if is_bool:
        fails = sum(1 for v in values if v == 0.0)
        return {"kind": "bool", "labels": ["fail", "pass"], "counts": [fails, len(values) - fails]}
    if not values:
        return {"kind": "num", "labels": [], "counts": []}
    lo, hi = min(values), max(values)
    distinct = sorted(set(values))
    if len(distinct) <= bins:  # a small scale (1-5): one bar per value
        counts = {v: 0 for v in distinct}
        for v in values:
            counts[v] += 1
        return {"kind": "num", "labels": [f"{v:g}" for v in distinct], "counts": list(counts.values())}
    width = (hi - lo) / bins
    out = [0] * bins
    for v in values:
        out[min(int((v - lo) / width), bins - 1)] += 1
    labels = [f"{lo + i * width:.3g}–{lo + (i + 1) * width:.3g}" for i in range(bins)]
    return {"kind": "num", "labels": labels, "counts": out}


def _spans_by_trace(store: Store, run_id: str, strings: Strings) -> dict[str, dict[str, Any]]:
    """Each trace's spans in waterfall order: [depth, name, start ms, duration ms, model, in, out, tool, error, status]."""
    return waterfalls(store, f"trace_id IN ({reads.RUN_TRACE_IDS})", [run_id], strings)


def waterfalls(store: Store, where: str, params: list[Any], strings: Strings) -> dict[str, dict[str, Any]]:
    """Trace id -> its waterfall (``total`` ms, ``spans`` rows, ``omitted``) for the spans matching ``where``."""
    rows = store.execute(
        "SELECT trace_id, span_id, parent_span_id, name, epoch_us(start_time) / 1000.0,"
        " coalesce(duration_ms, (epoch_us(end_time) - epoch_us(start_time)) / 1000.0, 0.0),"
        " request_model, input_tokens, output_tokens, tool_name, error_type, status_code,"
        """ coalesce(attributes->>'$."evalkit.scorer"', attributes->>'$."evalkit.target"') FROM spans"""
        f" WHERE {where} ORDER BY trace_id, start_time, span_id",
        params,
    )
    by_trace: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        by_trace.setdefault(r[0], []).append(r)
    return {trace_id: _waterfall(part, strings) for trace_id, part in by_trace.items()}


def _label(name: str | None, detail: str | None) -> str:
    """A span's name, with the scorer or target it ran when the name alone does not say."""
    name = name or "span"
    return f"{name} · {detail}" if detail and detail not in name else name


def _waterfall(rows: list[tuple[Any, ...]], strings: Strings) -> dict[str, Any]:
    """Rows (trace, span, parent, name, start ms, duration ms, model, in, out, tool, error, status, detail) as a tree."""
    ids = {r[1] for r in rows}
    children: dict[str | None, list[tuple[Any, ...]]] = {}
    for r in rows:
        children.setdefault(r[2] if r[2] in ids else None, []).append(r)
    t0 = min((r[4] for r in rows if r[4] is not None), default=0.0)
    ordered: list[tuple[int, tuple[Any, ...]]] = []
    stack = [(0, r) for r in reversed(children.get(None, []))]
    seen: set[str] = set()
    while stack:
        depth, r = stack.pop()
        if r[1] in seen:
            continue
        seen.add(r[1])
        ordered.append((depth, r))
        stack.extend((depth + 1, c) for c in reversed(children.get(r[1], [])))
    ordered += [(0, r) for r in rows if r[1] not in seen]  # parent cycles: drawn flat
    spans: list[list[Any]] = []
    total = 0.0
    for depth, r in ordered:
        start = (r[4] if r[4] is not None else t0) - t0
        dur = float(r[5] or 0.0)
        total = max(total, start + dur)
        if len(spans) < MAX_SPANS:
            spans.append([
                depth, strings(_label(r[3], r[12])), round(start, 3), round(dur, 3), strings(r[6]), r[7], r[8],
                strings(r[9]), strings(r[10]), 1 if (r[11] or "").upper() == "ERROR" else 0,
            ])
    return {"total": round(total, 3), "spans": spans, "omitted": max(0, len(ordered) - MAX_SPANS)}


def kind_evidence(meta: Mapping[str, Any], value: Any, is_bool: bool) -> str | None:
    """What one judge score tells of its judge's output kind: the kind itself when the metadata evalkit's
    judge runner writes says (``verdicts`` / ``position_disagreement``: pairwise, ``yes_share``: yes/no,
    ``stdev``: a 1-5 scale), else ``"bool"`` or ``"num"`` for a value, None for no value."""
    if "position_disagreement" in meta or "verdicts" in meta:
        return "pairwise"
    if "yes_share" in meta:
        return "yes_no"
    if "stdev" in meta:
        return "scale_1_5"
    if value is None:
        return None
    return "bool" if is_bool else "num"


def output_kind(ref: str, evidence: Iterable[str | None]) -> str:
    """The output kind of judge ``ref`` (``name@version``) from its scores' :func:`kind_evidence`: a kind
    the metadata named, else that of the judge :func:`~evalkit.judging.loader.find_judge` finds for the
    ref (or, failing that, for its name: a built-in), else yes/no for boolean values and a 1-5 scale."""
    seen = set(evidence)
    for kind in OUTPUT_KINDS:
        if kind in seen:
            return kind
    from evalkit.errors import UserError
    from evalkit.judging.loader import find_judge

    name = ref.partition("@")[0]
    if LABEL_JUDGE.fullmatch(ref):
        try:
            jd = find_judge(ref) or find_judge(name)
        except UserError:  # a broken judge file: the scores' values decide
            jd = None
        if jd is not None:
            return jd.output
    return "yes_no" if "bool" in seen and "num" not in seen else "scale_1_5"


def run_payload(store: Store, run_id: str) -> dict[str, Any]:
    """Everything the run report shows, as one JSON-able dict."""
    run = store.get_run(run_id)
    run_id = run["run_id"]
    strings = Strings()
    cases = reads.case_rows(store, run_id)
    scores = reads.score_rows(store, run_id)
    summary = run.get("summary") or {}
    names = [s["name"] for s in summary.get("scorers", [])]
    for s in sorted(scores, key=lambda s: s["name"]):
        if s["name"] not in names:
            names.append(s["name"])
    col = {n: i for i, n in enumerate(names)}
    row_of = {(c["case_id"], c["repeat"]): i for i, c in enumerate(cases)}
    n = len(cases)
    k = len(names)
    val: list[list[float | None]] = [[None] * n for _ in range(k)]
    passed: list[list[int | None]] = [[None] * n for _ in range(k)]
    serr: list[list[str | None]] = [[None] * n for _ in range(k)]  # the error, or why the scorer did not apply
    sout: list[list[int | None]] = [[None] * n for _ in range(k)]  # outcome: ok / not_applicable / error (interned)
    skind: list[list[int | None]] = [[None] * n for _ in range(k)]  # error kind of an error (interned)
    why: list[list[str | None]] = [[None] * n for _ in range(k)]
    judge: list[list[int | None]] = [[None] * n for _ in range(k)]
    refs: dict[int, list[int | None]] = {}  # judge scorer column -> the judge@version of each case (interned)
    evidence: dict[str, set[str | None]] = {}  # judge@version -> what its scores say of its output kind
    is_bool: dict[str, bool] = {}
    for s in scores:
        i = row_of.get((s["case_id"], s["repeat"]))
        if i is None:
            continue
        j = col[s["name"]]
        ok = s["outcome"] == "ok"
        val[j][i] = s["value"] if ok and _finite(s["value"]) else None  # a NaN stored by an older evalkit: no value
        passed[j][i] = None if s["passed"] is None or not ok else int(bool(s["passed"]))
        serr[j][i] = clip(s["error"])
        sout[j][i] = strings(s["outcome"])
        skind[j][i] = strings(s["error_kind"]) if s["outcome"] == "error" else None
        why[j][i] = clip(s["rationale"])
        if ok and val[j][i] is not None:
            is_bool[s["name"]] = is_bool.get(s["name"], True) and bool(s["is_bool"])
        meta = s["metadata"]
        if isinstance(meta, dict) and meta.get("judge"):
            label = str(meta["judge"]) + (f" · {meta['model']}" if meta.get("model") else "")
            judge[j][i] = strings(label)
            ref = str(meta["judge"])
            if LABEL_JUDGE.fullmatch(ref):  # a judge a labels file can name
                column = refs.setdefault(j, [None] * n)
                if s["outcome"] != "not_applicable":
                    column[i] = strings(ref)
                evidence.setdefault(ref, set()).add(kind_evidence(meta, val[j][i], bool(s["is_bool"])))
    traces = _spans_by_trace(store, run_id, strings)
    failed = [int(c["outcome"] != "completed" or any(passed[j][i] == 0 for j in range(k))) for i, c in enumerate(cases)]
    dist = {
        name: histogram([v for v in val[col[name]] if v is not None], is_bool.get(name, False)) for name in names
    }
    return {
        "kind": "run",
        "run": run_meta(store, run),
        "summary": summary,
        "gate": run.get("gate"),
        "scorers": names,
        "dist": dist,
        "limits": {"text": MAX_TEXT, "spans": MAX_SPANS},
        "cases": {
            "id": [c["case_id"] for c in cases],
            "rep": [c["repeat"] for c in cases],
            "status": [c["status"] for c in cases],
            "outcome": [c["outcome"] for c in cases],
            "error_kind": [strings(c["error_kind"]) for c in cases],
            "failed": failed,
            "latency": [None if c["latency_ms"] is None else round(c["latency_ms"], 3) for c in cases],
            "tokens": [(c["input_tokens"] or 0) + (c["output_tokens"] or 0) for c in cases],
            "cost": [c["cost_usd"] for c in cases],
            "tags": [[strings(t) for t in (c["tags"] or [])] for c in cases],
            "input": [as_text(c["input"]) for c in cases],
            "expected": [as_text(c["expected"]) for c in cases],
            "output": [as_text(c["output"]) for c in cases],
            "error": [clip(c["error"]) for c in cases],
            "tool_calls": [tool_calls_text(c["tool_calls"]) for c in cases],
            "trace": [traces.get(c["trace_id"]) if c["trace_id"] else None for c in cases],
            "value": val,
            "passed": passed,
            "score_error": serr,
            "score_outcome": sout,
            "score_kind": skind,
            "rationale": why,
            "judge": judge,
        },
        "labelling": {
            "judges": [{"col": j, "scorer": names[j], "refs": refs[j]} for j in sorted(refs)],
            "kinds": {ref: output_kind(ref, ev) for ref, ev in sorted(evidence.items())},
        },
        "strings": strings.items,
    }
