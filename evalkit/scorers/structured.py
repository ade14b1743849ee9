"""Structured-output scorers: JSON validity, JSON Schema, numeric closeness."""

from __future__ import annotations

import json
import math
from typing import Any

from evalkit.schema import Case, Score
from evalkit.scorers._util import NotScored, as_text, reference
from evalkit.scorers.registry import RunInfo, ScoreFn, register


def _parse(output: Any) -> Any:
    if isinstance(output, dict | list):
        return output
    return json.loads(as_text(output))


@register("json_valid")
def json_valid() -> ScoreFn:
    """Output is (or parses as) JSON."""

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        try:
            _parse(output)
        except ValueError as exc:
            return Score(name="_", value=False, passed=False, rationale=f"invalid JSON: {exc}")
        return Score(name="_", value=True, passed=True)

    return score


@register("json_schema")
def json_schema(schema: dict[str, Any]) -> ScoreFn:
    """Output parses as JSON and validates against a JSON Schema."""
    import jsonschema

    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON schema: {exc.message}") from None
    validator = validator_cls(schema)

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        try:
            doc = _parse(output)
        except ValueError as exc:
            return Score(name="_", value=False, passed=False, rationale=f"invalid JSON: {exc}")
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.path) or "(root)"
            return Score(name="_", value=False, passed=False, rationale=f"{where}: {e.message}")
        return Score(name="_", value=True, passed=True)

    return score


@register("numeric")
def numeric(
    key: str | None = None, abs_tol: float = 0.0, rel_tol: float = 1e-9, threshold: float | None = None
) -> ScoreFn:
    """The first number in the output is close to the reference number."""
    import re

    number = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

    def score(case: Case, output: Any, run: RunInfo) -> Score:
        ref = reference(case, key)
        if ref is None:
            raise NotScored("case has no expected number")
        try:
            target = float(ref)
        except (TypeError, ValueError):
            raise NotScored(f"expected value {ref!r} is not a number") from None
        if isinstance(output, int | float) and not isinstance(output, bool):
            got: float | None = float(output)
        else:
            m = number.search(as_text(output).replace(",", ""))
            got = float(m.group()) if m else None
        if got is None:
            return Score(name="_", value=False, passed=False, rationale="no number in output")
        ok = math.isclose(got, target, abs_tol=abs_tol, rel_tol=rel_tol)
        return Score(name="_", value=ok, passed=ok, rationale=None if ok else f"{got} != {target}")

    return score
