"""Read-only queries on the embedded MLflow SQLite store without importing mlflow.

``evalkit leaderboard`` on the default embedded store would spend ~3 s importing mlflow and its
SQL layer to run a query that takes 0.2 s. This reader answers the few searches the leaderboard
makes (experiments by name, finished runs ordered by a metric or by start time, with a start-time
bound and tag equality) straight from MLflow's own tables, with MLflow's semantics: only active
runs and experiments, runs without the metric ranked last, latest metric values. Anything else
raises :class:`Unsupported` and the caller uses the real MLflow client. The schema is MLflow's
(pinned to 3.17.x); the tests compare both paths.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Unsupported(Exception):
    """A search this reader does not implement; use the MLflow client."""


class Page(list[Any]):
    """A page of results with MLflow's ``token`` for the next page (None at the end)."""

    token: str | None = None


@dataclass
class ExperimentRow:
    experiment_id: str
    name: str
    lifecycle_stage: str


@dataclass
class RunInfo:
    run_id: str
    run_name: str | None
    experiment_id: str
    start_time: int | None
    status: str


@dataclass
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class RunRow:
    info: RunInfo
    data: RunData


_CLAUSE = re.compile(
    r"^\s*(?:attributes\.status\s*=\s*'(?P<status>[A-Z]+)'"
    r"|attributes\.start_time\s*>=\s*(?P<since>\d+)"
    r"|tags\.`(?P<tag>[^`]+)`\s*=\s*'(?P<tagval>[^']*)')\s*$"
)
_ORDER = re.compile(r"^\s*(?:metrics\.`(?P<metric>[^`]+)`|attributes\.(?P<attr>start_time))\s+(?P<dir>ASC|DESC)\s*$", re.I)


class SqliteRunReader:
    """The subset of ``MlflowClient`` the leaderboard uses, over an MLflow SQLite file."""

    def __init__(self, path: Path) -> None:
        self.con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def close(self) -> None:
        self.con.close()

    # -- experiments -----------------------------------------------------------------------
    def get_experiment_by_name(self, name: str) -> ExperimentRow | None:
        row = self.con.execute(
            "SELECT experiment_id, name, lifecycle_stage FROM experiments WHERE name = ?", [name]
        ).fetchone()
        return ExperimentRow(str(row[0]), row[1], row[2]) if row else None

    def search_experiments(self, max_results: int = 100, filter_string: str | None = None,
                           page_token: str | None = None) -> Page:
        where, params = "lifecycle_stage = 'active'", []
        if filter_string:
            m = re.fullmatch(r"\s*name LIKE '([^']*)'\s*", filter_string)
            if not m:
                raise Unsupported(filter_string)
            where += " AND name LIKE ?"
            params.append(m.group(1))
        offset = int(page_token or 0)
        rows = self.con.execute(
            f"SELECT experiment_id, name, lifecycle_stage FROM experiments WHERE {where}"
            f" ORDER BY experiment_id LIMIT ? OFFSET ?", [*params, max_results + 1, offset]
        ).fetchall()
        page = Page(ExperimentRow(str(r[0]), r[1], r[2]) for r in rows[:max_results])
        page.token = str(offset + max_results) if len(rows) > max_results else None
        return page

    def tag_values(self, key: str, limit: int = 200) -> list[str]:
        """The distinct non-empty values of run tag ``key`` (e.g. the branches runs came from), sorted."""
        rows = self.con.execute("SELECT DISTINCT value FROM tags WHERE key = ? AND value <> '' ORDER BY value LIMIT ?",
                                [key, limit])
        return [r[0] for r in rows]

    # -- runs ------------------------------------------------------------------------------
    def search_runs(self, experiment_ids: list[str], filter_string: str = "", max_results: int = 100,
                    order_by: list[str] | None = None, page_token: str | None = None) -> Page:
        where = [f"r.experiment_id IN ({', '.join('?' for _ in experiment_ids)})", "r.lifecycle_stage = 'active'"]
        params: list[Any] = [int(e) for e in experiment_ids]
        joins: list[str] = []
        join_params: list[Any] = []
        for clause in filter(None, (c.strip() for c in re.split(r"\s+AND\s+", filter_string or "", flags=re.I))):
            m = _CLAUSE.match(clause)
            if not m:
                raise Unsupported(clause)
            if m["status"]:
                where.append("r.status = ?")
                params.append(m["status"])
            elif m["since"]:
                where.append("r.start_time >= ?")
                params.append(int(m["since"]))
            else:
                alias = f"t{len(joins)}"
                joins.append(f"JOIN tags {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = ? AND {alias}.value = ?")
                join_params += [m["tag"], m["tagval"]]
        order_sql: list[str] = []
        metric_join = ""
        metric_params: list[Any] = []
        for item in order_by or []:
            m = _ORDER.match(item)
            if not m:
                raise Unsupported(item)
            d = m["dir"].upper()
            if m["metric"]:
                if metric_join:
                    raise Unsupported("two metric orderings")
                metric_join = "LEFT JOIN latest_metrics lm ON lm.run_uuid = r.run_uuid AND lm.key = ?"
                metric_params = [m["metric"]]
                order_sql += ["lm.value IS NULL", f"lm.value {d}"]  # runs without the metric last
            else:
                order_sql.append(f"r.start_time {d}")
        order_sql.append("r.run_uuid")
        offset = int(page_token or 0)
        sql = (f"SELECT r.run_uuid, r.name, r.experiment_id, r.start_time, r.status FROM runs r {metric_join} "
               f"{' '.join(joins)} WHERE {' AND '.join(where)} ORDER BY {', '.join(order_sql)} LIMIT ? OFFSET ?")
        rows = self.con.execute(sql, [*metric_params, *join_params, *params, max_results + 1, offset]).fetchall()
        page = Page(self._runs(rows[:max_results]))
        page.token = str(offset + max_results) if len(rows) > max_results else None
        return page

    def _runs(self, rows: list[tuple[Any, ...]]) -> list[RunRow]:
        ids = [r[0] for r in rows]
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        for run, key, value, is_nan in self.con.execute(
            f"SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN ({marks})", ids
        ):
            metrics[run][key] = float("nan") if is_nan else float(value)
        for run, key, value in self.con.execute(f"SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({marks})", ids):
            tags[run][key] = value
        return [RunRow(RunInfo(r[0], r[1], str(r[2]), r[3], r[4]), RunData(metrics[r[0]], tags[r[0]])) for r in rows]
