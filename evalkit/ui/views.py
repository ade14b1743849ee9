"""What the dashboard shows, as JSON-able dicts: leaderboard, trends, runs, one case, judge health.

Summary scores come from MLflow (:class:`Tracking`: the embedded SQLite file read directly, else the
MLflow client); cases, scores and spans from the observability store, opened read-only per request
so the page stays live while runs write. Every value is run through :func:`evalkit.safe_text.displayable`
by the server before it is sent.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from evalkit.errors import UserError

if TYPE_CHECKING:
    from evalkit.store.db import Store
    from evalkit.tracking.leaderboard import Entry

T = TypeVar("T")
TREND_POINTS = 300  # newest runs drawn per suite
FLAGGED_POINTS = 60  # newest points per request whose paired test is computed (the rest come from the cache)
JUDGE_RUNS = 20  # newest runs whose judge scores make the judge-health table


class Tracking:
    """Read access to MLflow runs; the embedded SQLite file is read without importing mlflow."""

    def __init__(self, uri: str, *, web_url: str | None = None) -> None:
        from evalkit.tracking.uri import sqlite_path

        self.uri = uri
        self.db = sqlite_path(uri)
        self.web_url = (web_url or (uri if uri.startswith(("http://", "https://")) else "")).rstrip("/")
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from evalkit.tracking.uri import client

                self._client = client(self.uri)
            return self._client

    def call(self, fn: Callable[[Any], T]) -> T:
        """``fn(reader)`` on the SQLite file when it answers the search, else on the MLflow client."""
        from evalkit.tracking.sqlite_reader import SqliteRunReader, Unsupported

        if self.db is not None:
            if not self.db.exists():
                raise UserError(f"no MLflow store at {self.db} yet: log runs with `evalkit run` or `evalkit sync`")
            reader = SqliteRunReader(self.db)
            try:
                return fn(reader)
            except Unsupported:
                pass
            finally:
                reader.close()
        return fn(self.client())

    def run_link(self, experiment_id: str, run_id: str) -> str | None:
        return f"{self.web_url}/#/experiments/{experiment_id}/runs/{run_id}" if self.web_url else None


def _entry_row(e: Entry, t: Tracking, experiment_id: str | None) -> dict[str, Any]:
    row = asdict(e)
    row["started"] = e.started.isoformat() if e.started else None
    row["mlflow_url"] = t.run_link(experiment_id, e.mlflow_run_id) if experiment_id else None
    return row


def _where(branch: str | None) -> str | None:
    return f"tags.`mlflow.source.git.branch` = '{branch.replace(chr(39), '')}'" if branch else None


def leaderboard_view(t: Tracking, *, team: str | None = None, suite: str | None = None, branch: str | None = None,
                     since: datetime | None = None, pick: str = "latest", top: int = 50) -> dict[str, Any]:
    """Per suite: one row per agent × models (its latest, or best, complete run) ranked on the suite's
    primary metric, ties (overlapping intervals) sharing a rank."""
    from evalkit.tracking.experiments import experiments
    from evalkit.tracking.leaderboard import leaderboard
    from evalkit.tracking.sqlite_stats import maybe_analyze

    if pick not in ("latest", "best"):
        raise UserError(f"pick '{pick}': choose latest or best")

    def build(c: Any) -> dict[str, Any]:
        maybe_analyze(t.uri)  # once per request, not once per suite
        exps = sorted(experiments(c, team=team if team else ""), key=lambda e: e.name)
        if suite:
            exps = [e for e in exps if e.name == suite]
        boards = []
        for exp in exps:
            try:
                b = leaderboard(c, suite=exp.name, team="", by="agent_model", pick=pick,  # type: ignore[arg-type]
                                since=since, top=top, where=_where(branch))
            except UserError:
                continue  # no finished runs (MLflow's "Default" experiment, a suite still running its first)
            boards.append({
                "suite": exp.name, "experiment_id": exp.experiment_id, "metric": b.metric, "ascending": b.ascending,
                "metric_source": b.metric_source, "partial_skipped": b.partial_skipped, "scanned": b.scanned,
                "rows": [_entry_row(e, t, exp.experiment_id) for e in b.entries],
            })
        return {"suites": boards, "branches": _branches(c), "pick": pick}

    return t.call(build)


def _branches(c: Any) -> list[str]:
    """Branches runs were logged from: one query on the SQLite reader; the MLflow client has no such search."""
    values = getattr(c, "tag_values", None)
    return values("mlflow.source.git.branch") if values is not None else []


def trend_view(t: Tracking, store_path: Path | str | None, *, suite: str, metric: str | None = None,
               branch: str | None = None, since: datetime | None = None, limit: int = TREND_POINTS) -> dict[str, Any]:
    """The suite's newest complete runs as one series per agent × models, oldest first, each point with
    its interval, commit and agent version, and the gate's paired test against the series' previous run."""
    from evalkit.tracking.experiments import experiments
    from evalkit.tracking.leaderboard import default_metric, lower_is_better, run_entry

    def build(c: Any) -> tuple[str, str, list[tuple[Entry, str]]]:
        exp = experiments(c, suite=suite, team="")[0]
        name = metric or default_metric(c, [exp.experiment_id])[0]
        clauses = ["attributes.status = 'FINISHED'"]
        if since is not None:
            clauses.append(f"attributes.start_time >= {int(since.timestamp() * 1000)}")
        if branch:
            clauses.append(_where(branch) or "")
        points: list[tuple[Entry, str]] = []
        token = None
        now = time.time()
        while len(points) < limit:
            page = c.search_runs([exp.experiment_id], " AND ".join(clauses), max_results=min(100, limit - len(points)),
                                 order_by=["attributes.start_time DESC"], page_token=token)
            for run in page:
                if run.data.tags.get("evalkit.partial"):
                    continue
                e = run_entry(run, name, {exp.experiment_id: exp.name}, now, "agent_model")
                if e is not None:
                    points.append((e, exp.experiment_id))
            token = page.token
            if not token or not len(page):
                break
        return exp.experiment_id, name, points

    exp_id, name, points = t.call(build)
    series: dict[str, list[dict[str, Any]]] = {}
    for e, _ in reversed(points):  # oldest first
        series.setdefault(e.group or "-", []).append(_entry_row(e, t, exp_id))
    _flag_regressions(store_path, name, series)
    return {"suite": suite, "metric": name, "ascending": lower_is_better(name),
            "series": [{"group": g, "points": p} for g, p in sorted(series.items())]}


_PAIRED: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}  # (baseline, candidate) -> metric -> paired row
_PAIRED_LOCK = threading.Lock()


def paired(store: Store, base: str, cur: str) -> dict[str, dict[str, Any]]:
    """The gate's paired comparison of run ``cur`` with ``base`` (``scorer/metric`` -> row), cached: stored
    runs do not change once finished."""
    key = (base, cur)
    with _PAIRED_LOCK:
        if key in _PAIRED:
            return _PAIRED[key]
    from evalkit.report.compare import paired_metrics
    from evalkit.store import reads

    a, b = reads.score_frame(store, base), reads.score_frame(store, cur)
    rows = {f"{r['scorer']}/{r['metric']}": r for r in paired_metrics(b, a, base)[1]} if a.height and b.height else {}
    with _PAIRED_LOCK:
        if len(_PAIRED) > 20_000:
            _PAIRED.clear()
        _PAIRED[key] = rows
    return rows


def _flag_regressions(store_path: Path | str | None, metric: str, series: dict[str, list[dict[str, Any]]]) -> None:
    """Set ``flag`` (regression / improvement / None) and ``p`` on each point from the paired test against
    the previous point of its series; points whose runs are not in the store get ``flag`` None."""
    pairs = [(pts[i - 1], pts[i]) for pts in series.values() for i in range(1, len(pts))]
    pairs.sort(key=lambda pc: pc[1]["started"] or "", reverse=True)
    todo = pairs[:FLAGGED_POINTS]
    for pts in series.values():
        for p in pts:
            p["flag"], p["p"], p["regressed"] = None, None, []
    if not todo:
        return
    store = _open(store_path)
    if store is None:
        return
    with store:
        known = {r[0] for r in store.execute("SELECT run_id FROM runs WHERE run_id IN (SELECT unnest(?))",
                                             [[x["run_id"] for pc in todo for x in pc]])}
        for prev, cur in todo:
            if prev["run_id"] not in known or cur["run_id"] not in known:
                continue
            rows = paired(store, prev["run_id"], cur["run_id"])
            cands = [r for r in (rows.get(metric), rows.get(metric.removesuffix("/mean") + "/pass_rate")
                                 if metric.endswith("/mean") else None) if r]  # a scorer's mean and its pass rate
            row = next((r for r in cands if r["regression"]), None) or next((r for r in cands if r["improvement"]),
                                                                            None) or (cands[0] if cands else None)
            cur["regressed"] = sorted(k for k, r in rows.items() if r["regression"])
            if row is not None:
                cur["p"] = row["p_adj"] if row["p_adj"] is not None else row["p"]
                cur["flag"] = "regression" if row["regression"] else "improvement" if row["improvement"] else None
            elif cur["regressed"]:
                cur["flag"] = "regression"


def _open(store_path: Path | str | None) -> Store | None:
    from evalkit.store.db import open_store
    from evalkit.store.lake import is_store_url

    if store_path is None or (not is_store_url(str(store_path)) and not Path(store_path).exists()):
        return None
    return open_store(store_path, read_only=True)


@contextmanager
def store_of(store_path: Path | str | None) -> Iterator[Store]:
    """The observability store, read-only, for one request; a clear error when there is none yet."""
    store = _open(store_path)
    if store is None:
        raise UserError(f"no observability store at {store_path} yet: run `evalkit run` first")
    with store:
        yield store


def runs_view(store: Store, *, suite: str | None = None, limit: int = 100) -> dict[str, Any]:
    """The store's newest runs with their headline figures."""
    rows = []
    for r in store.list_runs(limit=limit, suite=suite):
        s = r.get("summary") or {}
        rows.append({
            "run_id": r["run_id"], "suite": r["suite"], "status": r["status"], "target": r["target"],
            "started_at": _iso(r["started_at"]), "cases": r["cases_total"], "git_commit": r["git_commit"],
            "error_rate": s.get("error_rate"), "pass_rate": _first_pass_rate(s),
        })
    return {"runs": rows}


def _first_pass_rate(summary: dict[str, Any]) -> float | None:
    for s in summary.get("scorers") or []:
        if isinstance(s, dict) and s.get("pass_rate") is not None:
            return float(s["pass_rate"])
    return None


def _iso(v: Any) -> str | None:
    return v.isoformat() if isinstance(v, datetime) else (str(v) if v is not None else None)


def case_view(store: Store, run_id: str, case_id: str, repeat: int = 0) -> dict[str, Any]:
    """One case × repeat: its texts, outcome, scores with rationales and judges, and its trace waterfall."""
    from evalkit.report.data import MAX_TEXT, Strings, as_text, clip, tool_calls_text, waterfalls
    from evalkit.store import reads

    run = store.get_run(run_id)
    rows = reads.case_rows(store, run["run_id"], case_ids=[case_id], repeat=repeat)
    if not rows:
        raise UserError(f"run {run['run_id']} has no case '{case_id}' (repeat {repeat})")
    c = rows[0]
    strings = Strings()
    trace = waterfalls(store, "trace_id = ?", [c["trace_id"]], strings).get(c["trace_id"]) if c["trace_id"] else None
    scores = [{
        "name": s["name"], "value": s["value"] if s["value"] is None or math.isfinite(s["value"]) else None,
        "passed": s["passed"], "outcome": s["outcome"], "error_kind": s["error_kind"], "error": clip(s["error"]),
        "rationale": clip(s["rationale"]), "judge": (s["metadata"] or {}).get("judge") if isinstance(s["metadata"], dict) else None,
        "model": (s["metadata"] or {}).get("model") if isinstance(s["metadata"], dict) else None,
    } for s in reads.score_rows(store, run["run_id"], case_ids=[case_id], repeat=repeat)]
    return {
        "run_id": run["run_id"], "suite": run["suite"], "case_id": c["case_id"], "repeat": c["repeat"],
        "status": c["status"], "outcome": c["outcome"], "error_kind": c["error_kind"], "error": clip(c["error"]),
        "latency_ms": c["latency_ms"], "tokens": (c["input_tokens"] or 0) + (c["output_tokens"] or 0),
        "cost_usd": c["cost_usd"], "trace_id": c["trace_id"], "input": as_text(c["input"]),
        "expected": as_text(c["expected"]), "output": as_text(c["output"]), "tool_calls": tool_calls_text(c["tool_calls"]),
        "tags": list(c["tags"] or []), "scores": scores, "trace": trace, "strings": strings.items,
        "limits": {"text": MAX_TEXT},
    }


def cases_view(store: Store, run_id: str, *, failed_only: bool = False, limit: int = 500) -> dict[str, Any]:
    """A run's cases (failed first, then slowest) for the dashboard's run page."""
    from evalkit.tracing.queries import case_traces

    run = store.get_run(run_id)
    rows = case_traces(store, run["run_id"], limit=limit, failed_only=failed_only)
    keep = ("case_id", "repeat", "outcome", "error_kind", "duration_ms", "spans", "llm_calls", "tool_calls",
            "failed_scores", "failed", "trace_id")
    return {"run_id": run["run_id"], "suite": run["suite"], "cases": [{k: r[k] for k in keep} for r in rows]}


def judges_view(store: Store, *, runs: int = JUDGE_RUNS) -> dict[str, Any]:
    """Per judge@version × model over the newest ``runs`` runs: error and invalid-output rates, position
    disagreement (pairwise judges), mean spread across samples, verbosity bias (score vs output length),
    and the agreement of its newest calibration with human labels."""
    from evalkit.calibration.judge_health import health_rows
    from evalkit.calibration.records import latest_calibrations

    calibrations = latest_calibrations(store)
    out = []
    for r in health_rows(store, newest=runs):
        name, _, version = str(r["judge"]).partition("@")
        cal = calibrations.get((name, version, r["model"]))
        out.append({
            "judge": r["judge"], "model": r["model"], "scores": r["scores"], "runs": r["runs"],
            "error_rate": r["error_rate"], "invalid_rate": r["invalid_rate"],
            "position_disagreement": r["position_disagreement"], "mean_spread": r["mean_spread"],
            "verbosity_corr": r["verbosity_corr"],
            "agreement": None if cal is None else cal["agreement"],
            "agreement_metric": None if cal is None else cal["agreement_metric"],
            "calibration_items": None if cal is None else cal["items"],
        })
    return {"judges": out, "runs": runs}
