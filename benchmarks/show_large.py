"""``evalkit show`` on a 200,000-case run: the default page as a user runs it (a fresh process), a deep
page, ``--failed`` and ``--json``, and :func:`evalkit.store.reads.case_page` in process.

The store is built once under ``/tmp/evalkit-show-large/`` (bulk Arrow inserts, 3 scores a case, about
10 % failed and 1 % errored) and reused while it holds the same run. ``--old`` also times the unpaged
:func:`evalkit.store.reads.cases_with_scores` that ``show`` used to call. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = Path("/tmp/evalkit-show-large")
BATCH = 50_000


def run_id_for(n: int) -> str:
    return f"show-large-{n}"


def build(store_path: Path, n: int) -> None:
    """Write a synthetic run of ``n`` cases (and ``3 n`` scores) in batches of Arrow rows."""
    import polars as pl

    from evalkit.store.db import Store

    run_id = run_id_for(n)
    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    with Store(store_path) as st:
        st.create_run({"run_id": run_id, "suite": "show-large", "status": "completed", "started_at": t0,
                       "ended_at": t0 + timedelta(hours=2), "target": "bench-agent", "cases_total": n, "config": {}})
        for lo in range(0, n, BATCH):
            idx = pl.int_range(lo, min(lo + BATCH, n), eager=True).alias("i")
            base = pl.DataFrame(idx)
            case_id = (pl.when(pl.col("i") % 10_000 == 7)  # a few 60-character ids
                       .then(pl.format("long-case-id-{}-", pl.col("i").cast(pl.Utf8).str.zfill(6)) + pl.lit("x" * 40))
                       .otherwise(pl.format("case-{}", pl.col("i").cast(pl.Utf8).str.zfill(6))))
            errored = pl.col("i") % 97 == 0
            cases = base.select(
                pl.lit(run_id).alias("run_id"), case_id.alias("case_id"), pl.lit(0, pl.Int32).alias("repeat"),
                pl.when(errored).then(pl.lit("error")).otherwise(pl.lit("ok")).alias("status"),
                pl.format('{{"question": "how do I reset password {}?"}}', pl.col("i")).alias("input"),
                pl.format('"steps for {}"', pl.col("i")).alias("expected"),
                pl.when(errored).then(pl.lit(None, pl.Utf8))
                  .otherwise(pl.format('"Open settings, choose reset, confirm ticket {}."', pl.col("i"))).alias("output"),
                pl.when(errored).then(pl.format("TimeoutError: case {} took too long", pl.col("i")))
                  .otherwise(pl.lit(None, pl.Utf8)).alias("error"),
                ((pl.col("i") * 7919) % 2500 + 100).cast(pl.Float64).alias("latency_ms"),
                pl.lit(120, pl.Int64).alias("input_tokens"), pl.lit(40, pl.Int64).alias("output_tokens"),
                pl.lit(0.0004).alias("cost_usd"), pl.lit(1, pl.Int32).alias("llm_calls"),
                pl.when(errored).then(pl.lit("errored")).otherwise(pl.lit("completed")).alias("outcome"),
                pl.when(errored).then(pl.lit("timeout")).otherwise(pl.lit(None, pl.Utf8)).alias("error_kind"),
            )
            st.insert_frame("case_results", cases)
            scores = []
            for name, fails in (("exact_match", pl.col("i") % 11 == 0), ("contains", pl.col("i") % 23 == 0),
                                ("latency", pl.lit(False))):
                scores.append(base.select(
                    pl.lit(run_id).alias("run_id"), case_id.alias("case_id"), pl.lit(0, pl.Int32).alias("repeat"),
                    pl.lit(name).alias("name"),
                    pl.when(errored).then(pl.lit(None, pl.Float64))
                      .otherwise(pl.when(fails).then(0.0).otherwise(1.0)).alias("value"),
                    pl.lit(True).alias("is_bool"),
                    pl.when(errored).then(pl.lit(None, pl.Boolean)).otherwise(~fails).alias("passed"),
                    pl.when(fails & ~errored).then(pl.format("{} missed for case {}", pl.lit(name), pl.col("i")))
                      .otherwise(pl.lit(None, pl.Utf8)).alias("rationale"),
                    pl.when(errored).then(pl.lit("not_scored: target failed")).otherwise(pl.lit(None, pl.Utf8))
                      .alias("error"),
                    pl.when(errored).then(pl.lit("error")).otherwise(pl.lit("ok")).alias("outcome"),
                    pl.when(errored).then(pl.lit("target_exception")).otherwise(pl.lit(None, pl.Utf8))
                      .alias("error_kind"),
                ))
            st.insert_frame("scores", pl.concat(scores))


def ensure_store(directory: Path, n: int, rebuild: bool) -> tuple[Path, float | None]:
    """The store with the ``n``-case run (built now, or reused): (path, build seconds or None when reused)."""
    from evalkit.store.db import Store

    path = directory / "store.duckdb"
    if path.exists() and not rebuild:
        try:
            with Store(path, read_only=True) as st:
                got = st.execute("SELECT count(*) FROM case_results WHERE run_id = ?", [run_id_for(n)])[0][0]
            if got == n:
                return path, None
        except Exception:  # damaged or old: build anew
            pass
    directory.mkdir(parents=True, exist_ok=True)
    for p in directory.glob("store.duckdb*"):
        p.unlink()
    t0 = time.perf_counter()
    build(path, n)
    return path, round(time.perf_counter() - t0, 2)


def time_show(store: Path, run_id: str, *args: str) -> tuple[float, int, str]:
    """``evalkit show RUN ARGS`` in a fresh process, output into a pipe: (seconds, output bytes, last line)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "160"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "evalkit.cli.app", "show", run_id, "--store", str(store), *args],
                          capture_output=True, env=env, timeout=600, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"evalkit show failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    lines = proc.stdout.decode().rstrip("\n").splitlines()
    return round(seconds, 3), len(proc.stdout), lines[-1] if lines else ""


def best_of(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(min(times), 4)


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=200_000)
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"where the store is kept [{DEFAULT_DIR}]")
    ap.add_argument("--rebuild", action="store_true", help="build the store even when one is there")
    ap.add_argument("--old", action="store_true", help="also time the unpaged cases_with_scores")
    args = ap.parse_args()

    from evalkit.store import reads
    from evalkit.store.db import Store

    store, build_s = ensure_store(args.dir, args.cases, args.rebuild)
    run_id = run_id_for(args.cases)
    show_s, out_bytes, last = time_show(store, run_id)
    print(f"default page: {show_s} s, {out_bytes} bytes; footer: {last}", file=sys.stderr)
    deep_s, deep_bytes, _ = time_show(store, run_id, "--offset", str(args.cases - 100))
    failed_s, _, failed_footer = time_show(store, run_id, "--failed")
    json_s, json_bytes, _ = time_show(store, run_id, "--json")
    with Store(store, read_only=True) as st:
        rows, total, failed_total = reads.case_page(st, run_id, limit=50)
        assert len(rows) == 50 and total == args.cases, (len(rows), total)
        page_s = best_of(lambda: reads.case_page(st, run_id, limit=50))
        deep_page_s = best_of(lambda: reads.case_page(st, run_id, limit=50, offset=args.cases - 100))
        failed_page_s = best_of(lambda: reads.case_page(st, run_id, failed_only=True, limit=50))
        counts_s = best_of(lambda: reads.case_counts(st, run_id))
        old_s = best_of(lambda: reads.cases_with_scores(st, run_id), repeat=1) if args.old else None
    result: dict[str, Any] = {
        "bench": "show_large", "cases": total, "failed": failed_total, "build_seconds": build_s,
        "show_seconds": show_s, "output_bytes": out_bytes, "show_deep_offset_seconds": deep_s,
        "show_deep_offset_bytes": deep_bytes, "show_failed_seconds": failed_s, "show_json_seconds": json_s,
        "show_json_bytes": json_bytes, "case_page_seconds": page_s, "case_page_deep_offset_seconds": deep_page_s,
        "case_page_failed_seconds": failed_page_s, "case_counts_seconds": counts_s,
    }
    if old_s is not None:
        result["cases_with_scores_seconds"] = old_s
    print(f"--failed footer: {failed_footer}", file=sys.stderr)
    return result


if __name__ == "__main__":
    print(json.dumps(main()))
