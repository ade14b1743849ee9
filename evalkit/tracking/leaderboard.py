"""The quality leaderboard: a ranked MLflow search, never a scan of every run.

Runs are ranked by one metric (default: the suite's primary metric, tag ``evalkit.primary``) with
``search_runs`` (filter, ``order_by``, pages of at most 100), shown with the metric's interval, error rate (the run's one error rate, ``errors/rate``), cost and
age. Rows whose intervals overlap the first row of their tie group share its rank ("tied"). A row
says whether its run accounted for every planned case (``complete``) from the ledger metrics. Partial
runs (a shard, a ``--limit`` or a pytest subset: tag ``evalkit.partial``) are left out unless asked for.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from evalkit.errors import UserError
from evalkit.tracking.experiments import experiments
from evalkit.tracking.metric_names import interval_of
from evalkit.tracking.payload import TAG
from evalkit.tracking.sqlite_stats import maybe_analyze

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

By = Literal["agent", "model", "judge", "agent_model"]
PAGE = 100  # max_results per search: keeps row building cheap (~1 ms per row)
MAX_SCAN = 2000  # runs read at most when grouping or taking the last N
LOWER_IS_BETTER = ("errors/", "latency_ms/", "cost_usd/", "tokens/", "cases/cancelled", "cases/missing")
LOWER_IS_BETTER_SUFFIX = ("/errors", "/not_applicable")  # per-scorer counts
GROUP_TAGS: dict[str, tuple[str, ...]] = {
    "agent": ("evalkit.agent_ref", "evalkit.agent"),
    "model": ("evalkit.models",),
    "judge": ("evalkit.judges",),
    "agent_model": ("evalkit.agent_ref", "evalkit.agent"),  # the agent with its models: one row per pair
}


@dataclass
class Entry:
    """One leaderboard row."""

    rank: int
    tied: bool
    run_id: str
    suite: str
    agent: str
    value: float
    ci_low: float | None
    ci_high: float | None
    error_rate: float | None
    cost_usd: float | None
    started: datetime | None
    age: str
    group: str | None = None
    models: str = ""
    judges: str = ""
    mlflow_run_id: str = ""
    errors: float | None = None  # errored case × repeats (errors/count)
    cancelled: float | None = None  # cases/cancelled
    missing: float | None = None  # cases/missing: planned but never recorded
    complete: bool | None = None  # nothing cancelled or missing (None: the run logged no ledger)
    agent_name: str = ""  # the agent without its version
    agent_version: str = ""
    commit: str = ""
    branch: str = ""
    judge_agreement: float | None = None  # the ranked scorer's judge agreement with humans, when calibrated


@dataclass
class Board:
    metric: str
    ascending: bool
    by: str | None
    entries: list[Entry] = field(default_factory=list)
    scanned: int = 0
    partial_skipped: int = 0  # partial runs read and left out
    metric_source: str = "--metric"  # why this metric: --metric, the suite's primary, or the first mean

    def rows(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.entries]


def lower_is_better(metric: str) -> bool:
    return metric.startswith(LOWER_IS_BETTER) or metric.endswith(LOWER_IS_BETTER_SUFFIX)


def _complete(m: dict[str, float]) -> bool | None:
    if "cases/cancelled" not in m and "cases/missing" not in m:
        return None
    return not (m.get("cases/cancelled") or m.get("cases/missing"))


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An ISO date/datetime, or a relative window such as ``7d``, ``12h``, ``30m``, ``2w``."""
    now = now or datetime.now(UTC)
    m = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return now - timedelta(**{unit: int(m.group(1))})
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--since '{text}': give a date (2026-01-31), a datetime, or 7d / 12h / 2w") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def age(start_ms: int | None, now: float | None = None) -> str:
    if not start_ms:
        return ""
    secs = max(0.0, (now or time.time()) - start_ms / 1000)
    for size, unit in ((86400 * 7, "w"), (86400, "d"), (3600, "h"), (60, "m")):
        if secs >= size:
            return f"{int(secs // size)}{unit}"
    return f"{int(secs)}s"


def default_metric(c: MlflowClient, exp_ids: list[str]) -> tuple[str, str]:
    """The latest run's primary metric (its suite's ``primary:`` or first threshold), and where it came from;
    for runs logged before suites had one, its first scorer mean."""
    latest = list(c.search_runs(exp_ids, "attributes.status = 'FINISHED'", max_results=1,
                                order_by=["attributes.start_time DESC"]))
    if not latest:
        raise UserError("no finished runs in MLflow yet: log runs with `evalkit run` or `evalkit sync`")
    primary = latest[0].data.tags.get("evalkit.primary")
    if primary and primary in latest[0].data.metrics:
        return primary, "the suite's primary metric"
    means = sorted(k for k in latest[0].data.metrics if k.endswith("/mean"))
    if not means:
        raise UserError("the latest run has no '<scorer>/mean' metric; pick one with --metric")
    return means[0], "the first scorer mean (the suite names no primary metric)"


def _group_of(run: Run, by: str) -> str:
    found = next((v for key in GROUP_TAGS[by] if (v := run.data.tags.get(key))), "-")
    models = run.data.tags.get("evalkit.models") if by == "agent_model" else None
    return f"{found} · {models}" if models else found


def run_entry(run: Run, metric: str, exp_names: dict[str, str], now: float, by: str | None = None) -> Entry | None:
    """One run's row; None when it lacks the metric (or holds a non-finite one: it cannot be ranked)."""
    m = {k: v for k, v in run.data.metrics.items() if v is not None and math.isfinite(v)}
    if metric not in m:
        return None
    lo, hi = interval_of(m, metric)
    tags = run.data.tags
    start = run.info.start_time
    return Entry(
        rank=0, tied=False, run_id=tags.get(TAG, run.info.run_name or run.info.run_id),
        suite=tags.get("evalkit.suite", exp_names.get(run.info.experiment_id, "")),
        agent=tags.get("evalkit.agent_ref") or tags.get("evalkit.agent", ""), value=float(m[metric]),
        ci_low=lo, ci_high=hi, error_rate=m.get("errors/rate"), cost_usd=m.get("cost_usd/total"),
        started=datetime.fromtimestamp(start / 1000, UTC) if start else None, age=age(start, now),
        models=tags.get("evalkit.models", ""), judges=tags.get("evalkit.judges", ""), mlflow_run_id=run.info.run_id,
        group=_group_of(run, by) if by else None, errors=m.get("errors/count"), cancelled=m.get("cases/cancelled"),
        missing=m.get("cases/missing"), complete=_complete(m), agent_name=tags.get("evalkit.agent", ""),
        agent_version=tags.get("evalkit.agent_version", ""), commit=tags.get("mlflow.source.git.commit", ""),
        branch=tags.get("mlflow.source.git.branch", ""),
        judge_agreement=m.get(f"{metric.rpartition('/')[0]}/judge/agreement"),
    )


def _overlap(a: Entry, b: Entry) -> bool:
    if None in (a.ci_low, a.ci_high, b.ci_low, b.ci_high):
        return a.value == b.value
    return bool(a.ci_low <= b.ci_high and b.ci_low <= a.ci_high)  # type: ignore[operator]


def rank(entries: list[Entry]) -> list[Entry]:
    """Competition ranks; a row whose interval overlaps its tie group's first row shares that rank."""
    head: Entry | None = None
    for i, e in enumerate(entries):
        if head is not None and _overlap(head, e):
            e.rank, e.tied, head.tied = head.rank, True, True
        else:
            e.rank, head = i + 1, e
    return entries


def _pages(c: MlflowClient, exp_ids: list[str], filt: str, order: list[str], limit: int, board: Board,
           include_partial: bool) -> Any:
    """Runs in ``order``, ``limit`` at most, partial ones left out (counted on ``board``) unless included;
    never more than MAX_SCAN read."""
    token = None
    kept = 0
    while kept < limit and board.scanned < MAX_SCAN:
        size = min(PAGE, MAX_SCAN - board.scanned, (limit - kept) * (1 if include_partial else 2))
        page = c.search_runs(exp_ids, filt, max_results=size, order_by=order, page_token=token)
        for run in page:
            board.scanned += 1
            if not include_partial and run.data.tags.get("evalkit.partial"):
                board.partial_skipped += 1
                continue
            yield run
            kept += 1
            if kept >= limit:
                return
        token = page.token
        if not token or not len(page):
            return


def leaderboard(
    c: MlflowClient,
    *,
    uri: str = "",
    suite: str | None = None,
    team: str | None = None,
    metric: str | None = None,
    by: str | None = None,
    pick: Literal["best", "latest"] = "best",
    last: int | None = None,
    since: datetime | None = None,
    top: int = 20,
    where: str | None = None,
    ascending: bool | None = None,
    include_partial: bool = False,
) -> Board:
    """Rank finished runs by ``metric`` (default: the latest run's primary metric); partial runs
    (shards, subsets) only with ``include_partial``."""
    if last is not None and since is not None:
        raise UserError("give --last or --since, not both")
    if by is not None and by not in GROUP_TAGS:
        raise UserError(f"--by '{by}': choose agent, model, judge or agent_model")
    if uri:
        maybe_analyze(uri)
    exps = experiments(c, suite=suite, team=team)
    if not exps:
        raise UserError("no MLflow experiments yet: log runs with `evalkit run` or `evalkit sync`")
    exp_ids = [e.experiment_id for e in exps]
    names = {e.experiment_id: e.name for e in exps}
    source = "--metric"
    if not metric:
        metric, source = default_metric(c, exp_ids)
    asc = lower_is_better(metric) if ascending is None else ascending
    clauses = ["attributes.status = 'FINISHED'"]
    if since is not None:
        clauses.append(f"attributes.start_time >= {int(since.timestamp() * 1000)}")
    if where:
        clauses.append(where)  # MLflow filters are AND-only
    filt = " AND ".join(clauses)
    by_metric = [f"metrics.`{metric}` {'ASC' if asc else 'DESC'}", "attributes.start_time DESC"]
    now = time.time()
    board = Board(metric=metric, ascending=asc, by=by, metric_source=source)
    latest_first = ["attributes.start_time DESC"]
    if last is not None:
        runs = list(_pages(c, exp_ids, filt, latest_first, min(last, MAX_SCAN), board, include_partial))
    elif by is not None and pick == "latest":
        runs = list(_pages(c, exp_ids, filt, latest_first, MAX_SCAN, board, include_partial))
    elif by is not None:
        runs = _grouped_scan(_pages(c, exp_ids, filt, by_metric, MAX_SCAN, board, include_partial), by, top)
    else:
        runs = list(_pages(c, exp_ids, filt, by_metric, top, board, include_partial))

    def order(e: Entry) -> tuple[float, float]:
        return (e.value if asc else -e.value, -(e.started.timestamp() if e.started else 0))

    entries = [e for e in (run_entry(r, metric, names, now, by) for r in runs) if e is not None]
    if pick == "best":
        entries.sort(key=order)
    if by is not None:
        entries = _first_per_group(entries)
    entries.sort(key=order)
    board.entries = rank(entries[:top])
    return board


def _grouped_scan(ranked: Any, by: str, top: int) -> list[Run]:
    """Read ranked runs until ``top`` groups have their best run."""
    out: list[Run] = []
    groups: set[str] = set()
    for r in ranked:
        out.append(r)
        groups.add(_group_of(r, by))
        if len(groups) >= top:
            break
    return out


def _first_per_group(entries: list[Entry]) -> list[Entry]:
    seen: set[str | None] = set()
    out = []
    for e in entries:
        if e.group not in seen:
            seen.add(e.group)
            out.append(e)
    return out
