"""Judge health from stored scores, and each judge scorer's summary in a run (health, calibration,
corrected pass rate). One SQL serves a run's summary and the dashboard's judge view."""

from __future__ import annotations

import math
from typing import Any

from evalkit.schema import JudgeSummary, RunSummary
from evalkit.store.db import Store

HEALTH_SQL = """
SELECT {group} json_extract_string(s.metadata, '$.judge') AS judge, json_extract_string(s.metadata, '$.model') AS model,
       count(*) AS scores,
       count(*) FILTER (WHERE s.outcome = 'error') AS errors,
       count(*) FILTER (WHERE s.error_kind = 'judge_output_invalid') AS invalid,
       count(*) FILTER (WHERE json_extract(s.metadata, '$.position_disagreement') IS NOT NULL) AS pairwise,
       count(*) FILTER (WHERE json_extract_string(s.metadata, '$.position_disagreement') = 'true') AS disagreements,
       avg(TRY_CAST(json_extract_string(s.metadata, '$.spread') AS DOUBLE)) AS mean_spread,
       corr(s.value, length(CAST(c.output AS VARCHAR))) FILTER (WHERE s.outcome = 'ok') AS verbosity_corr,
       count(DISTINCT s.run_id) AS runs
FROM scores s LEFT JOIN case_results c USING (run_id, case_id, repeat)
WHERE {runs} AND coalesce(json_extract_string(s.metadata, '$.judge'), '') <> ''
GROUP BY ALL ORDER BY ALL
"""


def health_rows(store: Store, *, run_id: str | None = None, newest: int | None = None,
                by_scorer: bool = False) -> list[dict[str, Any]]:
    """Per judge@version × model (and scorer name, ``by_scorer``): counts and rates over one run or the
    ``newest`` runs. Rates are None where they are undefined."""
    params: list[str | int]
    if run_id is not None:
        runs, params = "s.run_id = ?", [run_id]
    else:
        runs, params = "s.run_id IN (SELECT run_id FROM runs ORDER BY started_at DESC LIMIT ?)", [newest or 20]
    sql = HEALTH_SQL.format(group="s.name AS scorer," if by_scorer else "", runs=runs)
    out = []
    for r in store.query(sql, params):
        n = r["scores"] or 0
        corr = r["verbosity_corr"]
        # rounded: DuckDB's parallel aggregates differ in the last bits with the order rows arrive in
        spread = r["mean_spread"]
        out.append({**r, "error_rate": r["errors"] / n if n else None, "invalid_rate": r["invalid"] / n if n else None,
                    "position_disagreement": r["disagreements"] / r["pairwise"] if r["pairwise"] else None,
                    "mean_spread": round(spread, 9) if spread is not None else None,
                    "verbosity_corr": round(corr, 9) if corr is not None and math.isfinite(corr) else None})
    return out


def _has_judges(store: Store, run_id: str) -> bool:
    """Whether any score of the run came from an LLM judge (a cheap scan, before the health query's join)."""
    return bool(store.execute("SELECT 1 FROM scores WHERE run_id = ? AND metadata IS NOT NULL"
                              " AND json_extract_string(metadata, '$.judge') IS NOT NULL LIMIT 1", [run_id]))


def attach_judges(store: Store, run_id: str, summary: RunSummary) -> RunSummary:
    """``summary`` with each judge scorer's :class:`JudgeSummary` (unchanged when no judge scored)."""
    if not summary.scorers or not _has_judges(store, run_id):
        return summary
    from evalkit.calibration.records import latest_calibrations

    rows = {r["scorer"]: r for r in health_rows(store, run_id=run_id, by_scorer=True)}
    refs = [(*str(r["judge"]).split("@", 1), r["model"]) for r in rows.values() if "@" in str(r["judge"] or "")]
    calibrations = latest_calibrations(store, refs)
    scorers = []
    for s in summary.scorers:
        r = rows.get(s.name)
        if r is None:
            scorers.append(s)
            continue
        name, _, version = str(r["judge"]).partition("@")
        judge = JudgeSummary(ref=r["judge"], model=r["model"], invalid_rate=r["invalid_rate"],
                             position_disagreement=r["position_disagreement"], mean_spread=r["mean_spread"],
                             verbosity_corr=r["verbosity_corr"])
        cal = calibrations.get((name, version, r["model"]))
        if cal is not None:
            judge = _calibrated(judge, cal, passed=s.passed, judged=s.scored if s.pass_rate is not None else 0)
        scorers.append(s.model_copy(update={"judge": judge}))
    return summary.model_copy(update={"scorers": scorers})


def _calibrated(judge: JudgeSummary, cal: dict[str, Any], *, passed: int, judged: int) -> JudgeSummary:
    """The judge summary with its calibration and, when the calibration allows one, the corrected pass rate."""
    update: dict[str, Any] = {"calibration_id": cal["calibration_id"], "agreement": cal["agreement"],
                              "agreement_metric": cal["agreement_metric"], "calibration_items": cal["items"],
                              "sensitivity": cal["sensitivity"], "specificity": cal["specificity"]}
    counts = [cal.get(k) for k in ("tp", "fp", "fn", "tn")]
    if judged and all(c is not None for c in counts):
        from evalkit.calibration.agreement import Confusion
        from evalkit.calibration.correction import corrected_pass_rate

        tp, fp, fn, tn = (int(c) for c in counts)  # type: ignore[arg-type]
        rate = corrected_pass_rate(passed, judged, calib=Confusion(tp=tp, fp=fp, fn=fn, tn=tn))
        if rate.usable:
            update["corrected_pass_rate"] = rate.corrected
            update["corrected_pass_rate_ci"] = rate.interval
        else:
            update["correction_note"] = rate.reason
    return judge.model_copy(update=update)
