"""Labels and calibrations in the observability store: written idempotently, read back as types.

``human_labels`` holds one row per human judgement (joinable with ``scores`` on ``case_id`` and
``repeat``, and on ``run_id`` when the label names one); ``judge_calibrations`` one row per measured
agreement of a judge@version × model with such labels.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from evalkit.calibration.labels import Label
from evalkit.store.db import Store

LABEL_COLUMNS = ("case_id", "content_hash", "repeat", "judge", "judge_version", "value", "annotator", "labelled_at",
                 "run_id", "note", "source", "imported_at")
CALIBRATION_COLUMNS = ("calibration_id", "judge", "judge_version", "prompt_sha256", "model", "output_kind", "threshold",
                       "items", "agreement", "agreement_metric", "sensitivity", "specificity", "tp", "fp", "fn", "tn",
                       "report", "labels_sha256", "run_id", "source", "created_at")


def save_labels(store: Store, labels: Iterable[Label], *, source: str | None = None,
                run_id: str | None = None) -> int:
    """Store ``labels`` (``run_id``: for those that name none); a label already stored for the same case,
    judge, annotator, repeat and run replaces the old one. Returns how many were written."""
    import polars as pl

    now = datetime.now(UTC)
    rows = [{
        "case_id": lb.case_id, "content_hash": lb.content_hash, "repeat": lb.repeat, "judge": lb.judge_name,
        "judge_version": lb.judge_version, "value": json.dumps(lb.value), "annotator": lb.annotator,
        "labelled_at": lb.labelled_at, "run_id": lb.run_id or run_id, "note": lb.note, "source": source,
        "imported_at": now,
    } for lb in labels]
    if not rows:
        return 0
    frame = pl.DataFrame(rows, schema={
        "case_id": pl.Utf8, "content_hash": pl.Utf8, "repeat": pl.Int32, "judge": pl.Utf8, "judge_version": pl.Utf8,
        "value": pl.Utf8, "annotator": pl.Utf8, "labelled_at": pl.Datetime("us", "UTC"), "run_id": pl.Utf8,
        "note": pl.Utf8, "source": pl.Utf8, "imported_at": pl.Datetime("us", "UTC")})
    keys = frame.select("case_id", "content_hash", "judge", "annotator", "repeat", "run_id")
    with store.transaction() as st:
        for k in keys.iter_rows():
            st.execute(
                "DELETE FROM human_labels WHERE case_id IS NOT DISTINCT FROM ? AND content_hash IS NOT DISTINCT FROM ?"
                " AND judge = ? AND annotator = ? AND repeat = ? AND run_id IS NOT DISTINCT FROM ?", list(k))
        st.insert_frame("human_labels", frame)
    return frame.height


def stored_labels(store: Store, *, judge: str | None = None, run_id: str | None = None) -> list[Label]:
    """Labels in the store (``judge``: by name; ``run_id``: those of that run and those that name no run)."""
    where, params = ["1 = 1"], []
    if judge is not None:
        where.append("judge = ?")
        params.append(judge.partition("@")[0])
    if run_id is not None:
        where.append("(run_id = ? OR run_id IS NULL)")
        params.append(run_id)
    rows = store.query(f"SELECT * FROM human_labels WHERE {' AND '.join(where)} ORDER BY imported_at, case_id,"
                       " annotator, repeat", params)
    return [Label(case_id=r["case_id"], content_hash=r["content_hash"], repeat=r["repeat"],
                  judge=r["judge"] + (f"@{r['judge_version']}" if r["judge_version"] else ""),
                  value=json.loads(r["value"]), annotator=r["annotator"], labelled_at=r["labelled_at"],
                  note=r["note"], run_id=r["run_id"]) for r in rows]


def save_calibration(store: Store, row: dict[str, Any]) -> None:
    """Store one calibration (a :data:`CALIBRATION_COLUMNS` mapping; ``report`` any JSON-able value)."""
    values = [json.dumps(row.get(c), default=str) if c == "report" else row.get(c) for c in CALIBRATION_COLUMNS]
    marks = ", ".join("?" for _ in CALIBRATION_COLUMNS)
    store.execute(f"INSERT INTO judge_calibrations ({', '.join(CALIBRATION_COLUMNS)}) VALUES ({marks})", values)


def latest_calibrations(store: Store, refs: Sequence[tuple[str, str, str]] | None = None) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The newest calibration of each judge × version × model (``refs``: only these), keyed by that triple."""
    rows = store.query(
        "SELECT * FROM judge_calibrations QUALIFY row_number() OVER (PARTITION BY judge, judge_version, model"
        " ORDER BY created_at DESC) = 1")
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    wanted = set(refs) if refs is not None else None
    for r in rows:
        key = (r["judge"], r["judge_version"], r["model"])
        if wanted is None or key in wanted:
            r["report"] = json.loads(r["report"]) if isinstance(r["report"], str) else r["report"]
            out[key] = r
    return out
