"""Model and HTTP targets, and a whole run where the target and the judge call the loopback server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.errors import UserError
from evalkit.schema import Case
from evalkit.targets import build_target
from evalkit.targets.http import HttpTargetError
from tests.fakes.openai_server import FakeOpenAIServer, Reply

CASE = Case(id="t1", input="Capital of France?", context="Paris is the capital.", metadata={"lang": "en"})


def test_model_target_fills_the_template(openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-from-env-123456")
    t = build_target({"model": "openai/gpt-4o-mini", "system": "Answer in {metadata[lang]}.",
                      "prompt": "Context: {context}\nQ: {input}", "api_base": openai_server.url + "/v1",
                      "api_key_env": "MY_KEY", "params": {"temperature": 0}})
    openai_server.script(Reply.ok("Paris"))
    assert asyncio.run(t(CASE)) == "Paris"
    req = openai_server.requests[0]
    assert req.messages == [{"role": "system", "content": "Answer in en."},
                            {"role": "user", "content": "Context: Paris is the capital.\nQ: Capital of France?"}]
    assert req.headers["authorization"] == "Bearer sk-from-env-123456" and t.models == ["openai/gpt-4o-mini"]
    with pytest.raises(UserError, match="api_key"):
        build_target({"model": "openai/x", "api_key": "sk-inline"})


def test_http_target_body_path_headers_and_retries(openai_server: FakeOpenAIServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_AUTH", "Bearer agent-secret-999")
    t = build_target({"url": openai_server.url + "/v1/chat/completions",
                      "body": {"messages": [{"role": "user", "content": "{input}"}], "tag": "{metadata[lang]}"},
                      "answer_path": "choices.0.message.content", "headers_env": {"Authorization": "AGENT_AUTH"},
                      "timeout": 2, "retries": 2})
    openai_server.script(Reply.error(503), Reply.ok("Paris"))
    assert asyncio.run(t(CASE)) == "Paris"
    assert openai_server.count == 2
    req = openai_server.requests[-1]
    assert req.body == {"messages": [{"role": "user", "content": "Capital of France?"}], "tag": "en"}
    assert req.headers["authorization"] == "Bearer agent-secret-999"
    openai_server.responder = lambda r: Reply.error(500)
    with pytest.raises(HttpTargetError, match="after 3 attempts"):
        asyncio.run(t(CASE))
    with pytest.raises(UserError, match="headers_env"):
        build_target({"url": "http://127.0.0.1:1/x", "headers_env": {"Authorization": "Bearer abc"}})


def test_run_with_model_target_and_judge(openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    """Persistent 500s on one case's target become that case's error; the run goes on; counts add up."""
    from evalkit.api import evaluate

    monkeypatch.chdir(tmp_path)

    def respond(req: Any) -> Reply:
        text = req.prompt
        if "judge" not in text.lower() and "evaluat" not in text.lower():
            return Reply.error(500) if "boom" in text else Reply.ok("answer to " + req.last_user)
        return Reply.ok(json.dumps({"rationale": "fine", "score": 4}))

    openai_server.responder = respond
    monkeypatch.setenv("EVALKIT_JUDGE_MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("EVALKIT_API_BASE", openai_server.url + "/v1")
    monkeypatch.setenv("EVALKIT_API_KEY", "sk-test")
    cases = [Case(id=f"k{i}", input=f"question {i}", expected="x") for i in range(3)] + [
        Case(id="bad", input="boom", expected="x")]
    res = evaluate(cases, target={"model": "openai/gpt-4o-mini", "prompt": "{input}"}, scorers=["correctness"],
                   store=":memory:", tracing=False)
    summary = res.summary
    assert summary.cases == 4 and summary.errors == 1
    sc = {s.name: s for s in summary.scorers}["correctness"]
    assert sc.scored == 3 and sc.mean == 4.0
