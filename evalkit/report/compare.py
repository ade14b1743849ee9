"""Assemble the baseline diff payload: metric deltas with intervals and significance, flipped cases.

Run A is the baseline and run B the candidate; deltas are B − A. Significance comes from the gate's
paired comparison (:func:`evalkit.gate.baseline.compare_runs`: paired bootstrap intervals, sign-flip or
McNemar tests, Holm-adjusted), the same numbers the CI gate decides on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evalkit.report.data import as_text, clip, run_meta
from evalkit.store import reads

if TYPE_CHECKING:
    import polars as pl

    from evalkit.store.db import Store

MAX_FLIPS = 5_000  # flipped cases shown side by side (the rest are counted)


def _scores(store: Store, run_id: str) -> pl.DataFrame:
    return reads.score_frame(store, run_id)


def paired_metrics(cur: pl.DataFrame, base: pl.DataFrame, baseline_id: str) -> tuple[str, list[dict[str, Any]]]:
    """The gate's paired comparison of candidate scores ``cur`` with baseline scores ``base``: a method
    line and one row per scorer metric (``a`` baseline, ``b`` candidate, ``delta`` = b − a, ``ci`` of the
    delta, ``p``/``p_adj``, verdict flags, ``n`` paired cases). Shared by the diff report and ``evalkit compare``."""
    from evalkit.gate.baseline import compare_runs

    result = compare_runs(cur, base, baseline_run_id=baseline_id)
    rows = [
        {
            "scorer": c.scorer, "metric": c.metric, "n": c.n_shared, "a": c.baseline, "b": c.current,
            "delta": c.delta, "ci": list(c.ci) if c.ci else None, "p": c.p_value, "p_adj": c.p_adjusted,
            "test": c.test, "significant": c.significant, "regression": c.regression, "improvement": c.improvement,
        }
        for c in result.comparisons
    ]
    method = (
        "paired by case id; 95 % bootstrap intervals of the delta; "
        f"p-values {'Holm-adjusted' if result.adjust == 'holm' else 'unadjusted'}, alpha {result.alpha:g}"
    )
    return method, rows


def _flips(cur: pl.DataFrame, base: pl.DataFrame) -> dict[str, list[tuple[str, str]]]:
    """Case id -> [(scorer, 'to_fail' | 'to_pass')], a case passing when half or more of its repeats pass."""
    import polars as pl

    def verdicts(df: pl.DataFrame) -> pl.DataFrame:
        return (
            df.filter((pl.col("outcome") == "ok") & pl.col("passed").is_not_null())
            .group_by("name", "case_id")
            .agg((pl.col("passed").cast(pl.Float64).mean() >= 0.5).alias("ok"))
        )

    j = verdicts(cur).join(verdicts(base), on=["name", "case_id"], suffix="_a").filter(pl.col("ok") != pl.col("ok_a"))
    out: dict[str, list[tuple[str, str]]] = {}
    for name, case_id, ok in j.sort("case_id", "name").select("name", "case_id", "ok").iter_rows():
        out.setdefault(case_id, []).append((name, "to_pass" if ok else "to_fail"))
    return out


def _side(store: Store, run_id: str, case_ids: list[str]) -> dict[str, dict[str, Any]]:
    """For each case: its first repeat's input, expected, output, outcome, error and scores (of repeat 0)."""
    if not case_ids:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for r in reads.case_rows(store, run_id, case_ids=case_ids):
        if r["case_id"] in out:
            continue
        out[r["case_id"]] = {
            "input": as_text(r["input"]), "expected": as_text(r["expected"]), "output": as_text(r["output"]),
            "error": clip(r["error"]), "status": r["status"], "outcome": r["outcome"], "error_kind": r["error_kind"],
            "scores": [],
        }
    for s in reads.score_rows(store, run_id, case_ids=case_ids, repeat=0):
        if s["case_id"] in out:
            out[s["case_id"]]["scores"].append({
                "name": s["name"], "value": s["value"], "passed": s["passed"], "outcome": s["outcome"],
                "error_kind": s["error_kind"], "rationale": clip(s["rationale"]), "error": clip(s["error"]),
            })
    return out


def run_metrics(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Run-level rows (error rate, latency, tokens, cost, cases) of two stored run summaries, with b − a."""
    keys = [("error_rate", "error rate"), ("latency_p50_ms", "latency p50 (ms)"), ("latency_p95_ms", "latency p95 (ms)"),
            ("tokens_total", "tokens"), ("cost_usd_total", "cost (USD)"), ("cases", "cases")]
    rows = []
    for key, label in keys:
        va, vb = a.get(key), b.get(key)
        rows.append({"name": label, "a": va, "b": vb,
                     "delta": (vb - va) if isinstance(va, int | float) and isinstance(vb, int | float) else None})
    return rows


def compare_payload(store: Store, run_a: str, run_b: str) -> dict[str, Any]:
    """Everything the diff report shows (A = baseline, B = candidate)."""
    ra, rb = store.get_run(run_a), store.get_run(run_b)
    sa, sb = _scores(store, ra["run_id"]), _scores(store, rb["run_id"])
    if sa.height and sb.height:
        method, metrics = paired_metrics(sb, sa, ra["run_id"])
        significance = True
    else:
        method, metrics, significance = "nothing to compare: a run has no scores", [], False
    flips = _flips(sb, sa) if sa.height and sb.height else {}
    ids = sorted(flips)[:MAX_FLIPS]
    side_a, side_b = _side(store, ra["run_id"], ids), _side(store, rb["run_id"], ids)
    return {
        "kind": "compare",
        "a": run_meta(store, ra),
        "b": run_meta(store, rb),
        "summary_a": ra.get("summary") or {},
        "summary_b": rb.get("summary") or {},
        "method": method,
        "significance": significance,
        "metrics": metrics,
        "run_metrics": run_metrics(ra.get("summary") or {}, rb.get("summary") or {}),
        "flips": [{"case_id": c, "flips": [list(f) for f in flips[c]], "a": side_a.get(c), "b": side_b.get(c)}
                  for c in ids],
        "flips_total": len(flips),
    }
