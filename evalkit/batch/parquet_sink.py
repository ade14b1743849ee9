"""Parquet shards: batch workers write results and spans as part files, the driver merges them.

A shard directory (one per run) holds part files named ``<chunk>-<attempt>-<part>.<table>.parquet``
with the columns of the store's ``case_results``, ``scores`` and ``spans`` tables. A part's
``.cases.parquet`` file is written last (by an atomic rename): it is the part's commit marker,
so the driver never reads a half-written part. Merging is idempotent: a case (and repeat) already
in the store is never inserted again, with its scores and spans, so a retried chunk or a
resumed driver writes nothing twice.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.schema import Case, CaseResult

if TYPE_CHECKING:
    import polars as pl

    from evalkit.store.db import Store

CASES, SCORES, SPANS = "cases", "scores", "spans"


def _write(frame: pl.DataFrame, path: Path) -> None:
    """Write a polars frame as Parquet (polars' own writer), atomically (temp file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


def chunk_prefix(chunk: int) -> str:
    return f"{chunk:06d}"


@dataclass(frozen=True)
class Part:
    """One committed part: its cases file and the matching scores file."""

    cases: Path

    @property
    def stem(self) -> str:
        return self.cases.name.removesuffix(f".{CASES}.parquet")

    @property
    def scores(self) -> Path:
        return self.cases.with_name(f"{self.stem}.{SCORES}.parquet")

    @property
    def chunk(self) -> int:
        return int(self.stem.split("-", 1)[0])


def committed_parts(shard_dir: Path, chunk: int | None = None) -> list[Part]:
    """Committed parts in a shard directory (of one chunk, or all), in name order."""
    pattern = f"{chunk_prefix(chunk)}-*.{CASES}.parquet" if chunk is not None else f"*.{CASES}.parquet"
    return [Part(p) for p in sorted(shard_dir.glob(pattern))]


def span_files(shard_dir: Path, chunk: int | None = None) -> list[Path]:
    pattern = f"{chunk_prefix(chunk)}-*.{SPANS}.parquet" if chunk is not None else f"*.{SPANS}.parquet"
    return sorted(shard_dir.glob(pattern))


def part_keys(parts: Iterable[Part]) -> set[tuple[str, int]]:
    """(case id, repeat) pairs recorded in parts (read from the Parquet files, two columns only)."""
    import polars as pl

    files = [str(p.cases) for p in parts]
    if not files:
        return set()
    frame = pl.scan_parquet(files).select("case_id", "repeat").collect()
    return {(str(c), int(r)) for c, r in frame.iter_rows()}


class ParquetShardSink:
    """A runner sink writing one chunk's results as Parquet parts of ``flush_rows`` cases each, or of
    what finished in ``flush_s`` seconds if that is fewer (slow cases are committed, and visible, soon)."""

    def __init__(self, shard_dir: Path, chunk: int, *, flush_rows: int = 2000, flush_s: float = 1.0,
                 before_write: Callable[[], None] | None = None) -> None:
        self.dir = shard_dir
        self.before_write = before_write  # e.g. the tracer's sync: a part's spans are on disk before it commits
        self.prefix = f"{chunk_prefix(chunk)}-{uuid.uuid4().hex[:8]}"
        self.flush_rows = max(1, flush_rows)
        self.flush_s = flush_s
        self._last = time.monotonic()
        self.parts = 0
        self.written = 0
        self.errors = 0
        self._buf: list[tuple[CaseResult, Case]] = []
        self.dir.mkdir(parents=True, exist_ok=True)

    def add(self, result: CaseResult, case: Case) -> None:
        self._buf.append((result, case))
        if len(self._buf) >= self.flush_rows or time.monotonic() - self._last >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        """Write the buffered results as one part (scores first, then the committing cases file)."""
        from evalkit.store.arrow_rows import result_columns, to_frame

        self._last = time.monotonic()
        if not self._buf:
            return
        batch, self._buf = self._buf, []
        if self.before_write is not None:
            self.before_write()
        inputs = {c.id: c.model_dump(mode="json", include={"input", "expected", "metadata"}) for _, c in batch}
        results = [r for r, _ in batch]
        cases, scores = result_columns(results, inputs)
        stem = f"{self.prefix}-{self.parts:04d}"
        _write(to_frame("scores", scores), self.dir / f"{stem}.{SCORES}.parquet")
        _write(to_frame("case_results", cases), self.dir / f"{stem}.{CASES}.parquet")
        self.parts += 1
        self.written += len(results)
        self.errors += sum(r.status != "ok" for r in results)


class ShardSpanStore:
    """Stands in for the store under evalkit's span sink: each span batch becomes a Parquet part."""

    def __init__(self, shard_dir: Path, chunk: int) -> None:
        self.path = shard_dir
        self.prefix = f"{chunk_prefix(chunk)}-{uuid.uuid4().hex[:8]}"
        self.files = 0
        self.rows = 0
        shard_dir.mkdir(parents=True, exist_ok=True)

    def insert_frame(self, table: str, data: pl.DataFrame) -> None:
        if table != "spans":
            raise ValueError(f"a shard span store only takes spans, not {table}")
        if data.height == 0:
            return
        _write(data, self.path / f"{self.prefix}-s{self.files:04d}.{SPANS}.parquet")
        self.files += 1
        self.rows += data.height


# -- driver side ---------------------------------------------------------------------------

def _lit(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _files(paths: Iterable[Path]) -> str:
    return "[" + ", ".join(_lit(p) for p in paths) + "]"


def _absent(run_id: str, alias: str) -> str:
    return (f"NOT EXISTS (SELECT 1 FROM case_results c WHERE c.run_id = {_lit(run_id)}"
            f" AND c.case_id = {alias}.case_id AND c.repeat = {alias}.repeat)")


def merge_parts(store: Store, run_id: str, parts: list[Part]) -> None:
    """Insert parts into the store in one transaction, skipping cases it already holds."""
    if not parts:
        return
    stmts = ["BEGIN TRANSACTION"]
    for p in parts:  # one part at a time, so a case present in two parts (a retried chunk) lands once
        stmts.append(f"INSERT INTO scores BY NAME SELECT s.* FROM read_parquet({_lit(p.scores)}) s"
                     f" WHERE s.run_id = {_lit(run_id)} AND {_absent(run_id, 's')}")
        stmts.append(f"INSERT INTO case_results BY NAME SELECT p.* FROM read_parquet({_lit(p.cases)}) p"
                     f" WHERE p.run_id = {_lit(run_id)} AND {_absent(run_id, 'p')}")
    stmts.append("COMMIT")
    store.execute(";\n".join(stmts))  # a failure closes the cursor, which rolls the transaction back


def merge_spans(store: Store, run_id: str, files: list[Path], *, dedupe: bool = False) -> None:
    """Insert the spans of cases the store holds for this run (spans of discarded attempts are dropped).

    ``dedupe`` also skips spans already stored (used when recovering shards of an interrupted driver).
    """
    if not files:
        return
    sql = (f"INSERT INTO spans BY NAME SELECT sp.* FROM read_parquet({_files(files)}, union_by_name = true) sp"
           f" WHERE sp.trace_id IN (SELECT trace_id FROM case_results WHERE run_id = {_lit(run_id)}"
           f" AND trace_id IS NOT NULL)")
    if dedupe:
        sql += " AND NOT EXISTS (SELECT 1 FROM spans o WHERE o.trace_id = sp.trace_id AND o.span_id = sp.span_id)"
    store.execute(sql)


def run_totals(store: Store, run_id: str) -> tuple[int, int, int, float]:
    """(cases, errors, tokens, cost) stored so far for a run."""
    rows: list[tuple[Any, ...]] = store.execute(
        "SELECT count(*), coalesce(count_if(status <> 'ok'), 0), coalesce(sum(input_tokens + output_tokens), 0),"
        " coalesce(sum(cost_usd), 0) FROM case_results WHERE run_id = ?", [run_id]
    )
    n, err, tok, cost = rows[0]
    return int(n), int(err), int(tok), float(cost)
