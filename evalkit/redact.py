"""The one redactor: secrets never reach a span, the store, MLflow, a log, a report or an error.

Every sink uses :class:`Redactor` (``default()`` for the process), with one set of rules:

- values under keys that name a credential (``authorization``, ``api_key``, ``x-api-key``,
  ``password``, ``secret``, ``access_token``, ``cookie`` …), in mappings and in JSON text;
- ``Bearer …``/``Basic …`` credentials, ``api_key=…``-style assignments, passwords in URLs
  (``https://user:pw@host``) and provider key shapes (``sk-…``, ``ghp_…``, ``AKIA…``);
- the literal values of environment variables whose names end in a credential word
  (``*_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``, ``*_CREDENTIALS``, ``*_AUTH_HEADER`` …).

The patterns are valid for both Python's ``re`` and polars' Rust engine (no look-arounds), so
whole columns of span text are masked at once on the export path (:meth:`Redactor.column`).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

MASK = "[REDACTED]"
_SENSITIVE = (
    r"authorization|proxy-authorization|api[_-]?key|apikey|x-api-key|api[_-]?token|access[_-]?token|"
    r"refresh[_-]?token|auth[_-]?token|id[_-]?token|token|secret|client[_-]?secret|password|passwd|cookie|"
    r"set-cookie|credentials?"
)
# A key is sensitive when its last dotted/underscored/dashed segment names a credential.
KEY_RE = re.compile(rf"(?i)(?:^|[._\-])(?:{_SENSITIVE})$")
ENV_NAME_RE = re.compile(
    r"(?i)(?:^|_)(?:KEY|APIKEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|AUTH|AUTHORIZATION|AUTH_HEADER)$"
)
MIN_SECRET = 6

# (pattern, Python replacement, polars replacement)
_RULES: list[tuple[str, str, str]] = [
    # "api_key": "value" in JSON text, and the same inside a JSON string holding JSON (escaped quotes)
    (r'(?i)("(?:[^"\\]*[._\-])?(?:' + _SENSITIVE + r')"\s*:\s*)(?:"(?:[^"\\]|\\.)*"|\[[^\]]*\])',
     rf'\1"{MASK}"', f'${{1}}"{MASK}"'),
    (r'(?i)(\\"(?:[^"\\]*[._\-])?(?:' + _SENSITIVE + r')\\"\s*:\s*)\\"(?:[^"\\]|\\[^"])*\\"',
     rf'\1\\"{MASK}\\"', f'${{1}}\\"{MASK}\\"'),
    # HTTP credentials; "Basic" only capitalised, as the scheme is written (prose says "basic").
    (r"\b((?i:bearer)|Basic)\s+[A-Za-z0-9._~+/=\-]{6,}", rf"\1 {MASK}", f"${{1}} {MASK}"),
    # key=value / key: value assignments in free text (query strings, repr of a config)
    (r"(?i)\b((?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|client[_-]?secret|password|passwd)"
     r"['\"]?\s*[:=]\s*['\"]?)[^'\"\s,&;}]{4,}",
     rf"\1{MASK}", f"${{1}}{MASK}"),
    # passwords in URLs: scheme://user:password@host
    (r"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@'\"]*):[^@\s/'\"]+@", rf"\1:{MASK}@", f"${{1}}:{MASK}@"),
    # provider key shapes
    (r"\bsk-[A-Za-z0-9_\-]{8,}", MASK, MASK),
    (r"\b(?:ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{16,}", MASK, MASK),
    (r"\bAKIA[0-9A-Z]{16}\b", MASK, MASK),
    (r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", MASK, MASK),
]


# Every rule above needs one of these in the text: when none is there, the rules are skipped (one search
# instead of nine substitutions; most model output holds no credential word at all). The scans cost
# ~0.5 ns a character each, so there are few: every credential key word holds api/token/secret/passw/
# cookie/credential/authoriz ("key" alone names none), the triggers with a "_", "-" or ":" (the key
# shapes xox… included) are only looked for when that character is there (rare in prose), and LONG S
# only in text that is not ASCII.
# (Substring tests on the lowered text: an alternation regex scanning every position was ~25 µs a span.)
_TRIGGERS = ("bearer", "basic", "api", "token", "secret", "passw", "cookie", "credential", "authoriz", "akia")
_AFTER = (("_", ("gho_", "ghp_", "ghs_", "ghu_", "github_pat")), ("-", ("sk-", "xox")), (":", ("://",)))


def _may_hold_secret(text: str) -> bool:
    """Whether any rule can match ``text`` (False: none can)."""
    low = text.lower()  # KELVIN SIGN lowers to k; LONG S, which the rules' (?i) takes for s, stays: a trigger
    for w in _TRIGGERS:  # a plain loop: a generator in any() costs more than the tests
        if w in low:
            return True
    for c, words in _AFTER:
        if c in low:
            for w in words:
                if w in low:
                    return True
    return not low.isascii() and "\u017f" in low


# Substrings (ASCII case folded) without one of which no rule can match, for whole text columns: values
# holding none skip the rules (:meth:`Redactor.series`). Derived rule by rule, each entry a substring of
# every match it stands for: a credential-named JSON key ends ``<word>"`` (or ``<word>\\"`` inside a JSON
# string), its word one of authorization/api key/token/secret/password/passwd/cookie/credential(s); the
# assignment rule's names; bearer/basic; ``://``; the key shapes' prefixes. Tighter than ``_TRIGGERS``
# where it matters: span attributes always hold ``input_tokens`` (no ``token"`` in it). The rules' (?i)
# folds two non-ASCII letters onto ASCII ones (KELVIN SIGN onto k, LONG S onto s): a value holding either
# always goes through the rules.
_COLUMN_TRIGGERS = (
    "authoriz", 'token"', 'token\\"', "apikey", "api_key", "api-key", "access_token",
    "access-token", "accesstoken", "auth_token", "auth-token", "authtoken", "secret", "passw", "cookie",
    "credential", "bearer", "basic", "://", "sk-", "ghp_", "gho_", "ghs_", "ghu_", "github_pat", "akia", "xox",
    "\u212a", "\u017f",
)

# Rules that never match prose: a password in a URL and provider key shapes (for refusing secrets in files).
_SHAPES = [re.compile(p) for p, _, _ in _RULES[4:]]


def has_credential(text: str) -> bool:
    """Whether ``text`` holds a URL password, a provider key shape or a credential variable's value."""
    return any(rx.search(text) for rx in _SHAPES) or any(s in text for s in env_secrets())


def _matches(rx: re.Pattern[str], answers: dict[str, bool], name: str) -> bool:
    """Whether ``rx`` finds ``name``, remembered in ``answers``: names repeat (keys, environment variables)."""
    hit = answers.get(name)
    if hit is None:
        hit = bool(rx.search(name))
        if len(answers) < 4096 and len(name) <= 128:
            answers[name] = hit
    return hit


_names: dict[str, bool] = {}  # is_secret_name's answers: keys repeat (role, content, parts …)
_env_names: dict[str, bool] = {}  # ENV_NAME_RE's answers (the environment is read once per run)


def is_secret_name(name: str) -> bool:
    """Whether a key, parameter or variable name names a credential (``x_api_key``, ``GH_TOKEN``)."""
    return _matches(KEY_RE, _names, name)


def env_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of credential-named environment variables (long enough to be worth masking), longest first."""
    env = os.environ if environ is None else environ
    vals = {v for k, v in env.items() if _matches(ENV_NAME_RE, _env_names, k) and len(v) >= MIN_SECRET}
    return sorted(vals, key=len, reverse=True)


@functools.lru_cache(maxsize=64)
def _literal_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(re.escape(s) for s in secrets)) if secrets else None


_PY_RULES = [(re.compile(p), repl) for p, repl, _ in _RULES]


_SCALARS = frozenset({int, float, bool, type(None)})
_JSON_ESCAPED = frozenset('"\\')


class Redactor:
    """Masks secrets in text, in Python values and in polars text columns."""

    def __init__(self, extra: Iterable[str | None] = (), environ: Mapping[str, str] | None = None) -> None:
        found = {*env_secrets(environ), *(s for s in extra if s and len(s) >= MIN_SECRET)}
        self.secrets = sorted(found, key=lambda s: (-len(s), s))
        self._literal = _literal_pattern(tuple(self.secrets))
        self._py = _PY_RULES
        # no literal secret holds a character JSON escapes: masking the JSON text masks every string in it
        self._json_safe = not any(c in _JSON_ESCAPED or ord(c) < 0x20 for s in self.secrets for c in s)

    def text(self, text: str) -> str:
        """``text`` with every rule applied."""
        if self._literal is not None:
            text = self._literal.sub(MASK, text)
        if not _may_hold_secret(text):
            return text
        for rx, repl in self._py:
            text = rx.sub(repl, text)
        return text

    def value(self, v: Any, *, patterns: bool = True) -> Any:
        """A copy of ``v`` with credential-named keys masked and strings redacted.

        ``patterns=False`` masks only keys and known literal values: for callers that run
        :meth:`text` over the serialised result anyway (span attributes).
        """
        t = type(v)
        if t is str or (t not in _SCALARS and isinstance(v, str)):
            if patterns:
                return self.text(v)
            return self._literal.sub(MASK, v) if self._literal is not None else v
        if t in _SCALARS:
            return v
        if t is dict or isinstance(v, Mapping):
            return {k: (MASK if isinstance(k, str) and is_secret_name(k) and x not in (None, "")
                        else self.value(x, patterns=patterns)) for k, x in v.items()}
        if t is list or isinstance(v, list | tuple):
            return [self.value(x, patterns=patterns) for x in v]
        return v

    def flat_and_clean(self, v: Any) -> bool:
        """Whether ``v`` is a dict that :meth:`value` with ``patterns=False`` would leave as it is, once the text
        of its JSON goes through :meth:`text`: string keys naming no credential, string or scalar values, and no
        literal secret that JSON would escape (the common tool arguments: no walk, no copy)."""
        if type(v) is not dict or not self._json_safe:
            return False
        for k, x in v.items():
            if type(k) is not str or (type(x) is not str and type(x) not in _SCALARS) or is_secret_name(k):
                return False
        return True

    def series(self, values: pl.Series) -> pl.Series:
        """A text Series with secrets masked: one pass finds the values a rule could match
        (:data:`_COLUMN_TRIGGERS` and the literal secrets), and only those go through the rules."""
        import polars as pl

        if values.null_count() == values.len():
            return values
        hit = values.str.contains_any([*_COLUMN_TRIGGERS, *self.secrets], ascii_case_insensitive=True)
        idx = hit.fill_null(False).arg_true()
        if idx.len() == 0:
            return values
        name = values.name
        masked = values.gather(idx).to_frame(name).select(self.column(pl.col(name))).to_series()
        return values.clone().scatter(idx, masked)

    def column(self, col: pl.Expr) -> pl.Expr:
        """``col`` (JSON or plain text) with secrets masked, vectorised."""
        for s in self.secrets:
            col = col.str.replace_all(s, MASK, literal=True)
        for pattern, _, repl in _RULES:
            col = col.str.replace_all(pattern, repl)
        return col


_cache: tuple[tuple[str, ...], Redactor] | None = None


def default() -> Redactor:
    """The process's redactor, rebuilt when the credential-named environment variables change."""
    global _cache
    key = tuple(env_secrets())
    if _cache is None or _cache[0] != key:
        _cache = (key, Redactor())
    return _cache[1]


def redact(text: str, extra: Iterable[str | None] = ()) -> str:
    """``text`` with secrets masked; ``extra`` are further literal values (a target's header values)."""
    extra = [e for e in extra if e]
    return (Redactor(extra) if extra else default()).text(text)


def redact_value(v: Any) -> Any:
    """A copy of a JSON-like value with secrets masked (for configs, parameters, arguments)."""
    return default().value(v)


class LogFilter(logging.Filter):
    """Redacts every record a handler emits (attach to handlers: logger filters do not reach children)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        record.msg, record.args = redact(message), None
        return True


def redact_logs(level: str | None = None) -> None:
    """Route evalkit's log records to stderr through :class:`LogFilter` (the CLI calls this once).

    ``level`` defaults to ``$EVALKIT_LOG_LEVEL`` (else WARNING). Records of other libraries that
    reach Python's last-resort handler are redacted too.
    """
    log = logging.getLogger("evalkit")
    if any(isinstance(f, LogFilter) for h in log.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
    handler.addFilter(LogFilter())
    log.addHandler(handler)
    log.propagate = False
    log.setLevel((level or os.environ.get("EVALKIT_LOG_LEVEL") or "WARNING").upper())
    if logging.lastResort is not None:
        logging.lastResort.addFilter(LogFilter())
