"""Decoding OTLP trace export requests (protobuf or JSON) into span rows.

OTLP/JSON differs from the generic protobuf-JSON mapping in one trap: trace and span ids are
hex strings, not base64. Both are accepted here (32/16 hex characters, or base64 of 16/8 bytes),
as are lowerCamelCase and snake_case keys, enum names or numbers, and 64-bit integers as
strings.

Untrusted bodies are bounded before they are parsed: :func:`count_items` counts the protobuf
messages (a schema-aware wire walk) or JSON values (separators outside strings) so a small body
of many tiny messages is refused before it expands in memory; ``decode`` stops at ``max_spans``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from typing import Any

from evalkit.tracing.json_text import compact as _encode

_HEX = set("0123456789abcdefABCDEF")
MAX_DEPTH = 32  # nesting of array/kvlist attribute values


class OTLPError(ValueError):
    """The request body is not a valid OTLP trace export; ``status`` is the HTTP answer."""

    status = 400


class UnsupportedMedia(OTLPError):
    """A content type or encoding the receiver does not speak."""

    status = 415


class TooLarge(OTLPError):
    """More spans, messages or bytes than one request may carry (retrying cannot help)."""

    status = 413


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
def _json_value(v: Any, depth: int = 0) -> Any:
    if not isinstance(v, dict):
        return v
    if depth > MAX_DEPTH:
        raise OTLPError(f"attribute values nested deeper than {MAX_DEPTH}")
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
            return [_json_value(x, depth + 1) for x in (v[key] or {}).get("values", [])]
    for key in ("kvlistValue", "kvlist_value"):
        if key in v:
            return _json_attrs((v[key] or {}).get("values", []), depth + 1)
    for key in ("bytesValue", "bytes_value"):
        if key in v:
            return v[key]
    return None


def _json_attrs(kvs: Any, depth: int = 0) -> dict[str, Any]:
    return {kv["key"]: _json_value(kv.get("value"), depth) for kv in kvs or [] if isinstance(kv, dict) and "key" in kv}


def rows_from_json(body: bytes | bytearray) -> Iterator[dict[str, Any]]:
    """Span rows from an OTLP/JSON ``ExportTraceServiceRequest``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OTLPError(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise OTLPError("body is not JSON: nested too deeply") from None
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
    except (AttributeError, TypeError, KeyError, ValueError, RecursionError) as exc:
        if isinstance(exc, OTLPError):
            raise
        raise OTLPError(f"malformed OTLP/JSON: {type(exc).__name__}: {exc}"[:300]) from None


# -- protobuf -----------------------------------------------------------------------------
def _pb_value(v: Any, depth: int = 0) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if depth > MAX_DEPTH and which in ("array_value", "kvlist_value"):
        raise OTLPError(f"attribute values nested deeper than {MAX_DEPTH}")
    if which == "array_value":
        return [_pb_value(x, depth + 1) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value, depth + 1) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, which)


def rows_from_protobuf(body: bytes | bytearray) -> Iterator[dict[str, Any]]:
    """Span rows from a binary protobuf ``ExportTraceServiceRequest``."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except (DecodeError, RecursionError) as exc:
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


def decode(body: bytes | bytearray, content_type: str, max_spans: int | None = None) -> list[dict[str, Any]]:
    """Span rows from a request body; ``content_type`` picks JSON or protobuf; :class:`TooLarge` past ``max_spans``."""
    kind = body_kind(content_type)
    rows: list[dict[str, Any]] = []
    for row in rows_from_json(body) if kind == "json" else rows_from_protobuf(body):
        if not row["trace_id"] or not row["span_id"]:
            raise OTLPError("every span needs a non-zero traceId and spanId")
        rows.append(row)
        if max_spans is not None and len(rows) > max_spans:
            raise TooLarge(f"more than {max_spans} spans in one request: send smaller batches")
    return rows


def body_kind(content_type: str) -> str:
    """``json`` or ``protobuf`` for a request's Content-Type; :class:`UnsupportedMedia` otherwise."""
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    if ct == "application/json":
        return "json"
    if ct in ("application/x-protobuf", "application/protobuf", "application/octet-stream", ""):
        return "protobuf"
    raise UnsupportedMedia(f"unsupported content type {content_type!r} (use application/x-protobuf or application/json)")


# -- bounding a body before it is parsed ----------------------------------------------------
# The sub-messages of ExportTraceServiceRequest by field number (everything else is a scalar,
# string or bytes field and is skipped): request, ResourceSpans, Resource, ScopeSpans, scope,
# Span, Event, Link, KeyValue, AnyValue, ArrayValue, KeyValueList.
_SUB: dict[str, dict[int, str]] = {
    "req": {1: "rs"}, "rs": {1: "res", 2: "ss"}, "res": {1: "kv"}, "ss": {1: "scope", 2: "span"},
    "scope": {3: "kv"}, "span": {9: "kv", 11: "event", 13: "link", 15: "status"}, "event": {3: "kv"},
    "link": {4: "kv"}, "kv": {2: "any"}, "any": {5: "arr", 6: "kvl"}, "arr": {1: "any"}, "kvl": {1: "kv"},
    "status": {},
}
# a JSON string, or an unterminated one up to the end: every quote starts a match, so stripping is linear
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)


def _varint(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise OTLPError("body is not an OTLP protobuf request: bad varint")


def _protobuf_items(buf: bytes | bytearray, max_items: int) -> tuple[int, int]:
    """(spans, messages) in a protobuf request, walking the wire format without building messages."""
    spans = items = 0
    stack: list[tuple[str, int, int]] = []
    kind, pos, end = "req", 0, len(buf)
    try:
        while True:
            while pos < end:
                key = buf[pos]  # one-byte varints inline: the common case, and this loop is hot
                key, pos = (key, pos + 1) if key < 0x80 else _varint(buf, pos)
                wire = key & 7
                if wire == 0:
                    _, pos = _varint(buf, pos)
                elif wire == 1 or wire == 5:
                    pos += 8 if wire == 1 else 4
                elif wire == 2:
                    n = buf[pos]
                    n, pos = (n, pos + 1) if n < 0x80 else _varint(buf, pos)
                    if pos + n > end:
                        raise OTLPError("body is not an OTLP protobuf request: truncated")
                    child = _SUB[kind].get(key >> 3)
                    if child is not None:
                        items += 1
                        spans += child == "span"
                        if items > max_items:
                            raise TooLarge(f"more than {max_items} messages in one request: send smaller batches")
                        if _SUB[child]:
                            if len(stack) > 2 * MAX_DEPTH + 8:  # an array level is two frames (array, value)
                                raise OTLPError(f"attribute values nested deeper than {MAX_DEPTH}")
                            stack.append((kind, pos + n, end))
                            kind, end = child, pos + n
                            continue
                    pos += n
                else:
                    raise OTLPError(f"body is not an OTLP protobuf request: wire type {wire}")
            if pos > end:
                raise OTLPError("body is not an OTLP protobuf request: truncated")
            if not stack:
                return spans, items
            kind, pos, end = stack.pop()
    except IndexError:
        raise OTLPError("body is not an OTLP protobuf request: truncated") from None


def count_items(body: bytes | bytearray, content_type: str, max_items: int) -> int:
    """An upper bound of the objects decoding ``body`` makes (protobuf messages, JSON values).

    Raises :class:`TooLarge` past ``max_items``, before anything is parsed.
    """
    if body_kind(content_type) == "protobuf":
        return _protobuf_items(body, max_items)[1]
    def values(text: bytes | bytearray) -> int:
        return 1 + sum(text.count(c) for c in (b",", b":", b"{", b"["))

    n = values(body)  # counts separators inside strings too: an upper bound, exact only when needed
    if n > max_items:
        n = values(_STRING.sub(b"", body))
    if n > max_items:
        raise TooLarge(f"more than {max_items} JSON values in one request: send smaller batches")
    return n
