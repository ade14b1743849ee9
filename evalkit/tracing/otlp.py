"""Decoding OTLP trace export requests (protobuf or JSON) into span rows.

OTLP/JSON differs from the generic protobuf-JSON mapping in one trap: trace and span ids are
hex strings, not base64. Both are accepted here (32/16 hex characters, or base64 of 16/8 bytes),
as are lowerCamelCase and snake_case keys, enum names or numbers, and 64-bit integers as
strings.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

_HEX = set("0123456789abcdefABCDEF")
_encode = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":")).encode


class OTLPError(ValueError):
    """The request body is not a valid OTLP trace export."""


def _id(value: Any, nbytes: int) -> str | None:
    """An id from OTLP/JSON (hex) or protobuf-JSON (base64) as lowercase hex; None when empty."""
    if not value:
        return None
    if isinstance(value, bytes):
        return value.hex() if any(value) else None
    s = str(value)
    if len(s) == 2 * nbytes and set(s) <= _HEX:
        return s.lower() if s.strip("0") else None
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise OTLPError(f"bad id {s!r}: expected {2 * nbytes} hex characters") from None
    if len(raw) != nbytes:
        raise OTLPError(f"bad id {s!r}: expected {2 * nbytes} hex characters")
    return raw.hex() if any(raw) else None


def _get(d: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    v = d.get(camel)
    if v is None:
        v = d.get(snake, default)
    return v


# -- JSON ---------------------------------------------------------------------------------
def _json_value(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    for key in ("stringValue", "string_value"):
        if key in v:
            return v[key]
    for key in ("intValue", "int_value"):
        if key in v:
            return int(v[key])
    for key in ("doubleValue", "double_value"):
        if key in v:
            return float(v[key])
    for key in ("boolValue", "bool_value"):
        if key in v:
            return bool(v[key])
    for key in ("arrayValue", "array_value"):
        if key in v:
            return [_json_value(x) for x in (v[key] or {}).get("values", [])]
    for key in ("kvlistValue", "kvlist_value"):
        if key in v:
            return _json_attrs((v[key] or {}).get("values", []))
    for key in ("bytesValue", "bytes_value"):
        if key in v:
            return v[key]
    return None


def _json_attrs(kvs: Any) -> dict[str, Any]:
    return {kv["key"]: _json_value(kv.get("value")) for kv in kvs or [] if isinstance(kv, dict) and "key" in kv}


def rows_from_json(body: bytes) -> Iterator[dict[str, Any]]:
    """Span rows from an OTLP/JSON ``ExportTraceServiceRequest``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OTLPError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OTLPError("body must be a JSON object with resourceSpans")
    try:
        for rs in _get(data, "resourceSpans", "resource_spans", []) or []:
            res_attrs = _json_attrs((rs.get("resource") or {}).get("attributes"))
            service = res_attrs.get("service.name")
            resource = _encode(res_attrs)
            scopes = _get(rs, "scopeSpans", "scope_spans") or rs.get("instrumentationLibrarySpans") or []
            for ss in scopes:
                for sp in ss.get("spans", []) or []:
                    status = sp.get("status") or {}
                    yield {
                        "trace_id": _id(_get(sp, "traceId", "trace_id"), 16),
                        "span_id": _id(_get(sp, "spanId", "span_id"), 8),
                        "parent_span_id": _id(_get(sp, "parentSpanId", "parent_span_id"), 8),
                        "name": sp.get("name"),
                        "kind": sp.get("kind", 1),
                        "start_ns": int(_get(sp, "startTimeUnixNano", "start_time_unix_nano", 0) or 0),
                        "end_ns": int(_get(sp, "endTimeUnixNano", "end_time_unix_nano", 0) or 0),
                        "status_code": status.get("code", 0),
                        "status_message": status.get("message"),
                        "attributes": _json_attrs(sp.get("attributes")),
                        "events": [
                            {"name": ev.get("name"), "time_ns": int(_get(ev, "timeUnixNano", "time_unix_nano", 0) or 0),
                             "attributes": _json_attrs(ev.get("attributes"))}
                            for ev in sp.get("events", []) or []
                        ],
                        "service_name": service,
                        "resource": resource,
                    }
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        if isinstance(exc, OTLPError):
            raise
        raise OTLPError(f"malformed OTLP/JSON: {type(exc).__name__}: {exc}") from None


# -- protobuf -----------------------------------------------------------------------------
def _pb_value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, which)


def rows_from_protobuf(body: bytes) -> Iterator[dict[str, Any]]:
    """Span rows from a binary protobuf ``ExportTraceServiceRequest``."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except DecodeError as exc:
        raise OTLPError(f"body is not an OTLP protobuf request: {exc}") from None
    for rs in req.resource_spans:
        res_attrs = {kv.key: _pb_value(kv.value) for kv in rs.resource.attributes}
        service = res_attrs.get("service.name")
        resource = _encode(res_attrs)
        for ss in rs.scope_spans:
            for sp in ss.spans:
                yield {
                    "trace_id": _id(sp.trace_id, 16),
                    "span_id": _id(sp.span_id, 8),
                    "parent_span_id": _id(sp.parent_span_id, 8),
                    "name": sp.name,
                    "kind": int(sp.kind),
                    "start_ns": int(sp.start_time_unix_nano),
                    "end_ns": int(sp.end_time_unix_nano),
                    "status_code": int(sp.status.code),
                    "status_message": sp.status.message or None,
                    "attributes": {kv.key: _pb_value(kv.value) for kv in sp.attributes},
                    "events": [
                        {"name": ev.name, "time_ns": int(ev.time_unix_nano),
                         "attributes": {kv.key: _pb_value(kv.value) for kv in ev.attributes}}
                        for ev in sp.events
                    ],
                    "service_name": service,
                    "resource": resource,
                }


def decode(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """Span rows from a request body; ``content_type`` picks JSON or protobuf."""
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    if ct == "application/json":
        rows = list(rows_from_json(body))
    elif ct in ("application/x-protobuf", "application/protobuf", "application/octet-stream", ""):
        rows = list(rows_from_protobuf(body))
    else:
        raise OTLPError(f"unsupported content type {content_type!r} (use application/x-protobuf or application/json)")
    bad = [r for r in rows if not r["trace_id"] or not r["span_id"]]
    if bad:
        raise OTLPError("every span needs a non-zero traceId and spanId")
    return rows
