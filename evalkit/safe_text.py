"""Untrusted text (case ids, inputs, outputs, errors, rationales, names) made safe where it is shown.

Every renderer goes through one of these: :func:`terminal` for rich (control characters visible,
markup escaped), :func:`csv_cell` for spreadsheets (no formulas), :func:`markdown` and
:func:`markdown_code` for Markdown, :func:`html` for HTML, :func:`displayable` for data a page shows
with ``textContent``, and :func:`finite` / :func:`json_dumps` for strict JSON (no ``NaN``).

Control characters are shown, never obeyed: C0 and C1 controls and DEL as ``\\x1b``-style escapes,
bidirectional controls (which reorder text: spoofing) as ``⟨U+202E⟩``. Newlines and tabs stay.
"""

from __future__ import annotations

import html as _html
import json
import math
import re
from typing import Any

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROLS = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#!])")


def _show(m: re.Match[str]) -> str:
    c = m.group()
    return f"\\x{ord(c):02x}" if ord(c) < 0xA0 else f"⟨U+{ord(c):04X}⟩"


def visible(text: object) -> str:
    """``text`` with every control character shown (``\\x1b``, ``⟨U+202E⟩``); newlines and tabs kept,
    ``\\r\\n`` read as a newline."""
    s = str(text).replace("\r\n", "\n")
    return _CONTROLS.sub(_show, s)


def clip(text: str, limit: int | None) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    if limit is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def one_line(text: object, limit: int | None = None) -> str:
    """Visible text on one line: runs of whitespace (newlines too) become one space."""
    return clip(visible(_WHITESPACE.sub(" ", str(text)).strip()), limit)


def terminal(text: object, limit: int | None = None) -> str:
    """Text for a rich console, table cell or tree label: controls visible, rich markup escaped."""
    from rich.markup import escape

    return escape(clip(visible(text), limit))


def terminal_line(text: object, limit: int | None = None) -> str:
    """:func:`terminal` on one line (titles, one-line messages)."""
    from rich.markup import escape

    return escape(one_line(text, limit))


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not run and a terminal will not obey: text gets its control
    characters visible, and a leading ``'`` when it starts with ``= + - @``, tab or CR (plain numbers
    such as ``-0.5`` stay as they are); non-text values pass through."""
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        value = "'" + value
    return visible(value)


def csv_row(values: Any) -> list[Any]:
    """:func:`csv_cell` over a row."""
    return [csv_cell(v) for v in values]


def markdown(text: object, limit: int | None = None) -> str:
    """Plain text for Markdown (a table cell, a line): one line, controls visible, Markdown syntax and
    pipes backslash-escaped, ``& < >`` as entities, so nothing renders as markup, a link or HTML."""
    s = _MD_SPECIAL.sub(r"\\\1", one_line(text, limit))
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_code(text: object, limit: int | None = None) -> str:
    """An inline code span for Markdown (entities are not decoded inside code, so none are used):
    one line, controls visible, backticks replaced, pipes escaped for tables."""
    s = one_line(text, limit).replace("`", "'")
    return "`" + s.replace("|", "\\|") + "`"


def html(text: object) -> str:
    """HTML-escaped text (quotes too) with control characters visible."""
    return _html.escape(visible(text))


def displayable(data: Any) -> Any:
    """``data`` with every string (keys too) :func:`visible` and every non-finite float None: for a page
    that writes the strings with ``textContent``."""
    if isinstance(data, str):
        return visible(data)
    if isinstance(data, dict):
        return {visible(k) if isinstance(k, str) else k: displayable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [displayable(v) for v in data]
    return finite(data) if isinstance(data, float) else data


def finite(data: Any) -> Any:
    """``data`` with every non-finite float (``NaN``, ``±inf``) replaced by None, in nested dicts and lists."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def json_dumps(data: Any, **kwargs: Any) -> str:
    """Strict JSON (``allow_nan=False``): non-finite floats written as null, unknown types as ``str``, and
    control and bidi characters always ``\\u``-escaped (also with ``ensure_ascii=False``): the same data,
    safe to print to a terminal."""
    kwargs.setdefault("default", str)
    text = json.dumps(finite(data), allow_nan=False, **kwargs)
    return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
