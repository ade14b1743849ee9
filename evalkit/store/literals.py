"""Statement parameters written into the SQL as literals, so the store binds no Python values.

DuckDB's Python client imports pandas, NumPy and pyarrow the first time it binds a parameter
(measured here: 0.6 s and ~85 MB in every process that runs one parameterised query, each batch
worker included). The store's parameters are plain values (text, whole and real numbers, booleans,
None, times and dates, lists of these), so :func:`inline` writes them into the statement as SQL
literals instead. Text is quoted by the SQL standard's one rule (a quote is doubled; DuckDB reads no
backslash escapes in ``'…'``), so a value can never end its literal.

A statement keeps DuckDB's own binding when any value is of another type, when text holds a NUL
(DuckDB's parser ends the literal there) or is not valid Unicode, or when its placeholders do not
match its parameters (DuckDB then says what is wrong). Placeholders are ``?`` in order, ``$1``…
for a sequence and ``$name`` for a mapping; those inside quotes (``$$…$$`` too) or comments are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

# quoted text, "identifiers", $$dollar-quoted text$$ and comments (kept), then the placeholders
_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|\$\$.*?\$\$|--[^\n]*|/\*.*?\*/"""
                     r"""|\?(?![0-9])|\$([A-Za-z_][A-Za-z0-9_]*|[0-9]+)""", re.DOTALL)


class _Unsupported(Exception):
    """A value or placeholder this module leaves to DuckDB's binding."""


def inline(sql: str, params: Sequence[Any] | Mapping[str, Any] | None) -> tuple[str, Any]:
    """``(sql, params)`` with the parameters written in as literals: ``(new_sql, None)``; or unchanged
    when DuckDB must bind them (see the module doc)."""
    if not params:
        return sql, params
    named = isinstance(params, Mapping)
    position = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal position
        token = m.group(0)
        if token == "?":
            if named or position >= len(params):
                raise _Unsupported
            position += 1
            return literal(params[position - 1])  # type: ignore[index]
        name = m.group(1)
        if name is None:  # a quoted text, an identifier or a comment
            return token
        if named:
            if name not in params:
                raise _Unsupported
            return literal(params[name])  # type: ignore[index]
        if not name.isdigit() or not 1 <= int(name) <= len(params):
            raise _Unsupported
        position = max(position, int(name))
        return literal(params[int(name) - 1])  # type: ignore[index]

    try:
        out = _TOKENS.sub(replace, sql)
    except _Unsupported:
        return sql, params
    if not named and position != len(params):
        return sql, params
    return out, None


def literal(value: Any) -> str:
    """``value`` as a DuckDB SQL literal of the type DuckDB's binding gives it (raises :class:`_Unsupported`)."""
    t = type(value)
    if value is None:
        return "NULL"
    if t is bool:
        return "TRUE" if value else "FALSE"
    if t is int:
        return str(value)
    if t is float:
        return f"'{value!r}'::DOUBLE"  # 'nan', 'inf' and '-inf' included
    if t is str:
        if "\x00" in value or (not value.isascii() and not _encodable(value)):
            raise _Unsupported
        return "'" + value.replace("'", "''") + "'"
    if t is datetime:
        kind = "TIMESTAMP" if value.tzinfo is None or value.utcoffset() is None else "TIMESTAMPTZ"
        return f"'{value.isoformat()}'::{kind}"
    if t is date:
        return f"'{value.isoformat()}'::DATE"
    if t is list:
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise _Unsupported


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
