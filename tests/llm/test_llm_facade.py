"""The model facade over litellm's real HTTP path, against the loopback fake server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from evalkit.context import CaseContext, case_scope
from evalkit.llm import ModelError, cache, complete, events, register_mock
from evalkit.llm.limiter import AIMDLimiter
from evalkit.llm.retry import parse_retry_after
from evalkit.redact import MASK, redact
from tests.fakes.openai_server import FakeOpenAIServer, Reply

MODEL = "openai/gpt-4o-mini"
MSGS = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(autouse=True, params=["lean", "litellm"])
def client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: through the lean OpenAI-protocol client and through litellm (EVALKIT_LLM_CLIENT)."""
    monkeypatch.setenv("EVALKIT_LLM_CLIENT", "auto" if request.param == "lean" else "litellm")
    return str(request.param)


def call(server: FakeOpenAIServer, messages: list[dict[str, Any]] = MSGS, **kw: Any) -> Any:
    kw.setdefault("api_key", "sk-test")
    return asyncio.run(complete(MODEL, messages, api_base=server.url + "/v1", **kw))


def test_success_accounts_tokens_cost_and_usage(openai_server: FakeOpenAIServer) -> None:
    openai_server.script(Reply.ok("Paris."))
    ctx = CaseContext(run_id="r1", case_id="c1")
    seen: list[Any] = []
    events.LISTENERS.append(seen.append)
    try:
        with case_scope(ctx):
            comp = call(openai_server)
    finally:
        events.LISTENERS.remove(seen.append)
    assert comp.text == "Paris." and comp.attempts == 1 and not comp.cache_hit
    assert comp.input_tokens > 0 and comp.output_tokens == 1 and comp.cost_usd > 0
    assert ctx.usage.llm_calls == 1 and ctx.usage.input_tokens == comp.input_tokens
    assert openai_server.count == 1
    req = openai_server.requests[0]
    assert req.body["messages"] == MSGS and req.body["model"] == "gpt-4o-mini"
    assert len(seen) == 1 and seen[0].case_id == "c1" and seen[0].completion == "Paris." and seen[0].error_type is None


def test_429_then_success_honours_retry_after(openai_server: FakeOpenAIServer) -> None:
    openai_server.script(Reply.rate_limit(retry_after=0.3), Reply.ok("ok"))
    t0 = time.perf_counter()
    comp = call(openai_server)
    assert comp.text == "ok" and comp.attempts == 2
    assert openai_server.count == 2
    assert time.perf_counter() - t0 >= 0.3


@pytest.mark.parametrize(
    ("reply", "kind", "requests"),
    [
        (Reply.error(500), "server_error", 3),
        (Reply.error(503), "server_error", 3),
        (Reply.malformed(), "server_error", 3),
        (Reply.drop(), "server_error", 3),
        (Reply.error(400, "bad"), "bad_request", 1),
        (Reply.error(401, "no"), "auth", 1),
        (Reply.error(404, "The model does not exist"), "not_found", 1),
        (Reply.error(400, "This model's maximum context length is 8192 tokens. However, your messages resulted in "
                          "9000 tokens."), "context_window", 1),
    ],
)
def test_failures_are_bounded_and_classified(openai_server: FakeOpenAIServer, reply: Reply, kind: str, requests: int) -> None:
    openai_server.responder = lambda req: reply
    with pytest.raises(ModelError) as info:
        call(openai_server)
    assert info.value.kind == kind
    assert openai_server.count == requests == info.value.attempts


def test_hang_past_timeout_is_a_timeout(openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_MAX_ATTEMPTS", "2")
    openai_server.responder = lambda req: Reply.hang(3)
    t0 = time.perf_counter()
    with pytest.raises(ModelError) as info:
        call(openai_server, timeout=0.3)
    assert info.value.kind == "timeout" and openai_server.count == 2
    assert time.perf_counter() - t0 < 2.5


def test_errors_are_not_cached_and_success_is(openai_server: FakeOpenAIServer) -> None:
    openai_server.script(Reply.error(400))
    with pytest.raises(ModelError):
        call(openai_server)
    assert cache.stats()["entries"] == 0
    first = call(openai_server)
    second = call(openai_server)
    assert openai_server.count == 2  # the error, then one real call; the repeat was a hit
    assert second.cache_hit and second.text == first.text and second.cost_usd == 0
    other_repeat = call(openai_server, repeat=1)
    assert not other_repeat.cache_hit and openai_server.count == 3


def test_no_cache_switch(openai_server: FakeOpenAIServer) -> None:
    cache.set_enabled(False)
    call(openai_server)
    call(openai_server)
    assert openai_server.count == 2
    ctx = CaseContext(run_id="r", case_id="c", cache_enabled=False)
    cache.set_enabled(True)
    with case_scope(ctx):
        call(openai_server)
        call(openai_server)
    assert openai_server.count == 4


def test_api_key_never_stored_or_reported(openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    secret = "sk-live-SECRETVALUE-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    records: list[Any] = []
    events.LISTENERS.append(records.append)
    try:
        openai_server.script(Reply.ok("fine"), Reply.error(401, f"Incorrect API key provided: {secret}"))
        asyncio.run(complete(MODEL, MSGS, api_base=openai_server.url + "/v1"))
        with pytest.raises(ModelError) as info:
            asyncio.run(complete(MODEL, [{"role": "user", "content": "again"}], api_base=openai_server.url + "/v1"))
    finally:
        events.LISTENERS.remove(records.append)
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {secret}"  # it was really used
    cache.close()
    blobs = b"".join(p.read_bytes() for p in tmp_path.glob("llm_cache.sqlite*"))
    assert blobs and secret.encode() not in blobs
    assert secret not in repr(records) and len(records) == 2
    assert secret not in str(info.value) and MASK in str(info.value)


def test_mock_models_go_through_cache_and_listeners() -> None:
    register_mock("scripted", ["one", "two"])
    seen: list[Any] = []
    events.LISTENERS.append(seen.append)
    try:
        a = asyncio.run(complete("mock/scripted", MSGS, cache=False))
        b = asyncio.run(complete("mock/scripted", MSGS, cache=False))
        c = asyncio.run(complete("mock/scripted", MSGS))
        d = asyncio.run(complete("mock/scripted", MSGS))
        e = asyncio.run(complete("mock/echo", [{"role": "user", "content": "hello there"}]))
    finally:
        events.LISTENERS.remove(seen.append)
    assert (a.text, b.text, c.text, d.text) == ("one", "two", "two", "two")
    assert d.cache_hit and not c.cache_hit
    assert e.text == "hello there" and e.output_tokens == 2 and e.cost_usd == 0
    assert [r.cache_hit for r in seen] == [False, False, False, True, False]


def test_mock_function_and_failure() -> None:
    def fn(messages: list[dict[str, Any]]) -> str:
        if "fail" in messages[-1]["content"]:
            raise ModelError("bad_request", "scripted failure")
        return messages[-1]["content"].upper()

    register_mock("fn", fn)
    assert asyncio.run(complete("mock/fn", [{"role": "user", "content": "abc"}])).text == "ABC"
    with pytest.raises(ModelError, match="scripted failure"):
        asyncio.run(complete("mock/fn", [{"role": "user", "content": "fail"}]))
    assert cache.stats()["entries"] == 1


def test_aimd_limiter_halves_on_throttle_and_grows_back() -> None:
    lim = AIMDLimiter(initial=8, maximum=8)
    lim.on_throttle()
    lim.on_throttle()
    assert int(lim.limit) == 2
    for _ in range(3):
        lim.on_success()
    assert int(lim.limit) == 5
    for _ in range(10):
        lim.on_throttle()
    assert lim.limit == 1

    async def run() -> int:
        lim2 = AIMDLimiter(initial=3, maximum=3)
        peak = 0

        async def job() -> None:
            nonlocal peak
            async with lim2:
                peak = max(peak, lim2.in_flight)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(job() for _ in range(20)))
        assert lim2.in_flight == 0
        return peak

    assert asyncio.run(run()) == 3


def test_retry_after_and_redact_helpers() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({}) is None
    assert "sk-abcdefgh123" not in redact("key sk-abcdefgh123 leaked")
    assert "tok123456789" not in redact("Authorization: Bearer tok123456789")


def test_facade_import_does_not_import_litellm() -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import evalkit.llm.facade, evalkit.judging"],
                         capture_output=True, text=True, check=True)
    assert "litellm" not in out.stderr
