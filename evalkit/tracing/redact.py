"""Secrets never reach the store: redaction of span attributes, events and messages.

Applied to whole columns of JSON text at once (polars' Rust regex engine), so it costs almost
nothing per span. Three rules:

- values of attributes and JSON keys that name a credential (``authorization``, ``api_key``,
  ``x-api-key``, ``password``, ``secret``, ``access_token``, ``cookie`` ...);
- ``Bearer …`` tokens and provider key shapes (``sk-…``);
- the literal values of environment variables named ``*_KEY``, ``*_TOKEN``, ``*_SECRET``,
  ``*_PASSWORD`` (read when the redactor is built).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

MASK = "[REDACTED]"
_SENSITIVE = (
    r"authorization|proxy-authorization|api[_-]?key|apikey|x-api-key|api[_-]?token|access[_-]?token|"
    r"refresh[_-]?token|auth[_-]?token|id[_-]?token|token|secret|client[_-]?secret|password|passwd|cookie|set-cookie"
)
# A key is sensitive when its last dotted/underscored segment names a credential.
KEY_RE = re.compile(rf"(?i)(?:^|[._\-])(?:{_SENSITIVE})$")
_ENV_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSWD")
_MIN_SECRET = 6

# Patterns valid for both Python's re and polars' Rust regex: "key": "value" in JSON text, the same
# inside a JSON string that holds JSON (escaped quotes), bearer/basic credentials, provider key shapes.
_KEY = r'(?i)("(?:[^"\\]*[._\-])?(?:' + _SENSITIVE + r')"\s*:\s*)(?:"(?:[^"\\]|\\.)*"|\[[^\]]*\])'
_ESC_KEY = r'(?i)(\\"(?:[^"\\]*[._\-])?(?:' + _SENSITIVE + r')\\"\s*:\s*)\\"(?:[^"\\]|\\[^"])*\\"'
_BEARER = r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}"
_SK = r"\bsk-[A-Za-z0-9_\-]{12,}"


def env_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of credential-named environment variables (long enough to be worth masking)."""
    env = os.environ if environ is None else environ
    vals = {v for k, v in env.items() if k.upper().endswith(_ENV_SUFFIXES) and len(v) >= _MIN_SECRET}
    return sorted(vals, key=len, reverse=True)


class Redactor:
    """Masks secrets in text columns and in Python values."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.secrets = sorted({*env_secrets(), *(s for s in extra if s and len(s) >= _MIN_SECRET)}, key=len, reverse=True)
        self._literal = re.compile("|".join(re.escape(s) for s in self.secrets)) if self.secrets else None
        self._py = [
            (re.compile(_KEY), rf'\1"{MASK}"'),
            (re.compile(_ESC_KEY), rf'\1\\"{MASK}\\"'),
            (re.compile(_BEARER), rf"\1 {MASK}"),
            (re.compile(_SK), MASK),
        ]

    # -- vectorised (export path) ----------------------------------------------------------
    def column(self, col: pl.Expr) -> pl.Expr:
        """``col`` (JSON or plain text) with secrets masked."""
        col = (
            col.str.replace_all(_KEY, f'${{1}}"{MASK}"')
            .str.replace_all(_ESC_KEY, f'${{1}}\\"{MASK}\\"')
            .str.replace_all(_BEARER, f"${{1}} {MASK}")
            .str.replace_all(_SK, MASK)
        )
        for s in self.secrets:
            col = col.str.replace_all(s, MASK, literal=True)
        return col

    # -- Python values (arguments of traced functions, resources) --------------------------
    def text(self, text: str) -> str:
        for rx, repl in self._py:
            text = rx.sub(repl, text)
        if self._literal is not None:
            text = self._literal.sub(MASK, text)
        return text

    def value(self, v: Any) -> Any:
        """A copy of ``v`` with credential-named keys masked (dicts, lists, tuples)."""
        if isinstance(v, Mapping):
            return {k: (MASK if isinstance(k, str) and KEY_RE.search(k) else self.value(x)) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [self.value(x) for x in v]
        if isinstance(v, str) and self._literal is not None:
            return self._literal.sub(MASK, v)
        return v


_default: Redactor | None = None


def redact_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Tool-call arguments with credentials masked (one shared redactor per process)."""
    global _default
    if _default is None:
        _default = Redactor()
    return dict(_default.value(arguments))
