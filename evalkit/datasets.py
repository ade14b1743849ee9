"""Dataset loading: JSONL, CSV, Parquet, YAML or inline cases, validated with file and line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from pydantic import ValidationError

from evalkit.errors import UserError
from evalkit.schema import Case
from evalkit.yaml_lines import line_of, load_yaml

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".yaml": "yaml", ".yml": "yaml"}
CASE_FIELDS = set(Case.model_fields)
MAX_LINE_BYTES = 16 * 1024 * 1024


def describe_validation_errors(
    exc: ValidationError, known: Iterable[str] = CASE_FIELDS
) -> list[tuple[str, tuple[str | int, ...]]]:
    """One readable sentence and location per pydantic error (``known``: the valid fields).

    Unknown fields come first, with a "did you mean"; a required field is not reported as
    missing when an unknown field looks like its misspelling (``scorer:`` for ``scorers:``).
    """
    import difflib

    known = sorted(known)
    out: list[tuple[str, tuple[str | int, ...]]] = []
    unknown: list[tuple[str, tuple[str | int, ...]]] = []
    meant: set[str] = set()
    for err in exc.errors():
        # pydantic adds the union member name to the loc for unions; drop type tags
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in ("str", "list"))))
        field = ".".join(str(p) for p in loc) or "(record)"
        kind = err["type"]
        if kind == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), known, n=1) if loc else []
            meant.update(close)
            hint = f"did you mean '{close[0]}'? " if close else ""
            unknown.append((f"field '{field}' is not a known field ({hint}known: {', '.join(known)})", loc))
        elif kind == "missing":
            out.append((f"field '{field}' is required", loc))
        else:
            out.append((f"field '{field}': {err['msg'].lower()}", loc))
    out = [(m, loc) for m, loc in out if not (m.endswith("is required") and len(loc) == 1 and loc[0] in meant)]
    return unknown + out


def describe_validation_error(
    exc: ValidationError, known: Iterable[str] = CASE_FIELDS
) -> tuple[str, tuple[str | int, ...]]:
    """The first of :func:`describe_validation_errors`."""
    return describe_validation_errors(exc, known)[0]


def _case(raw: Any, file: Path, line: int | None, lines: dict[Any, int] | None = None, prefix: tuple = ()) -> Case:
    if not isinstance(raw, dict):
        raise UserError(f"a case must be a mapping, got {type(raw).__name__}", file=file, line=line)
    try:
        return Case.model_validate(raw)
    except ValidationError as exc:
        msg, loc = describe_validation_error(exc)
        if lines is not None:
            line = line_of(lines, (*prefix, *loc)) or line
        raise UserError(msg, file=file, line=line) from None


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Case]]:
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise UserError("dataset file not found", file=path) from None
    with fh:
        for n, raw_line in enumerate(fh, start=1):
            if len(raw_line) > MAX_LINE_BYTES:
                raise UserError(f"line is {len(raw_line)} bytes, over the {MAX_LINE_BYTES} byte limit", file=path, line=n)
            if b"\x00" in raw_line:
                raise UserError("binary data, expected UTF-8 JSON lines", file=path, line=n)
            try:
                text = raw_line.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"not valid UTF-8 (byte 0x{raw_line[exc.start]:02x})", file=path, line=n) from None
            if not text.strip():
                continue
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UserError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=path, line=n) from None
            yield n, _case(raw, path, n)


def _decode_json_cell(value: Any, column: str, path: Path, row: int) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise UserError(f"field '{column}' must be JSON", file=path, line=row) from None


def _record(rec: dict[str, Any], columns: list[str], path: Path, row: int) -> Case:
    """One table row (CSV or Parquet) as a case: JSON cells decoded, unknown columns as metadata."""
    raw: dict[str, Any] = {"metadata": {}}
    for col in columns:
        val = rec[col]
        if col in ("expected_tool_calls", "metadata", "input") and isinstance(val, str) and val[:1] in "[{":
            val = _decode_json_cell(val, col, path, row)
        if col == "tags" and isinstance(val, str):
            val = [t.strip() for t in val.replace(";", ",").split(",") if t.strip()]
        if col == "metadata" and isinstance(val, dict):
            raw["metadata"].update(val)
        elif col in CASE_FIELDS:
            if val is not None and val != "":
                raw[col] = val
        elif val is not None:
            raw["metadata"][col] = val
    return _case(raw, path, row)


def _iter_csv(path: Path) -> Iterator[tuple[int, Case]]:
    """CSV rows with the physical line each starts on (a quoted cell may span lines)."""
    import csv

    csv.field_size_limit(MAX_LINE_BYTES)
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise UserError("dataset file not found", file=path) from None
    with fh:
        reader = csv.reader(fh, strict=True)
        line = 1
        try:
            header = next(reader, None)
            if not header:
                raise UserError("a CSV dataset needs a header row (id, input, expected, ...)", file=path, line=1)
            columns = [c.strip() for c in header]
            line = reader.line_num + 1
            for cells in reader:
                if not cells:  # a blank line
                    line = reader.line_num + 1
                    continue
                if len(cells) != len(columns):
                    raise UserError(f"row has {len(cells)} fields, the header has {len(columns)}", file=path, line=line)
                yield line, _record({c: (v if v != "" else None) for c, v in zip(columns, cells, strict=True)},
                                    columns, path, line)
                line = reader.line_num + 1
        except csv.Error as exc:
            raise UserError(f"cannot read CSV: {exc}", file=path, line=line) from None
        except UnicodeDecodeError:
            raise UserError("not UTF-8 text", file=path, line=line) from None


def _iter_parquet(path: Path) -> Iterator[tuple[int, Case]]:
    import polars as pl

    try:
        frame = pl.scan_parquet(path)
        columns = frame.collect_schema().names()
    except FileNotFoundError:
        raise UserError("dataset file not found", file=path) from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise UserError(f"cannot read Parquet: {str(exc).splitlines()[0]}", file=path) from None
    chunk = 10_000
    start = 0
    while True:
        try:
            batch = frame.slice(start, chunk).collect()
        except pl.exceptions.PolarsError as exc:
            raise UserError(f"cannot read Parquet: {str(exc).splitlines()[0]}", file=path) from None
        if batch.height == 0:
            return
        for i, rec in enumerate(batch.iter_rows(named=True)):
            row = start + i + 1  # the row number (Parquet has no lines)
            yield row, _record(rec, columns, path, row)
        start += chunk


def _iter_yaml(path: Path) -> Iterator[tuple[int, Case]]:
    data, lines = load_yaml(path)
    prefix: tuple[str | int, ...] = ()
    if isinstance(data, dict) and "cases" in data:
        data, prefix = data["cases"], ("cases",)
    if not isinstance(data, list):
        raise UserError("a YAML dataset must be a list of cases (or a mapping with 'cases')", file=path, line=1)
    for i, raw in enumerate(data):
        line = line_of(lines, (*prefix, i))
        yield line or 0, _case(raw, path, line, lines, (*prefix, i))


def iter_dataset(path: Path) -> Iterator[tuple[int, Case]]:
    """Stream (line or row, case) pairs from a dataset file."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"unknown dataset format '{path.suffix}' (use .jsonl, .csv, .parquet or .yaml)", file=path)
    if not path.exists():
        raise UserError("dataset file not found", file=path)
    if fmt == "jsonl":
        return _iter_jsonl(path)
    if fmt == "yaml":
        return _iter_yaml(path)
    return _iter_csv(path) if fmt == "csv" else _iter_parquet(path)


def check_unique(pairs: Iterable[tuple[int, Case]], file: Path | str) -> Iterator[Case]:
    """Yield cases, failing on a duplicate id with both places named."""
    seen: dict[str, int] = {}
    for line, case in pairs:
        if case.id in seen:
            raise UserError(f"duplicate case id '{case.id}' (first at line {seen[case.id]})", file=file, line=line)
        seen[case.id] = line
        yield case


class DatasetSource(Sequence[Case]):
    """A dataset file validated once up front, then streamed each time it is iterated.

    Validation keeps only the case ids (to catch duplicates), so memory stays flat in the
    number of cases; the runner re-reads the file lazily.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._count: int | None = None
        self._cached: list[Case] | None = None

    def validate(self) -> DatasetSource:
        n = 0
        for _ in check_unique(iter_dataset(self.path), self.path):
            n += 1
        self._count = n
        return self

    def __len__(self) -> int:
        if self._count is None:
            self.validate()
        return self._count or 0

    def __iter__(self) -> Iterator[Case]:
        if self._cached is not None:
            return iter(self._cached)
        return (case for _, case in iter_dataset(self.path))

    @overload
    def __getitem__(self, index: int) -> Case: ...
    @overload
    def __getitem__(self, index: slice) -> list[Case]: ...

    def __getitem__(self, index: int | slice) -> Case | list[Case]:
        if self._cached is None:
            self._cached = list(self)
        return self._cached[index]


def load_dataset(path: Path | str) -> list[Case]:
    """Load and validate a whole dataset file."""
    p = Path(path)
    return list(check_unique(iter_dataset(p), p))


def coerce_cases(items: Iterable[Case | dict[str, Any] | str]) -> list[Case]:
    """Cases from Python objects (dicts, strings as inputs, or Case)."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Case):
            out.append(item)
        elif isinstance(item, str):
            out.append(Case(input=item))
        else:
            out.append(_case(item, Path("<cases>"), i + 1))
    return list(check_unique(((i + 1, c) for i, c in enumerate(out)), "<cases>"))


def file_sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
