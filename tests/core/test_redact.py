"""The one redactor: the same rules in Python and in polars, for every sink."""

from __future__ import annotations

import logging

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.errors import UserError, describe_exception
from evalkit.redact import MASK, LogFilter, Redactor, has_credential, is_secret_name, redact
from evalkit.tracking.errors import TrackingError

CASES = [
    ("key sk-abcdefgh123 leaked", f"key {MASK} leaked"),
    ("Authorization: Bearer tok123456789", f"Authorization: Bearer {MASK}"),
    ("header Basic dXNlcjpwYXNzd29yZA==", f"header Basic {MASK}"),
    ("http://user:pw@host:5000/x", f"http://user:{MASK}@host:5000/x"),
    ("postgresql://bob:s3cr3t@db/evalkit", f"postgresql://bob:{MASK}@db/evalkit"),
    ("GET /v1?api_key=abcdef&x=1", f"GET /v1?api_key={MASK}&x=1"),
    ("{'password': 'hunter22'}", f"{{'password': '{MASK}'}}"),
    ('{"api_key": "abc"}', f'{{"api_key": "{MASK}"}}'),
    ("token ghp_abcdefghijklmnopqrstu", f"token {MASK}"),
    ("aws AKIAABCDEFGHIJKLMNOP", f"aws {MASK}"),
    # prose and ordinary values stay as they are
    ("a basic approach with bearer of news", "a basic approach with bearer of news"),
    ("https://example.test/path?q=1", "https://example.test/path?q=1"),
    ("max_tokens=5, tokens 12", "max_tokens=5, tokens 12"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_rules_agree_in_python_and_polars(text: str, expected: str) -> None:
    r = Redactor(environ={})
    assert r.text(text) == expected
    assert pl.DataFrame({"a": [text]}).select(r.column(pl.col("a"))).item() == expected


def test_environment_values_and_names() -> None:
    env = {"OPENAI_API_KEY": "live-key-123456", "AGENT_AUTH_HEADER": "Token zz-top-999", "HOME": "/root",
           "MONKEY": "banana-banana", "SERVICE_TOKEN": "short"}
    r = Redactor(environ=env)
    assert r.text("used live-key-123456 and Token zz-top-999 at /root banana-banana") == (
        f"used {MASK} and {MASK} at /root banana-banana")
    assert "short" not in r.secrets  # too short to mask without masking ordinary words
    assert is_secret_name("x_api_key") and is_secret_name("GH_TOKEN") and is_secret_name("http.header.authorization")
    assert not is_secret_name("api_key_env") and not is_secret_name("max_tokens") and not is_secret_name("MONKEY")
    assert not is_secret_name("key") and not is_secret_name("cache_key")  # a scorer's metadata key is no secret


def test_values_mask_credential_keys_and_strings() -> None:
    r = Redactor(extra=["hunter2-hunter2"], environ={})
    assert r.value({"password": "p", "list": [{"token": "t", "name": "hunter2-hunter2"}], "empty_key": None}) == {
        "password": MASK, "list": [{"token": MASK, "name": MASK}], "empty_key": None}
    # patterns=False: keys and literal values only (span attributes run text() over the JSON afterwards)
    assert r.value({"note": "sk-abcdefghijkl"}, patterns=False) == {"note": "sk-abcdefghijkl"}


def test_has_credential_ignores_prose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "svc-token-9f8e7d")
    assert has_credential("http://u:p@host") and has_credential("sk-abcdefghijkl") and has_credential("x svc-token-9f8e7d")
    assert not has_credential("Does the answer mention Bearer authentication and basic auth?")


def test_exception_texts_and_logs_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_API_KEY", "acme-live-0123456789")
    exc = RuntimeError("upstream rejected acme-live-0123456789\nsecond line")
    assert describe_exception(exc) == f"RuntimeError: upstream rejected {MASK}"
    assert "acme-live" not in str(UserError("bad key acme-live-0123456789", file="suite.yaml", line=3))
    assert "pw" not in TrackingError("MLflow (http://me:pw@host) refused").message
    record = logging.LogRecord("evalkit.x", logging.WARNING, __file__, 1, "uri %s key %s",
                               ("http://me:pw@h", "acme-live-0123456789"), None)
    assert LogFilter().filter(record) and record.getMessage() == f"uri http://me:{MASK}@h key {MASK}"
    assert redact("from a header value hdr-value-777", ["hdr-value-777"]) == f"from a header value {MASK}"


def _every_rule(r: Redactor, text: str) -> str:
    """``text`` with all nine rules applied, none skipped."""
    for rx, repl in r._py:
        text = rx.sub(repl, text)
    return text


@given(st.text(alphabet=st.sampled_from(list("abcdeikmnoprstuwxyABIKSX:/@=_-.\"' {}0123456789\u017f\u212a")), max_size=80))
@settings(max_examples=400, deadline=None)
def test_the_trigger_shortcut_never_skips_a_match(text: str) -> None:
    """Applying every rule to any text gives what :meth:`Redactor.text` (which may skip them) gives."""
    r = Redactor(environ={})
    assert r.text(text) == _every_rule(r, text)


@pytest.mark.parametrize("text", [t for t, _ in CASES] + ["Proxy-Authorization: x", "x-api-key: abcdef1",
                                                           "AKIAABCDEFGHIJKLMNOP", "xoxb-1234567890ab"])
def test_the_trigger_shortcut_on_known_secrets(text: str) -> None:
    r = Redactor(environ={})
    assert r.text(text) == _every_rule(r, text)


_SECRET = "s3cr3t-Value-42"
_ODD = ('quo"te-secret', "back\\slash-secret", "new\nline-secret")  # JSON escapes a character of each
_flat = st.dictionaries(
    st.sampled_from(["query", "api_key", "user", "token", "q.password", "limit", "x"]),
    st.one_of(st.lists(st.sampled_from([*"ab \"\\\n:", _SECRET, *_ODD, "sk-abcdefgh12"]), max_size=6).map("".join),
              st.integers(), st.none(), st.booleans()),
    max_size=4)


@given(_flat, st.sampled_from([(), (_SECRET,), *((o,) for o in _ODD), (_SECRET, *_ODD)]))
@settings(max_examples=300, deadline=None)
def test_a_flat_dict_skips_the_key_walk_only_where_the_walk_changes_nothing(v: dict[str, object],
                                                                           extra: tuple[str, ...]) -> None:
    """truncate_json's shortcut (no walk over flat, credential-free dicts) gives what the walk gives."""
    from evalkit.tracing.spans import truncate_json

    r = Redactor(extra, environ={})
    walked = Redactor(extra, environ={})
    walked.flat_and_clean = lambda value: False  # type: ignore[method-assign]
    assert truncate_json(v, redactor=r) == truncate_json(v, redactor=walked)
    assert _SECRET not in truncate_json(v, redactor=r) or _SECRET not in extra
