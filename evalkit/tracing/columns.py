"""Spans as columns: one batch of spans becomes one polars frame for one insert into ``spans``.

Spans of this process become row tuples through :func:`make_row` as they end, whether evalkit made
them (:class:`~evalkit.tracing.record.EvalSpan`, no SDK span involved) or the agent did through the
OpenTelemetry API (the SDK's ``ReadableSpan``, :func:`sdk_row`); spans from the OTLP receiver arrive
already decoded into plain values (:func:`plain_row`). A batch of rows is appended column by column; :meth:`SpanColumns.to_frame`
turns the batch into a polars frame (timestamps and durations computed there, secrets masked
there with vectorised regexes; the resource, the same for every span of a process, is masked once
where it is made), which the store scans as an Arrow stream (no pyarrow involved).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evalkit.redact import Redactor
from evalkit.tracing.json_text import compact as _encode

if TYPE_CHECKING:
    import polars as pl

    from evalkit.tracing.state import Route


COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "name", "kind", "start_ns", "end_ns", "status_code", "status_message",
    "service_name", "run_id", "case_id", "operation", "provider", "request_model", "response_model",
    "input_tokens", "output_tokens", "tool_name", "error_type", "attributes", "events", "resource",
)
LLM_OPERATIONS = ("chat", "text_completion", "generate_content", "embeddings")
_KINDS = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def kind_name(value: Any) -> str:
    """An OTLP/SDK span kind (enum, int or ``SPAN_KIND_CLIENT``) as ``CLIENT``."""
    if isinstance(value, int):
        return _KINDS.get(value, "INTERNAL")
    name = getattr(value, "name", None) or str(value)
    return name.upper().removeprefix("SPAN_KIND_") or "INTERNAL"


def status_name(value: Any) -> str:
    """An OTLP/SDK status code (enum, int or ``STATUS_CODE_ERROR``) as ``ERROR``."""
    if isinstance(value, int):
        return _STATUS.get(value, "UNSET")
    name = getattr(value, "name", None) or str(value)
    return name.upper().removeprefix("STATUS_CODE_") or "UNSET"


def _int(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _str(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, list | tuple):
        return ",".join(str(x) for x in v)
    return str(v)


def error_type(attrs: Mapping[str, Any], status: str, events: Sequence[Mapping[str, Any]] | None) -> str | None:
    """``error.type`` when set; for failed spans, else the recorded exception's type."""
    et = attrs.get("error.type")
    if et is not None:
        return str(et)
    if status == "ERROR":
        for ev in events or ():
            if ev.get("name") == "exception":
                t = (ev.get("attributes") or {}).get("exception.type")
                if t:
                    return str(t)
        return "error"
    return None


_resources: dict[int, tuple[Any, str | None, str]] = {}


def resource_fields(resource: Any) -> tuple[str | None, str]:
    """(service.name, attributes as JSON with secrets masked) of an SDK resource, cached (the resource is
    kept alive): every span of a process shares one resource, so it is masked once, not in every row."""
    hit = _resources.get(id(resource))
    if hit is None or hit[0] is not resource:
        from evalkit.redact import default

        red = default()
        attrs = dict(getattr(resource, "attributes", None) or {})
        hit = _resources[id(resource)] = (resource, _str(attrs.get("service.name")),
                                          red.text(_encode(red.value(attrs, patterns=False))))
    return hit[1], hit[2]


_NO_TYPED = (None, None, None, None, None, None, None)
_ENUM_NAMES: dict[int, tuple[Any, str]] = {}  # id(enum member) -> (member, name); Enum hashing is slow


def _enum_name(member: Any, convert: Any) -> str:
    hit = _ENUM_NAMES.get(id(member))
    if hit is None or hit[0] is not member:
        hit = _ENUM_NAMES[id(member)] = (member, convert(member))
    return hit[1]


def make_row(trace_hex: str, span_hex: str, parent_hex: str | None, name: str, kind: str, start: int | None,
             end: int | None, code: str, description: str | None, svc: str | None, run_id: str | None,
             case_id: str | None, a: Mapping[str, Any] | None, evs: list[dict[str, Any]] | None,
             res: str | None) -> tuple[Any, ...]:
    """One span of this process as a row tuple in :data:`COLUMNS` order: the one place such rows are made.

    Both kinds of local span go through here: evalkit's own (:class:`~evalkit.tracing.record.EvalSpan`)
    and the SDK's (:func:`sdk_row`, for spans the agent makes with the OpenTelemetry API). ``a`` are
    OpenTelemetry-clean attributes (the SDK's cleaning rules), ``evs`` events as
    ``{name, time_ns, attributes}`` dicts, ``res`` the resource's JSON, masked already
    (:func:`resource_fields`). Masking the rest is left to :meth:`SpanColumns.to_frame`.
    """
    if a:
        tin = a.get("gen_ai.usage.input_tokens")
        tout = a.get("gen_ai.usage.output_tokens")
        typed: tuple[Any, ...] = (
            a.get("gen_ai.operation.name"), a.get("gen_ai.provider.name") or a.get("gen_ai.system"),
            a.get("gen_ai.request.model"), a.get("gen_ai.response.model"),
            tin if tin is None or type(tin) is int else _int(tin), tout if tout is None or type(tout) is int else _int(tout),
            a.get("gen_ai.tool.name"),
        )
        err = error_type(a, code, evs) if code == "ERROR" or "error.type" in a else None
    else:
        typed = _NO_TYPED
        err = error_type({}, code, evs) if code == "ERROR" else None
    return (
        trace_hex, span_hex, parent_hex, name, kind, start, end, code, description, svc, run_id, case_id,
        *typed, err, _encode(a) if a else None, _encode(evs) if evs else None, res,
    )


def sdk_row(span: Any, route: Route | None) -> tuple[Any, ...]:
    """One ended SDK span (``ReadableSpan``) as a row tuple in :data:`COLUMNS` order (see :func:`make_row`).

    Called as spans end: the row holds only strings and numbers, so the span's object graph is
    freed at once (keeping hundreds of thousands of live spans queued makes the garbage
    collector, not the exporter, the bottleneck).
    """
    ctx = span._context
    p = span._parent
    st = span._status
    raw = span._attributes
    a: Mapping[str, Any] = (getattr(raw, "_dict", None) if raw is not None else None) or (raw or {})
    ev_list = span._events
    evs = None
    if ev_list:
        evs = [{"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})} for e in ev_list]
    svc, res = resource_fields(span._resource)
    if route is not None:
        trace_hex, run_id, case_id = route.trace_hex, route.run_id, route.case_id
        if svc == "evalkit":
            svc = route.tracer.service_name
    else:
        trace_hex, run_id, case_id = f"{ctx.trace_id:032x}", None, None
    return make_row(
        trace_hex, f"{ctx.span_id:016x}", f"{p.span_id:016x}" if p is not None else None, span._name,
        _enum_name(span._kind, kind_name), span._start_time, span._end_time, _enum_name(st.status_code, status_name),
        st.description, svc, run_id, case_id, a, evs, res,
    )


def row_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row tuple as the plain dict scorers read (``run.spans``): the columns, attributes and events decoded."""
    d = dict(zip(COLUMNS, row, strict=True))
    attrs: dict[str, Any] = json.loads(d["attributes"]) if d["attributes"] else {}
    start, end = d["start_ns"] or 0, d["end_ns"] or 0
    return {
        "trace_id": d["trace_id"], "span_id": d["span_id"], "parent_span_id": d["parent_span_id"], "name": d["name"],
        "kind": d["kind"], "start_ns": start, "end_ns": end, "duration_ms": (end - start) / 1e6,
        "status_code": d["status_code"], "status_message": d["status_message"], "operation": d["operation"],
        "tool_name": d["tool_name"], "request_model": d["request_model"], "input_tokens": d["input_tokens"],
        "output_tokens": d["output_tokens"], "error_type": attrs.get("error.type"), "attributes": attrs,
        "events": json.loads(d["events"]) if d["events"] else [],
    }


def plain_row(row: dict[str, Any]) -> tuple[Any, ...]:
    """One span given as plain values (ids as hex, times in ns, attributes as a dict) as a row tuple."""
    a: dict[str, Any] = row.get("attributes") or {}
    evs = row.get("events") or None
    code = status_name(row.get("status_code", 0))
    return (
        row["trace_id"], row["span_id"], row.get("parent_span_id") or None, row.get("name"),
        kind_name(row.get("kind", 1)), _int(row.get("start_ns")), _int(row.get("end_ns")), code,
        row.get("status_message") or None, row.get("service_name"), row.get("run_id"), row.get("case_id"),
        _str(a.get("gen_ai.operation.name")), _str(a.get("gen_ai.provider.name") or a.get("gen_ai.system")),
        _str(a.get("gen_ai.request.model")), _str(a.get("gen_ai.response.model")),
        _int(a.get("gen_ai.usage.input_tokens")), _int(a.get("gen_ai.usage.output_tokens")),
        _str(a.get("gen_ai.tool.name")), error_type(a, code, evs),
        _encode(a) if a else None, _encode(evs) if evs else None, row.get("resource") or None,
    )


class SpanColumns:
    """A batch of span rows (tuples in :data:`COLUMNS` order)."""

    def __init__(self, redactor: Redactor, rows: list[tuple[Any, ...]] | None = None) -> None:
        self.redactor = redactor
        self.rows: list[tuple[Any, ...]] = rows if rows is not None else []
        self._resources: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def add_sdk(self, items: Iterable[tuple[Any, Route | None]]) -> None:
        """Append ``(ReadableSpan, Route)`` pairs."""
        self.rows.extend(sdk_row(s, r) for s, r in items)

    def add_plain(self, row: dict[str, Any]) -> None:
        """Append one decoded OTLP span, its resource masked here (the spans of a request share a few)."""
        res = row.get("resource")
        if res:
            masked = self._resources.get(res)
            if masked is None:
                masked = self._resources[res] = self.redactor.text(res)
            row = {**row, "resource": masked}
        self.rows.append(plain_row(row))

    # -- out -------------------------------------------------------------------------------
    def to_frame(self) -> pl.DataFrame:
        """The batch as a polars frame with the ``spans`` table's columns, secrets masked."""
        import polars as pl

        data = dict(zip(COLUMNS, (list(col) for col in zip(*self.rows, strict=True)), strict=True)) if self.rows else \
            {c: [] for c in COLUMNS}
        S, I64 = pl.String, pl.Int64
        df = pl.DataFrame(
            data,
            schema={
                "trace_id": S, "span_id": S, "parent_span_id": S, "name": S, "kind": S, "start_ns": I64, "end_ns": I64,
                "status_code": S, "status_message": S, "service_name": S, "run_id": S, "case_id": S, "operation": S,
                "provider": S, "request_model": S, "response_model": S, "input_tokens": I64, "output_tokens": I64,
                "tool_name": S, "error_type": S, "attributes": S, "events": S, "resource": S,
            },
            strict=False,
        )
        ts = pl.Datetime("us", "UTC")
        red = self.redactor.series  # ``resource`` is masked where it is made (once per resource)
        df = df.with_columns(
            (pl.col("start_ns") // 1000).cast(ts).alias("start_time"),
            (pl.col("end_ns") // 1000).cast(ts).alias("end_time"),
            ((pl.col("end_ns") - pl.col("start_ns")) / 1e6).alias("duration_ms"),
            red(df["attributes"]), red(df["events"]), red(df["status_message"]),
        ).drop("start_ns", "end_ns")
        return df
