"""Spans as columns: one batch of spans becomes one Arrow table for one insert into ``spans``.

Spans arrive from the OpenTelemetry SDK (``ReadableSpan``) or from the OTLP receiver (already
decoded into plain values). Both are appended column by column; :meth:`SpanColumns.to_arrow`
turns the batch into a polars frame (timestamps and durations computed there, secrets masked
there with vectorised regexes) and then into Arrow. pyarrow's own constructors import pandas,
so the table is always built through polars.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evalkit.tracing.redact import Redactor

if TYPE_CHECKING:
    import pyarrow as pa

    from evalkit.tracing.state import Route

_encode = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":")).encode

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


class SpanColumns:
    """Accumulates spans column by column."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
        self._resources: dict[int, tuple[str | None, str]] = {}

    def __len__(self) -> int:
        return len(self.cols["span_id"])

    def _resource(self, resource: Any) -> tuple[str | None, str]:
        key = id(resource)
        hit = self._resources.get(key)
        if hit is None:
            attrs = dict(getattr(resource, "attributes", None) or {})
            hit = (_str(attrs.get("service.name")), self.redactor.text(_encode(attrs)))
            self._resources[key] = hit
        return hit

    # -- from the SDK ----------------------------------------------------------------------
    def add_sdk(self, items: Iterable[tuple[Any, Route | None]]) -> None:
        """Append ``(ReadableSpan, Route)`` pairs."""
        c = self.cols
        trace_id, span_id, parent, name, kind = c["trace_id"], c["span_id"], c["parent_span_id"], c["name"], c["kind"]
        start, end, scode, smsg, service = c["start_ns"], c["end_ns"], c["status_code"], c["status_message"], c["service_name"]
        run_id, case_id, op, prov, req, resp = c["run_id"], c["case_id"], c["operation"], c["provider"], c["request_model"], c["response_model"]
        tin, tout, tool, err, attributes, events, resource = (
            c["input_tokens"], c["output_tokens"], c["tool_name"], c["error_type"], c["attributes"], c["events"], c["resource"],
        )
        kinds: dict[Any, str] = {}
        for span, route in items:
            ctx = span._context
            trace_id.append(route.trace_hex if route is not None else f"{ctx.trace_id:032x}")
            span_id.append(f"{ctx.span_id:016x}")
            p = span._parent
            parent.append(f"{p.span_id:016x}" if p is not None else None)
            name.append(span._name)
            k = span._kind
            kn = kinds.get(k)
            if kn is None:
                kn = kinds[k] = kind_name(k)
            kind.append(kn)
            start.append(span._start_time)
            end.append(span._end_time)
            st = span._status
            code = st.status_code.name
            scode.append(code)
            smsg.append(st.description)
            raw = span._attributes
            a: Mapping[str, Any] = (getattr(raw, "_dict", None) if raw is not None else None) or (raw or {})
            attributes.append(_encode(a) if a else None)
            ev_list = span._events
            evs = None
            if ev_list:
                evs = [{"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})} for e in ev_list]
                events.append(_encode(evs))
            else:
                events.append(None)
            svc, res = self._resource(span._resource)
            tracer = route.tracer if route is not None else None
            service.append(svc if svc != "evalkit" or tracer is None else tracer.service_name)
            resource.append(res)
            run_id.append(route.run_id if route is not None else None)
            case_id.append(route.case_id if route is not None else None)
            if a:
                op.append(a.get("gen_ai.operation.name"))
                prov.append(a.get("gen_ai.provider.name") or a.get("gen_ai.system"))
                req.append(a.get("gen_ai.request.model"))
                resp.append(a.get("gen_ai.response.model"))
                v = a.get("gen_ai.usage.input_tokens")
                tin.append(v if type(v) is int else _int(v))
                v = a.get("gen_ai.usage.output_tokens")
                tout.append(v if type(v) is int else _int(v))
                tool.append(a.get("gen_ai.tool.name"))
                err.append(error_type(a, code, evs) if code == "ERROR" or "error.type" in a else None)
            else:
                for col in (op, prov, req, resp, tin, tout, tool):
                    col.append(None)
                err.append(error_type({}, code, evs) if code == "ERROR" else None)

    # -- from decoded OTLP -----------------------------------------------------------------
    def add_plain(self, row: dict[str, Any]) -> None:
        """Append one span given as plain values (ids as hex, times in ns, attributes as a dict)."""
        a: dict[str, Any] = row.get("attributes") or {}
        evs = row.get("events") or None
        code = status_name(row.get("status_code", 0))
        c = self.cols
        c["trace_id"].append(row["trace_id"])
        c["span_id"].append(row["span_id"])
        c["parent_span_id"].append(row.get("parent_span_id") or None)
        c["name"].append(row.get("name"))
        c["kind"].append(kind_name(row.get("kind", 1)))
        c["start_ns"].append(_int(row.get("start_ns")))
        c["end_ns"].append(_int(row.get("end_ns")))
        c["status_code"].append(code)
        c["status_message"].append(row.get("status_message") or None)
        c["service_name"].append(row.get("service_name"))
        c["run_id"].append(row.get("run_id"))
        c["case_id"].append(row.get("case_id"))
        c["operation"].append(_str(a.get("gen_ai.operation.name")))
        c["provider"].append(_str(a.get("gen_ai.provider.name") or a.get("gen_ai.system")))
        c["request_model"].append(_str(a.get("gen_ai.request.model")))
        c["response_model"].append(_str(a.get("gen_ai.response.model")))
        c["input_tokens"].append(_int(a.get("gen_ai.usage.input_tokens")))
        c["output_tokens"].append(_int(a.get("gen_ai.usage.output_tokens")))
        c["tool_name"].append(_str(a.get("gen_ai.tool.name")))
        c["error_type"].append(error_type(a, code, evs))
        c["attributes"].append(_encode(a) if a else None)
        c["events"].append(_encode(evs) if evs else None)
        c["resource"].append(row.get("resource"))

    # -- out -------------------------------------------------------------------------------
    def to_arrow(self) -> pa.Table:
        """The batch as an Arrow table with the ``spans`` table's columns, secrets masked."""
        import polars as pl

        c = self.cols
        S, I64 = pl.String, pl.Int64
        df = pl.DataFrame(
            c,
            schema={
                "trace_id": S, "span_id": S, "parent_span_id": S, "name": S, "kind": S, "start_ns": I64, "end_ns": I64,
                "status_code": S, "status_message": S, "service_name": S, "run_id": S, "case_id": S, "operation": S,
                "provider": S, "request_model": S, "response_model": S, "input_tokens": I64, "output_tokens": I64,
                "tool_name": S, "error_type": S, "attributes": S, "events": S, "resource": S,
            },
            strict=False,
        )
        ts = pl.Datetime("us", "UTC")
        red = self.redactor.column
        df = df.with_columns(
            (pl.col("start_ns") // 1000).cast(ts).alias("start_time"),
            (pl.col("end_ns") // 1000).cast(ts).alias("end_time"),
            ((pl.col("end_ns") - pl.col("start_ns")) / 1e6).alias("duration_ms"),
            red(pl.col("attributes")),
            red(pl.col("events")),
            red(pl.col("status_message")),
        ).drop("start_ns", "end_ns")
        return df.to_arrow()
