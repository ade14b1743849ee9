"""Turn a judge's text answer into a validated verdict."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from evalkit.judging.model import VERDICTS

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


class VerdictError(ValueError):
    """The judge's answer is not a valid verdict; the message says what to fix."""


def _json_candidates(text: str) -> list[str]:
    out = [text.strip()]
    out += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        out.append(text[start : end + 1])
    return out


def parse_verdict(kind: str, text: str) -> BaseModel:
    """The verdict in ``text`` (plain JSON, fenced JSON, or JSON inside prose)."""
    model = VERDICTS[kind]
    data: Any = None
    for cand in _json_candidates(text):
        try:
            data = json.loads(cand)
            break
        except ValueError:
            continue
    if not isinstance(data, dict):
        raise VerdictError("the answer is not a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "answer"
        raise VerdictError(f"field '{loc}': {err['msg']}") from None
