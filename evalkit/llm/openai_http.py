"""A lean client for endpoints that speak OpenAI's chat-completions protocol.

litellm spends ~9 ms of CPU per call here (response objects, logging hooks, metadata); one aiohttp
POST and a ``json.loads`` spend ~0.25 ms. So models whose provider is OpenAI-compatible go through
this module, behind the same facade (retries, AIMD limits, timeouts, cache keys, error kinds,
gen_ai spans are the facade's): ``openai/<model>`` (OpenAI, or any compatible server given an
``api_base``: vLLM, Ollama's ``/v1``, LM Studio, TGI, most hosted open-model APIs), ``hosted_vllm/``
and ``lm_studio/``. Every other provider, and every call when ``EVALKIT_LLM_CLIENT=litellm``, uses
litellm. Token costs come from litellm's bundled price map, read as JSON (litellm is not imported).

One ``aiohttp`` session per event loop; it is closed when its loop shuts down (``asyncio.run``
closes the async generator that owns it), so nothing leaks and nothing warns. Proxies come from the
environment (``HTTPS_PROXY``, ``NO_PROXY``, ...), looked up once per URL and proxy environment rather
than by aiohttp's ``trust_env``, which hands two look-ups a request to a thread (proxy, ``.netrc``):
in a latency-bound run those hand-offs cost more than the request itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.llm.retry import parse_retry_after
from evalkit.llm.types import Completion, ModelError
from evalkit.redact import redact

CLIENT_ENV = "EVALKIT_LLM_CLIENT"  # auto (default) | litellm
OPENAI_BASE = "https://api.openai.com/v1"
_BASES = {  # provider -> (environment variables of its base URL, default base, environment variable of its key)
    "openai": (("OPENAI_API_BASE", "OPENAI_BASE_URL"), OPENAI_BASE, "OPENAI_API_KEY"),
    "hosted_vllm": (("HOSTED_VLLM_API_BASE",), None, "HOSTED_VLLM_API_KEY"),
    "lm_studio": (("LM_STUDIO_API_BASE",), None, "LM_STUDIO_API_KEY"),
}
_NOT_SENT = frozenset({"num_retries", "max_retries", "api_version", "custom_llm_provider", "drop_params", "caching",
                       "mock_response", "timeout", "api_base", "api_key", "base_url"})  # litellm's own options


@dataclass(frozen=True)
class Endpoint:
    """Where a model's calls go."""

    provider: str
    name: str  # the model name the server sees
    url: str  # .../chat/completions
    key: str | None
    official: bool  # api.openai.com (a key is required)


def endpoint(model: str, api_base: str | None = None, api_key: str | None = None) -> Endpoint | None:
    """The OpenAI-compatible endpoint of ``model``, or None when litellm must carry the call."""
    if os.environ.get(CLIENT_ENV, "auto").strip().lower() == "litellm" or "/" not in model:
        return None  # a bare name: litellm knows which provider it belongs to
    provider, name = model.split("/", 1)
    spec = _BASES.get(provider)
    if spec is None or not name:
        return None
    envs, default, key_env = spec
    base = api_base or next((os.environ[e] for e in envs if os.environ.get(e)), None) or default
    if not base:
        return None  # hosted_vllm without a base: litellm says what is missing
    base = base.rstrip("/")
    return Endpoint(provider, name, f"{base}/chat/completions", api_key or os.environ.get(key_env) or None,
                    official=base == OPENAI_BASE)


def missing_credentials(ep: Endpoint) -> list[str]:
    """Environment variables the endpoint lacks (a key for OpenAI itself; local servers need none)."""
    return [_BASES[ep.provider][2]] if ep.official and not ep.key else []


# -- prices ------------------------------------------------------------------------------------
@functools.cache
def price_map() -> dict[str, Any]:
    """litellm's bundled model price map, read as JSON ({} when litellm is not installed)."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return {}
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "model_prices_and_context_window_backup.json"
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
    return {}


def model_info(ep: Endpoint) -> dict[str, Any]:
    prices = price_map()
    info = prices.get(f"{ep.provider}/{ep.name}") or prices.get(ep.name)
    return info if isinstance(info, dict) else {}


def supports_json_schema(ep: Endpoint) -> bool:
    return bool(model_info(ep).get("supports_response_schema"))


def cost(ep: Endpoint, usage: dict[str, Any]) -> float:
    """USD for a response's ``usage`` (cached prompt tokens at their own price); 0 for unknown models."""
    info = model_info(ep)
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    inp, out = float(info.get("input_cost_per_token") or 0.0), float(info.get("output_cost_per_token") or 0.0)
    cached_price = float(info.get("cache_read_input_token_cost") or inp)
    return (prompt - cached) * inp + cached * cached_price + completion * out


# -- sessions ----------------------------------------------------------------------------------
_PROXY_VARS = tuple(v for n in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for v in (n, n.upper()))
_PROXIES: dict[tuple[str, tuple[str | None, ...]], tuple[Any, Any]] = {}


def proxy_for(url: str) -> tuple[Any, Any]:
    """(proxy URL, proxy auth) for ``url`` by the environment's ``*_PROXY`` / ``NO_PROXY``; (None, None) for none."""
    get = os.environ.get
    key = (url, tuple(get(v) for v in _PROXY_VARS))  # the variables that decide an http(s) URL's proxy
    hit = _PROXIES.get(key)
    if hit is None:
        from aiohttp.helpers import get_env_proxy_for_url
        from yarl import URL

        try:
            hit = get_env_proxy_for_url(URL(url))
        except LookupError:  # no proxy for this scheme, or NO_PROXY names the host
            hit = (None, None)
        if len(_PROXIES) >= 256:
            _PROXIES.clear()
        _PROXIES[key] = hit
    return hit


_SESSIONS: dict[int, tuple[asyncio.AbstractEventLoop, Any, Any]] = {}  # id(loop) -> (loop, session, keeper)


async def _keeper(session: Any) -> Any:
    """Owns ``session`` for its loop: ``asyncio.run`` closes open async generators at shutdown."""
    try:
        yield
    finally:
        await session.close()


async def _session() -> Any:
    loop = asyncio.get_running_loop()
    held = _SESSIONS.get(id(loop))
    if held is not None and held[0] is loop and not held[1].closed:
        return held[1]
    import aiohttp

    for key, (old_loop, _, _) in list(_SESSIONS.items()):
        if old_loop.is_closed():
            del _SESSIONS[key]
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
    session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=True,
                                    json_serialize=json.dumps, raise_for_status=False)
    keeper = _keeper(session)
    await keeper.__anext__()
    _SESSIONS[id(loop)] = (loop, session, keeper)
    return session


# -- one call ----------------------------------------------------------------------------------
async def chat(ep: Endpoint, model: str, messages: list[dict[str, Any]], params: dict[str, Any] | None,
               response_format: dict[str, Any] | None, timeout: float) -> Completion:
    """One chat-completions request; a :class:`ModelError` of the facade's kinds when it fails."""
    import aiohttp

    body: dict[str, Any] = {k: v for k, v in (params or {}).items() if k not in _NOT_SENT}
    body["model"], body["messages"] = ep.name, messages
    if response_format is not None:
        body["response_format"] = response_format
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if ep.key:
        headers["Authorization"] = f"Bearer {ep.key}"
    session = await _session()
    # proxy_auth (deprecated in aiohttp 3.14) is kept: its suggested replacement, proxy_headers, reaches only
    # a CONNECT tunnel, so an http:// endpoint behind an authenticating proxy would lose its credentials
    proxy, proxy_auth = proxy_for(ep.url)
    try:
        async with asyncio.timeout(timeout):
            async with session.post(ep.url, data=json.dumps(body).encode(), headers=headers, proxy=proxy,
                                    proxy_auth=proxy_auth) as resp:
                raw = await resp.read()
                status, resp_headers = resp.status, dict(resp.headers)
    except TimeoutError:
        raise ModelError("timeout", f"{model} did not answer within {timeout:g} s") from None
    except asyncio.CancelledError:
        raise
    except aiohttp.ClientError as exc:  # refused / unresolvable: connection; cut off after the request: server
        kind = "connection" if isinstance(exc, aiohttp.ClientConnectorError) else "server_error"
        raise ModelError(kind, _scrub(f"{model}: {type(exc).__name__}: {exc}", ep)) from None
    if status >= 400:
        raise http_error(status, raw, resp_headers, model, ep)
    try:
        data = json.loads(raw)
        choice = data["choices"][0]
        message = choice.get("message") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise ModelError("server_error", _scrub(f"{model}: not a chat completion: {raw[:200]!r}", ep),
                         status=status) from None
    usage = data.get("usage") or {}
    return Completion(
        text=str(message.get("content") or ""),
        model=model,
        response_model=data.get("model"),
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cost_usd=cost(ep, usage),
        finish_reason=choice.get("finish_reason"),
    )


def http_error(status: int, raw: bytes, headers: dict[str, str], model: str, ep: Endpoint) -> ModelError:
    """An error response as a :class:`ModelError` (the same kinds litellm's exceptions map to)."""
    detail: Any = None
    with contextlib.suppress(ValueError, AttributeError):
        detail = json.loads(raw).get("error")
    code = str(detail.get("code") or detail.get("type") or "") if isinstance(detail, dict) else ""
    text = str(detail.get("message") if isinstance(detail, dict) else detail or raw[:300].decode("utf-8", "replace"))
    if status == 429:
        kind = "rate_limited"
    elif "context_length" in code or "context length" in text.lower():
        kind = "context_window"
    elif "content_policy" in code or "content_filter" in code:
        kind = "content_policy"
    elif status in (401, 403):
        kind = "auth"
    elif status == 404:
        kind = "not_found"
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "bad_request"
    retry_after = parse_retry_after(headers) if status in (429, 503) else None
    message = _scrub(f"{model}: HTTP {status}: {text}", ep)
    return ModelError(kind, message[:600] + ("..." if len(message) > 600 else ""), status=status,
                      retry_after=retry_after)


def _scrub(text: str, ep: Endpoint) -> str:
    return redact(text, [ep.key])
