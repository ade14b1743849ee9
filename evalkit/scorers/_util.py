"""Helpers shared by the built-in scorers."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from evalkit.schema import Case


def as_text(output: Any) -> str:
    """The output as text: strings as they are, anything else as compact JSON."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    try:
        return json.dumps(output, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(output)


def normalise(text: str, *, case: bool = True, whitespace: bool = True, punctuation: bool = False) -> str:
    """Fold case, collapse white space and optionally strip punctuation."""
    text = unicodedata.normalize("NFKC", text)
    if case:
        text = text.casefold()
    if punctuation:
        text = re.sub(r"[^\w\s]", "", text)
    if whitespace:
        text = " ".join(text.split())
    return text


def reference(case: Case, key: str | None) -> Any:
    """The case's reference value: ``expected``, or ``metadata[key]`` / ``expected[key]`` when named."""
    if key is None:
        return case.expected
    if isinstance(case.expected, dict) and key in case.expected:
        return case.expected[key]
    return case.metadata.get(key)


class NotScored(Exception):
    """Raised by a scorer when the case lacks what it needs (no ``expected``, no spans, ...).

    The score becomes ``not_applicable``: reported, never an error and never a fail.
    """
