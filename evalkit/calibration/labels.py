"""Human labels: one row per human judgement of one case by one judge's rubric (JSONL or CSV).

A row names the case (``case_id``, or ``content_hash``: the case's evalkit content id ``c-…``),
the judge (``correctness`` or ``correctness@1.0``; ``criterion`` is accepted for ``judge``) and
the human's ``value``, plus who gave it (``annotator``, default ``anonymous``), when
(``labelled_at``, ISO-8601), which repeat (``repeat``, default 0), a ``note`` and a ``run_id``.

Values are read in a judge-independent canonical form: a whole number (``4``, ``"4"``), a boolean
(``true``/``false``, ``yes``/``no``, ``pass``/``fail``, any case) or a pairwise preference
(``"A"``, ``"B"``, ``"tie"``). :func:`normalise_value` fits a value to one judge's scale
(``1`` and ``0`` mean yes and no for a yes/no judge) and refuses what does not fit.

Every problem is one line naming the file, the line (a CSV row's first physical line) and the
field. Text stays data: nothing is evaluated, and CSV cells are written formula-safe.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from evalkit.datasets import MAX_LINE_BYTES, describe_validation_errors
from evalkit.errors import UserError, UserErrors
from evalkit.judging.model import JudgeDef
from evalkit.safe_text import csv_cell, json_dumps

#: The columns of a labels file, in the order they are written.
COLUMNS = ("case_id", "content_hash", "judge", "value", "annotator", "labelled_at", "repeat", "note", "run_id")
ALIASES = {"criterion": "judge"}
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
MAX_PROBLEMS = 20  # problems reported from one file before giving up

LabelValue = bool | int | str
"""A label value in canonical form: a whole number, a boolean, or ``"A"`` / ``"B"`` / ``"tie"``."""

_TRUE = ("yes", "true", "pass")
_FALSE = ("no", "false", "fail")
_INT = re.compile(r"[+-]?\d+")
_JUDGE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*(@[^\s@]+)?$")
_CONTENT_ID = re.compile(r"^c-[0-9a-f]{12}$")
_VALUES_HELP = "1-5, yes/no, true/false, pass/fail, 1/0, or A/B/tie"


_BAD_TYPE = "evalkit_label"


def label_error(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as written (see :func:`validation_problems`)."""
    return PydanticCustomError(_BAD_TYPE, message)


def canonical_value(value: Any) -> LabelValue:
    """``value`` in the judge-independent canonical form, or ValueError saying why it is no label value."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value} is not a label value: scores are whole numbers 1-5")
        value = int(value)
    if isinstance(value, int):
        if not 0 <= value <= 5:
            raise ValueError(f"{value} is not a label value (scores are 1-5, yes/no may be 1/0)")
        return value
    if isinstance(value, str):
        s = value.strip()
        low = s.lower()
        if _INT.fullmatch(s):
            return canonical_value(int(s))
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        if low in ("a", "b"):
            return low.upper()
        if low == "tie":
            return "tie"
        shown = s if len(s) <= 40 else s[:39] + "…"
        raise ValueError(f"{shown!r} is not a label value (use {_VALUES_HELP})")
    raise ValueError(f"a {type(value).__name__} is not a label value (use {_VALUES_HELP})")


def normalise_value(value: Any, output_kind: str) -> int | bool | str:
    """``value`` on the scale of a judge of ``output_kind``: an int 1-5 (``scale_1_5``), a bool
    (``yes_no``) or ``"A"`` / ``"B"`` / ``"tie"`` (``pairwise``). ValueError when it does not fit."""
    if output_kind not in ("scale_1_5", "yes_no", "pairwise"):
        raise ValueError(f"unknown judge output kind '{output_kind}' (scale_1_5, yes_no or pairwise)")
    try:
        v = canonical_value(value)
    except ValueError:
        number = _whole_number(value)
        if number is None:
            raise
        v = number  # a whole number no judge accepts: say what this judge's scale is
    if output_kind == "scale_1_5":
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{_show(value)} is not a score: a scale judge needs a whole number 1-5")
        if not 1 <= v <= 5:
            raise ValueError(f"{v} is outside the 1-5 scale")
        return v
    if output_kind == "yes_no":
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return v == 1
        raise ValueError(f"{_show(value)} is not yes or no (use yes/no, true/false, pass/fail or 1/0)")
    if isinstance(v, str):
        return v
    raise ValueError(f"{_show(value)} is not a preference: a pairwise judge needs A, B or tie")


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _show(value: Any) -> str:
    return repr(value.strip()) if isinstance(value, str) else json.dumps(value)


class Label(BaseModel):
    """One human judgement: the value a person gave one case under one judge's rubric."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    content_hash: str | None = None
    case_id: str | None = Field(default=None, validate_default=True)
    judge: str
    value: LabelValue
    annotator: str = "anonymous"
    labelled_at: datetime | None = None
    repeat: int = Field(default=0, ge=0)
    note: str | None = None
    run_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "criterion" in data and "judge" not in data:
            data = {("judge" if k == "criterion" else k): v for k, v in data.items()}
        return data

    @field_validator("content_hash", mode="before")
    @classmethod
    def _hash(cls, v: Any) -> Any:
        if v is None or v == "":
            return None
        if not isinstance(v, str) or not _CONTENT_ID.fullmatch(v):
            raise label_error("must be an evalkit content id: c- and 12 hex digits (e.g. c-0123456789ab)")
        return v

    @field_validator("case_id", mode="before")
    @classmethod
    def _case_id(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if v == "":
            v = None
        if "content_hash" not in info.data:  # content_hash itself was bad: that is the error to report
            return v
        if v is None and info.data["content_hash"] is None:
            raise label_error("give case_id or content_hash (one of the two is required)")
        if v is not None and info.data["content_hash"] is not None:
            raise label_error("give case_id or content_hash, not both")
        return v

    @field_validator("judge", mode="before")
    @classmethod
    def _judge(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip()
            if not _JUDGE.fullmatch(v):
                raise label_error("must be a judge name, optionally with @version (e.g. correctness@1.0)")
        return v

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, v: Any) -> Any:
        try:
            return canonical_value(v)
        except ValueError as exc:
            raise label_error(str(exc)) from None

    @field_validator("annotator", mode="before")
    @classmethod
    def _annotator(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip():
            raise label_error("must not be empty (leave it out for 'anonymous')")
        return v

    @field_validator("labelled_at", mode="before")
    @classmethod
    def _when(cls, v: Any) -> Any:
        if v == "":
            return None
        if v is not None and not isinstance(v, str | datetime):
            raise label_error("must be an ISO-8601 date-time as text (e.g. 2024-05-01T12:00:00Z)")
        return v

    @field_validator("repeat", mode="before")
    @classmethod
    def _repeat(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise label_error("must be a whole number (0 for the first judgement)")
        return v

    @field_validator("note", "run_id", mode="before")
    @classmethod
    def _empty_none(cls, v: Any) -> Any:
        return None if v == "" else v

    @property
    def judge_name(self) -> str:
        """The judge's name, without a version."""
        return self.judge.partition("@")[0]

    @property
    def judge_version(self) -> str | None:
        """The judge version the label was given under, when the row names one."""
        return self.judge.partition("@")[2] or None

    @property
    def case_key(self) -> str:
        """The case the label is about: its id, or its content hash."""
        return self.case_id if self.case_id is not None else str(self.content_hash)

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        """What makes a label unique: the case, the judge (by name), the annotator and the repeat."""
        kind = "case_id" if self.case_id is not None else "content_hash"
        return (kind, self.case_key, self.judge_name, self.annotator, self.repeat)


def located(message: str, path: Path, line: int | None, field: str | None = None) -> UserError:
    """A one-line problem at ``path:line``, its message starting ``field 'x':`` when it names none."""
    if field is not None and f"'{field}'" not in message:
        message = f"field '{field}': {message}"
    return UserError(message, file=path, line=line, field=field)


def validation_problems(
    exc: ValidationError, path: Path, line: int, known: Iterable[str] = COLUMNS
) -> list[UserError]:
    """One located :class:`UserError` per pydantic error (:func:`evalkit.datasets.describe_validation_errors`;
    this module's own messages keep their capitals)."""
    own = {
        tuple(err["loc"]): f"field '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}"
        for err in exc.errors()
        if err["type"] == _BAD_TYPE
    }
    out = []
    fields: set[str | None] = set()
    for message, loc in describe_validation_errors(exc, known):
        field = ".".join(str(p) for p in loc) if loc else None
        if field in fields:  # one line per field (a union reports each of its types)
            continue
        fields.add(field)
        out.append(located(own.get(tuple(loc), message), path, line, field))
    return out


def iter_jsonl_records(
    path: Path, what: str, file_kind: str
) -> Iterator[tuple[int, dict[str, Any] | UserError]]:
    """(line, JSON object) per non-blank line of a UTF-8 JSONL file of ``what`` records; a bad line
    yields its UserError (``file_kind`` names the file when it is missing)."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise UserError(f"{file_kind} file not found", file=path) from None
    except IsADirectoryError:
        raise UserError("is a directory, expected a file", file=path) from None
    with fh:
        for n, raw_line in enumerate(fh, start=1):
            if len(raw_line) > MAX_LINE_BYTES:
                yield n, located(f"line is {len(raw_line)} bytes, over the {MAX_LINE_BYTES} byte limit", path, n)
                continue
            if b"\x00" in raw_line:
                yield n, located("binary data, expected UTF-8 JSON lines", path, n)
                continue
            try:
                text = raw_line.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield n, located(f"not valid UTF-8 (byte 0x{raw_line[exc.start]:02x})", path, n)
                continue
            if not text.strip():
                continue
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                yield n, located(f"invalid JSON: {exc.msg} (column {exc.colno})", path, n)
                continue
            if not isinstance(raw, dict):
                yield n, located(f"a {what} must be a JSON object, got {type(raw).__name__}", path, n)
                continue
            yield n, raw


def _decode_cell(text: str) -> str:
    """A CSV cell as written by :func:`write_labels`: one protective leading ``'`` removed."""
    if text[:1] == "'" and text[1:2] and text[1] in "'=+-@\t\r":
        return text[1:]
    return text


def _encode_cell(value: Any) -> Any:
    """A text cell, formula-safe (:func:`evalkit.safe_text.csv_cell`) and read back exactly by
    :func:`_decode_cell`: a leading ``'`` that would be taken for protection is doubled."""
    if isinstance(value, str) and value[:1] == "'" and value[1:2] and value[1] in "'=+-@\t\r":
        return "'" + csv_cell(value)
    return csv_cell(value)


def _iter_csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | UserError]]:
    csv.field_size_limit(MAX_LINE_BYTES)
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise UserError("labels file not found", file=path) from None
    except IsADirectoryError:
        raise UserError("is a directory, expected a file", file=path) from None
    with fh:
        reader = csv.reader(fh, strict=True)
        line = 1
        try:
            header = next(reader, None)
            if not header:
                raise UserError("a CSV labels file needs a header row (case_id, judge, value, ...)", file=path, line=1)
            columns = [c.strip() for c in header]
            known = (*COLUMNS, *ALIASES)
            for col in columns:
                if col not in known:
                    close = difflib.get_close_matches(col, known, n=1)
                    hint = f"did you mean '{close[0]}'? " if close else ""
                    raise UserError(
                        f"column '{col}' is not a known field ({hint}known: {', '.join(COLUMNS)})",
                        file=path, line=1, field=col,
                    )
                if columns.count(col) > 1:
                    raise UserError(f"column '{col}' appears twice in the header", file=path, line=1, field=col)
            line = reader.line_num + 1
            for cells in reader:
                if not cells or cells == [""] * len(cells):  # a blank line
                    line = reader.line_num + 1
                    continue
                if len(cells) != len(columns):
                    yield line, located(f"row has {len(cells)} fields, the header has {len(columns)}", path, line)
                else:
                    yield line, {c: _decode_cell(v) for c, v in zip(columns, cells, strict=True) if v != ""}
                line = reader.line_num + 1
        except csv.Error as exc:
            raise UserError(f"cannot read CSV: {exc}", file=path, line=line) from None
        except UnicodeDecodeError:
            raise UserError("not UTF-8 text", file=path, line=line) from None


def _parse(raw: dict[str, Any], path: Path, line: int) -> Label | list[UserError]:
    data = dict(raw)
    for alias, name in ALIASES.items():
        if alias in data:
            if name in data:
                return [located(f"give '{name}' or '{alias}', not both", path, line, alias)]
            data[name] = data.pop(alias)
    try:
        return Label.model_validate(data)
    except ValidationError as exc:
        return validation_problems(exc, path, line)


def raise_problems(problems: list[UserError]) -> None:
    """Raise the one problem, or all of them as :class:`UserErrors`; nothing when there are none."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise UserErrors(problems)


def check_value(label: Label, judge: JudgeDef) -> Label:
    """``label`` with its value on ``judge``'s scale (ValueError when it does not fit)."""
    value = normalise_value(label.value, judge.output)
    return label if value == label.value and type(value) is type(label.value) else label.model_copy(
        update={"value": value}
    )


def load_labels(path: str | Path, judge: JudgeDef | None = None) -> list[Label]:
    """Read and validate a labels file (``.jsonl``/``.ndjson`` or ``.csv``, UTF-8).

    Every problem is a :class:`UserError` (several: :class:`UserErrors`), one line each naming the
    file, line and field. Two rows for the same case, judge, annotator and repeat are an error
    naming both lines. With ``judge``, the values of rows for that judge (by name) are fitted to its
    scale (:func:`normalise_value`) and a value that does not fit is an error; other rows are kept.
    """
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise UserError(f"unknown labels format '{p.suffix}' (use .jsonl or .csv)", file=p)
    records = iter_jsonl_records(p, "label", "labels") if fmt == "jsonl" else _iter_csv_records(p)
    problems: list[UserError] = []
    labels: list[Label] = []
    seen: dict[tuple[str, str, str, str, int], int] = {}
    for line, raw in records:
        if isinstance(raw, UserError):
            problems.append(raw)
        else:
            parsed = _parse(raw, p, line)
            if isinstance(parsed, list):
                problems.extend(parsed)
            else:
                if judge is not None and parsed.judge_name == judge.name:
                    try:
                        parsed = check_value(parsed, judge)
                    except ValueError as exc:
                        problems.append(located(f"{exc} (judge {judge.ref})", p, line, "value"))
                        continue
                first = seen.get(parsed.key)
                if first is not None:
                    problems.append(located(
                        f"duplicate label: case '{parsed.case_key}', judge '{parsed.judge_name}', annotator "
                        f"'{parsed.annotator}', repeat {parsed.repeat} is also labelled at line {first}",
                        p, line,
                    ))
                else:
                    seen[parsed.key] = line
                    labels.append(parsed)
        if len(problems) >= MAX_PROBLEMS:
            break
    raise_problems(problems)
    return labels


def label_record(label: Label) -> dict[str, Any]:
    """A label as a JSON-able record in column order, leaving out what is unset."""
    data = label.model_dump(mode="json")
    return {c: data[c] for c in COLUMNS if data[c] is not None}


def _csv_value(column: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat()
    return _encode_cell(value) if isinstance(value, str) else value


def write_labels(path: str | Path, labels: Iterable[Label]) -> Path:
    """Write labels as JSONL, or CSV when ``path`` ends in ``.csv``; :func:`load_labels` reads them back
    equal. CSV cells are formula-safe, and control characters in text (other than newlines and tabs)
    are written visible (``\\x1b``), so only JSONL keeps those exactly."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise UserError(f"unknown labels format '{p.suffix}' (use .jsonl or .csv)", file=p)
    rows = list(labels)
    if fmt == "jsonl":
        with p.open("w", encoding="utf-8", newline="\n") as fh:
            for label in rows:
                fh.write(json_dumps(label_record(label), ensure_ascii=False) + "\n")
        return p
    with p.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for label in rows:
            writer.writerow([_csv_value(c, getattr(label, c)) for c in COLUMNS])
    return p


def by_case(labels: Iterable[Label]) -> Mapping[str, list[Label]]:
    """Labels grouped by the case they are about (id or content hash), in file order."""
    out: dict[str, list[Label]] = {}
    for label in labels:
        out.setdefault(label.case_key, []).append(label)
    return out
