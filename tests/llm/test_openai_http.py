"""The lean OpenAI-protocol client: which models take it, its prices, and that it needs neither litellm nor cleanup."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from evalkit.llm import complete
from evalkit.llm.openai_http import OPENAI_BASE, cost, endpoint, missing_credentials
from tests.conftest import REPO
from tests.fakes.openai_server import FakeOpenAIServer, Reply


def test_routing(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_BASE", "OPENAI_BASE_URL", "HOSTED_VLLM_API_BASE", "OPENAI_API_KEY", "EVALKIT_LLM_CLIENT"):
        monkeypatch.delenv(var, raising=False)
    ep = endpoint("openai/gpt-4o-mini")
    assert ep is not None and ep.url == f"{OPENAI_BASE}/chat/completions" and ep.name == "gpt-4o-mini" and ep.official
    assert missing_credentials(ep) == ["OPENAI_API_KEY"]
    local = endpoint("openai/llama3", "http://127.0.0.1:11434/v1/")
    assert local is not None and local.url == "http://127.0.0.1:11434/v1/chat/completions" and not local.official
    assert missing_credentials(local) == []  # a local server needs no key
    assert endpoint("gpt-4o-mini") is None  # a bare name: litellm resolves its provider
    assert endpoint("anthropic/claude-sonnet-4") is None and endpoint("azure/gpt-4o") is None
    assert endpoint("hosted_vllm/qwen") is None  # no base: litellm reports what is missing
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", "http://vllm:8000/v1")
    assert endpoint("hosted_vllm/qwen").url == "http://vllm:8000/v1/chat/completions"  # type: ignore[union-attr]
    monkeypatch.setenv("OPENAI_BASE_URL", "http://proxy.internal/v1")
    assert endpoint("openai/gpt-4o").url == "http://proxy.internal/v1/chat/completions"  # type: ignore[union-attr]
    monkeypatch.setenv("EVALKIT_LLM_CLIENT", "litellm")
    assert endpoint("openai/gpt-4o") is None


def test_cost_matches_litellm() -> None:
    import litellm

    ep = endpoint("openai/gpt-4o-mini", "http://127.0.0.1:1/v1")
    assert ep is not None
    usage = {"prompt_tokens": 1200, "completion_tokens": 300, "prompt_tokens_details": {"cached_tokens": 200}}
    theirs = sum(litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=1200, completion_tokens=300,
                                        cache_read_input_tokens=200))
    assert cost(ep, usage) == pytest.approx(theirs, rel=1e-9)
    unknown = endpoint("openai/my-local-model", "http://127.0.0.1:1/v1")
    assert unknown is not None and cost(unknown, usage) == 0.0


def test_error_body_is_redacted_and_typed(openai_server: FakeOpenAIServer) -> None:
    from evalkit.llm import ModelError

    openai_server.script(Reply.error(401, "Incorrect API key provided: sk-live-abcdefghijklmnopqrstuvwx"))
    with pytest.raises(ModelError) as err:
        asyncio.run(complete("openai/gpt-4o-mini", [{"role": "user", "content": "hi"}],
                             api_base=openai_server.url + "/v1", api_key="sk-live-abcdefghijklmnopqrstuvwx"))
    assert err.value.kind == "auth" and err.value.status == 401
    assert "abcdefghijklmnop" not in str(err.value)


def test_calls_need_no_litellm_import_and_leave_nothing_open(openai_server: FakeOpenAIServer) -> None:
    openai_server.script(*(Reply.ok(f"answer {i}") for i in range(6)))
    code = (
        "import asyncio, sys\n"
        "from evalkit.llm import complete\n"
        "async def main(i):\n"
        "    return await complete('openai/gpt-4o-mini', [{'role': 'user', 'content': f'q {i}'}],"
        f" api_base={openai_server.url + '/v1'!r}, api_key='sk-test', cache=False)\n"
        "for i in range(3):\n"
        "    assert asyncio.run(main(i)).text.startswith('answer')  # a new loop each time\n"
        "print('litellm' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-W", "error::ResourceWarning", "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=REPO, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
                                                   "EVALKIT_CACHE": "off", "HOME": "/tmp"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
    assert "Unclosed" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert openai_server.count == 3


# aiohttp 3.14 deprecates proxy_auth, which the lean client keeps on purpose (see openai_http.complete)
@pytest.mark.filterwarnings("ignore:The 'proxy_auth' parameter is deprecated:DeprecationWarning")
def test_proxies_come_from_the_environment(openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP(S)_PROXY carries the call (the fake server plays the proxy); NO_PROXY names hosts that bypass it."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    msgs = [{"role": "user", "content": "hi"}]
    openai_server.script(Reply.ok("via proxy"), Reply.ok("direct"))
    monkeypatch.setenv("HTTP_PROXY", openai_server.url)
    # llm.invalid cannot resolve: only a proxy can carry this call
    comp = asyncio.run(complete("openai/gpt-4o-mini", msgs, api_base="http://llm.invalid/v1", api_key="sk-t",
                                cache=False))
    assert comp.text == "via proxy"
    assert openai_server.requests[-1].path == "http://llm.invalid/v1/chat/completions"  # absolute form: a proxy's
    assert "proxy-authorization" not in openai_server.requests[-1].headers
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # the discard port: nothing answers there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    comp = asyncio.run(complete("openai/gpt-4o-mini", msgs, api_base=openai_server.url + "/v1", api_key="sk-t",
                                cache=False))
    assert comp.text == "direct"
    assert openai_server.requests[-1].path == "/v1/chat/completions"
    # credentials in the proxy URL go to the proxy as its Proxy-Authorization header
    import base64

    monkeypatch.delenv("NO_PROXY")
    openai_server.script(Reply.ok("via proxy, signed in"))
    monkeypatch.setenv("HTTP_PROXY", openai_server.url.replace("http://", "http://bob:hunter2secret@"))
    comp = asyncio.run(complete("openai/gpt-4o-mini", msgs, api_base="http://llm.invalid/v1", api_key="sk-t",
                                cache=False))
    assert comp.text == "via proxy, signed in"
    sent = openai_server.requests[-1].headers["proxy-authorization"]
    assert sent == "Basic " + base64.b64encode(b"bob:hunter2secret").decode()
    # a proxy nobody answers at: a typed connection error after the retries, its password in no message
    from evalkit.llm import ModelError

    monkeypatch.setenv("HTTP_PROXY", "http://bob:hunter2secret@127.0.0.1:9")
    with pytest.raises(ModelError) as err:
        asyncio.run(complete("openai/gpt-4o-mini", msgs, api_base="http://llm.invalid/v1", api_key="sk-t", cache=False))
    assert err.value.kind == "connection"
    assert "hunter2secret" not in str(err.value) and "hunter2secret" not in repr(err.value)
