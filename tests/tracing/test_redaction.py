"""Secrets never reach a span attribute, event or message."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from opentelemetry import trace as otel

import evalkit
from evalkit.redact import MASK, Redactor
from evalkit.schema import Case
from evalkit.store.db import open_store
from evalkit.tracing.decorators import trace

SECRET_ENV = "svc-token-9f8e7d6c5b4a"
API_KEY = "sk-proj-ABCDEFGHIJKLMNOPQRSTUV"
BEARER = "eyJhbGciOiJIUzI1NiJ9.payload.signature"


@trace(kind="tool")
def call_api(url: str, api_key: str, headers: dict[str, str]) -> dict[str, str]:
    return {"status": "ok", "echo": f"used {api_key}", "Authorization": headers["Authorization"]}


def leaky_agent(question: str) -> str:
    with otel.get_tracer("leaky").start_as_current_span("http.call") as sp:
        sp.set_attribute("http.request.header.authorization", f"Bearer {BEARER}")
        sp.set_attribute("debug.note", f"token is {SECRET_ENV}")
        call_api("https://api.example.test", API_KEY, {"Authorization": f"Bearer {BEARER}"})
        if "fail" in question:
            raise RuntimeError(f"upstream rejected key {API_KEY}")
    return "done"


def test_secrets_are_masked_in_every_span_column(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", SECRET_ENV)
    res = evalkit.evaluate([Case(id="a", input="go"), Case(id="b", input="fail please")], target=leaky_agent,
                           scorers=["no_error_spans"], cache=False)
    with open_store(res.store_path, read_only=True) as st:
        rows = st.query("SELECT * FROM spans WHERE run_id = ?", [res.run_id])
    assert len(rows) >= 8
    dump = json.dumps(rows, default=str)
    for secret in (SECRET_ENV, API_KEY, BEARER):
        assert secret not in dump
    assert MASK in dump
    tool = next(r for r in rows if r["name"] == "execute_tool call_api")
    args = json.loads(json.loads(tool["attributes"])["gen_ai.tool.call.arguments"])
    assert args["url"] == "https://api.example.test" and args["api_key"] == MASK
    assert args["headers"]["Authorization"] == MASK
    failed = next(r for r in rows if r["name"] == "http.call" and r["status_code"] == "ERROR")
    assert "upstream rejected key" in failed["status_message"]


def test_redactor_rules() -> None:
    r = Redactor(extra=["hunter2-hunter2"])
    text = json.dumps({
        "http.request.header.authorization": ["Basic dXNlcjpwYXNzd29yZA=="], "x-api-key": "abc123xyz",
        "gen_ai.usage.input_tokens": 12, "max_tokens": 5, "note": "pw hunter2-hunter2, key sk-abcdefghijklmnop",
        "nested": json.dumps({"client_secret": "s3cr3t-value", "ok": "visible"}),
    })
    for out in (r.text(text), pl.DataFrame({"a": [text]}).select(r.column(pl.col("a"))).item()):
        data = json.loads(out)
        assert data["http.request.header.authorization"] == MASK and data["x-api-key"] == MASK
        assert data["gen_ai.usage.input_tokens"] == 12 and data["max_tokens"] == 5
        assert "hunter2" not in data["note"] and "sk-abcdefghijklmnop" not in data["note"]
        nested = json.loads(data["nested"])
        assert nested == {"client_secret": MASK, "ok": "visible"}
    assert r.value({"password": "p", "list": [{"token": "t", "name": "n"}]}) == {
        "password": MASK, "list": [{"token": MASK, "name": "n"}]}


def test_resources_are_masked_once_where_they_are_made(tmp_path: Path) -> None:
    """The resource is masked as it becomes row text (not per row on the way out): local and received spans."""
    from opentelemetry.sdk.resources import Resource

    from evalkit.tracing.columns import SpanColumns, resource_fields
    from evalkit.tracing.receiver import SpanIngest

    leaky = Resource.create({"service.name": "agent-svc", "deploy.api_key": API_KEY,
                             "deploy.auth": f"Bearer {BEARER}"})
    svc, res = resource_fields(leaky)
    assert svc == "agent-svc" and API_KEY not in res and BEARER not in res
    assert json.loads(res)["deploy.api_key"] == MASK and resource_fields(leaky)[1] is res  # made once

    received = {"trace_id": "ab" * 16, "span_id": "cd" * 8, "name": "remote", "start_ns": 1, "end_ns": 2,
                "resource": json.dumps({"service.name": "js", "db.url": f"postgres://app:{SECRET_ENV}@db/x"})}
    cols = SpanColumns(Redactor())
    cols.add_plain(dict(received))
    cols.add_plain(dict(received, span_id="ef" * 8))
    frame = cols.to_frame()
    assert frame.height == 2 and not frame["resource"].str.contains(SECRET_ENV, literal=True).any()
    assert frame["resource"].str.contains(MASK, literal=True).all()

    store = open_store(tmp_path / "s.duckdb")
    try:
        assert SpanIngest(store).ingest([dict(received)]) == 1
        stored = store.query("SELECT resource FROM unattributed_spans")
    finally:
        store.close()
    assert len(stored) == 1 and SECRET_ENV not in stored[0]["resource"] and MASK in stored[0]["resource"]


def _corpus() -> list[str | None]:
    """Texts for every rule in many spellings (cases, JSON, JSON inside JSON, folded letters), and benign ones."""
    names = ["authorization", "Proxy-Authorization", "api_key", "API-KEY", "apikey", "x-api-key", "api_token",
             "access_token", "refresh-token", "auth_token", "id_token", "TOKEN", "secret", "client_secret", "password",
             "passwd", "Cookie", "set-cookie", "credential", "credentials", "db.Password", "api_\u212aey",
             "\u017fecret", "pa\u017f\u017fword", "access-token", "AccessToken", "auth-token", "authtoken", "API-Token"]
    out: list[str | None] = [None, "", "plain words", json.dumps({"gen_ai.usage.input_tokens": 12, "max_tokens": 5}),
                             "keys and tokens: a keyboard, token ring", "basic idea", "…[truncated 12 chars]"]
    for n in names:
        for v in ("hunter2-v4lue-9", "Zq8opaque0value"):  # values no trigger is in: the names must carry it
            out += [json.dumps({n: v}), json.dumps({"outer": json.dumps({n: v})}), f"{n}={v}", f"{n}: '{v}'",
                    json.dumps({f"http.header.{n}": [v]}), f"{n.upper()}={v}", json.dumps({n.lower(): v})]
    out += [f"Authorization: Bearer {BEARER}", f"BEARER {BEARER}", "Basic dXNlcjpwYXNzd29yZA==",
            "postgres://app:pw-123456@db:5432/x", "HTTPS://u:p4ssw0rd@host/", f"key {API_KEY}",
            *(f"{p}_{'a' * 20}" for p in ("ghp", "gho", "ghs", "ghu")), "github_pat_" + "b" * 22, "AKIA" + "A" * 16, "xoxb-1234567890-abc", SECRET_ENV,
            f"note: {SECRET_ENV.upper()}"]
    return out


def test_column_masking_skips_only_values_no_rule_can_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """The prefilter (one pass for the trigger substrings) never keeps a value from a rule that would mask it."""
    import evalkit.redact as redact_module

    red = Redactor(extra=[SECRET_ENV])
    corpus = _corpus()
    values = pl.Series("attributes", corpus, pl.String)
    full = values.to_frame().select(red.column(pl.col("attributes"))).to_series()
    assert red.series(values).to_list() == full.to_list()
    triggers = redact_module._COLUMN_TRIGGERS
    for t in triggers:  # the corpus needs every trigger: without any one of them, some secret would stay
        monkeypatch.setattr(redact_module, "_COLUMN_TRIGGERS", tuple(x for x in triggers if x != t))
        assert red.series(values).to_list() != full.to_list(), t
    monkeypatch.undo()
    changed = [t for t, f in zip(corpus, full.to_list(), strict=True) if t != f]
    assert len(changed) > 150  # the corpus does exercise the rules
    assert red.series(pl.Series("a", ["plain", None], pl.String)).to_list() == ["plain", None]
    assert red.series(pl.Series("a", [None, None], pl.String)).to_list() == [None, None]
    for text in corpus:  # and the per-text path agrees
        if text:
            assert red.text(text) == pl.Series([text]).to_frame("a").select(red.column(pl.col("a"))).item()
