"""The model facade: every model call of evalkit goes through :func:`complete`.

This is the only module that imports litellm, and only inside functions, only for a model that
is not ``mock/<name>``: importing evalkit never pays litellm's import cost, and mock models,
their token counts and costs never need it. litellm is optional (the ``llm`` extra);
:mod:`evalkit.llm.availability` tells whether it is installed without importing it, and runs
check that before any case. litellm is told to use its bundled cost map (no network), to send
no telemetry, and no callbacks (so nothing it logs can carry message contents; its own
``turn_off_message_logging`` is left off: it deep-copies every request to redact it, for loggers
evalkit never registers). OpenAI-protocol models skip litellm altogether: :mod:`evalkit.llm.openai_http`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from typing import Any

from evalkit import context
from evalkit.errors import UserError
from evalkit.llm import cache as _cache
from evalkit.llm import events, limiter, mock, openai_http
from evalkit.llm.availability import INSTALL_HINT, litellm_available, needs_litellm
from evalkit.llm.config import settings
from evalkit.llm.retry import backoff_delay, parse_retry_after
from evalkit.llm.types import CallRecord, Completion, ModelError
from evalkit.redact import redact
from evalkit.schema import Usage

_log = logging.getLogger(__name__)
_litellm_mod: Any = None
_import_lock = threading.Lock()


def _litellm(model: str | None = None) -> Any:
    """Import and configure litellm once (offline cost map, no telemetry, no callbacks).

    Without litellm installed: a :class:`UserError` saying so (runs check this up front, see
    :func:`evalkit.llm.availability.require_litellm`; this is the last line of defence).
    """
    global _litellm_mod
    if _litellm_mod is None:
        with _import_lock:
            if _litellm_mod is None:
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                os.environ.setdefault("LITELLM_TELEMETRY", "False")
                try:
                    import litellm
                except ImportError as exc:
                    if exc.name is not None and exc.name.split(".")[0] != "litellm":
                        raise  # litellm is there but one of its own dependencies is broken
                    what = f"model '{model}'" if model else "a provider model"
                    raise UserError(f"{what} needs litellm, which is not installed: {INSTALL_HINT}") from None

                litellm.telemetry = False
                litellm.suppress_debug_info = True
                litellm.drop_params = True
                litellm.callbacks = []
                litellm.success_callback = []
                litellm.failure_callback = []
                litellm.input_callback = []
                for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
                    logging.getLogger(name).setLevel(logging.ERROR)
                _litellm_mod = litellm
    return _litellm_mod


def warm_up(models: list[str]) -> None:
    """Import litellm now if any of ``models`` needs it, so the first call of a run is not slow.

    Nothing to do for mock models, nor when litellm is not installed (the run's plan said so already).
    """
    if any(needs_litellm(m) and openai_http.endpoint(m) is None for m in models) and litellm_available():
        _litellm()
    elif any(needs_litellm(m) for m in models):
        openai_http.price_map()  # the lean path's prices (json, ~20 ms)


def provider_of(model: str) -> str:
    """The provider prefix of a model string (``openai/gpt-4o`` -> ``openai``)."""
    return model.split("/", 1)[0] if "/" in model else "openai"


def missing_credentials(model: str) -> list[str]:
    """Environment variables ``model``'s provider needs and lacks (offline check; [] for mocks)."""
    if mock.is_mock(model) or os.environ.get("EVALKIT_API_KEY") or not litellm_available():
        return []
    ep = openai_http.endpoint(model, os.environ.get("EVALKIT_API_BASE") or None)
    if ep is not None:
        return openai_http.missing_credentials(ep)
    try:
        info = _litellm(model).validate_environment(model=model)
    except Exception:
        return []
    return [str(k) for k in info.get("missing_keys", [])] if not info.get("keys_in_environment", True) else []


@functools.lru_cache(maxsize=256)
def supports_json_schema(model: str) -> bool:
    """Whether ``model`` accepts a JSON-schema ``response_format`` (offline look-up; False when unknown)."""
    if mock.is_mock(model):
        return True
    if not litellm_available():
        return False
    ep = openai_http.endpoint(model)
    if ep is not None:
        return openai_http.supports_json_schema(ep)
    try:
        return bool(_litellm(model).supports_response_schema(model=model))
    except Exception:
        return False


async def complete(
    model: str,
    messages: list[dict[str, Any]],
    *,
    params: dict[str, Any] | None = None,
    response_format: dict[str, Any] | None = None,
    timeout: float | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    cache: bool | None = None,
    repeat: int | None = None,
    cache_extra: str | None = None,
) -> Completion:
    """Call ``model`` with chat ``messages``; cached, retried, rate-limited and accounted.

    ``repeat`` (default: the current case's repeat index) and ``cache_extra`` (e.g. a judge
    sample index) only enter the cache key, so repeated samples stay independent.
    Raises :class:`ModelError` when the call fails for good; never returns a partial answer.
    """
    ctx = context.current()
    if repeat is None:
        repeat = ctx.repeat if ctx is not None else 0
    use_cache = _cache.is_enabled() and (cache if cache is not None else (ctx.cache_enabled if ctx else True))
    api_base = api_base or os.environ.get("EVALKIT_API_BASE") or None
    api_key = api_key or os.environ.get("EVALKIT_API_KEY") or None
    start_ns = time.time_ns()
    key: str | None = None
    if use_cache:
        key = _cache.make_key(model, messages, params, response_format, repeat, cache_extra)
        hit = _cache_get(key)
        if hit is not None:
            comp = Completion(
                text=str(hit.get("text", "")),
                model=model,
                response_model=hit.get("response_model"),
                input_tokens=int(hit.get("input_tokens", 0)),
                output_tokens=int(hit.get("output_tokens", 0)),
                cost_usd=0.0,
                latency_ms=(time.time_ns() - start_ns) / 1e6,
                cache_hit=True,
                finish_reason=hit.get("finish_reason"),
                attempts=0,
            )
            _account(ctx, comp)
            if events.LISTENERS:
                _emit(model, messages, params, comp, None, start_ns, ctx)
            return comp
    try:
        comp = await _with_retries(model, messages, params, response_format, timeout, api_base, api_key)
    except ModelError as err:
        if events.LISTENERS:
            _emit(model, messages, params, None, err, start_ns, ctx)
        raise
    if key is not None:
        _cache_put(key, model, comp)
    _account(ctx, comp)
    if events.LISTENERS:
        _emit(model, messages, params, comp, None, start_ns, ctx)
    return comp


def _cache_get(key: str) -> dict[str, Any] | None:
    try:
        return _cache.get(key)
    except Exception as exc:  # a broken cache must not break the run
        _log.warning("evalkit: LLM cache unreadable (%s); calling the model", exc)
        return None


def _cache_put(key: str, model: str, comp: Completion) -> None:
    value = {
        "text": comp.text,
        "response_model": comp.response_model,
        "input_tokens": comp.input_tokens,
        "output_tokens": comp.output_tokens,
        "cost_usd": comp.cost_usd,
        "finish_reason": comp.finish_reason,
    }
    try:
        _cache.put(key, model, value)
    except Exception as exc:
        _log.warning("evalkit: LLM cache not written (%s)", exc)


def _account(ctx: context.CaseContext | None, comp: Completion) -> None:
    if ctx is not None:
        ctx.record_usage(
            Usage(
                input_tokens=comp.input_tokens,
                output_tokens=comp.output_tokens,
                cost_usd=comp.cost_usd,
                llm_calls=1,
                cache_hits=int(comp.cache_hit),
            )
        )


def _emit(
    model: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any] | None,
    comp: Completion | None,
    err: ModelError | None,
    start_ns: int,
    ctx: context.CaseContext | None,
) -> None:
    end_ns = time.time_ns()
    safe_params = {k: v for k, v in (params or {}).items() if "key" not in k.lower() and k.lower() != "token"}
    events.emit(
        CallRecord(
            model=model,
            provider=provider_of(model),
            request_model=model.split("/", 1)[-1],
            response_model=comp.response_model if comp else None,
            input_tokens=comp.input_tokens if comp else 0,
            output_tokens=comp.output_tokens if comp else 0,
            cost_usd=comp.cost_usd if comp else 0.0,
            latency_ms=(end_ns - start_ns) / 1e6,
            messages=messages,
            completion=comp.text if comp else None,
            error_type=err.kind if err else None,
            start_time_ns=start_ns,
            end_time_ns=end_ns,
            cache_hit=comp.cache_hit if comp else False,
            attempts=comp.attempts if comp else (err.attempts if err else 1),
            finish_reason=comp.finish_reason if comp else None,
            params=safe_params,
            case_id=ctx.case_id if ctx else None,
            run_id=ctx.run_id if ctx else None,
        )
    )


async def _with_retries(
    model: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any] | None,
    response_format: dict[str, Any] | None,
    timeout: float | None,
    api_base: str | None,
    api_key: str | None,
) -> Completion:
    s = settings()
    lean = None if mock.is_mock(model) else openai_http.endpoint(model, api_base, api_key)
    if not mock.is_mock(model) and lean is None and _litellm_mod is None:
        # first call: import litellm (~6 s) in a thread so the event loop keeps serving other cases
        await asyncio.to_thread(_litellm, model)
    lim = limiter.for_model(model)
    per_call = timeout if timeout is not None else s.timeout_s
    attempt = 0
    while True:
        attempt += 1
        t0 = time.perf_counter()
        try:
            async with lim:
                if mock.is_mock(model):
                    comp = await _mock_once(model, messages, per_call)
                elif lean is not None:
                    comp = await openai_http.chat(lean, model, messages, params, response_format, per_call)
                else:
                    comp = await _litellm_once(
                        model, messages, params, response_format, per_call, api_base, api_key
                    )
        except ModelError as err:
            err.attempts = attempt
            if err.kind == "rate_limited":
                lim.on_throttle()
            if not err.retriable or attempt >= s.max_attempts:
                raise
            delay = backoff_delay(
                attempt, s.backoff_base_s, s.backoff_max_s, err.retry_after, s.retry_after_max_s
            )
            await asyncio.sleep(delay)
            continue
        lim.on_success()
        comp.latency_ms = (time.perf_counter() - t0) * 1000
        comp.attempts = attempt
        return comp


async def _mock_once(model: str, messages: list[dict[str, Any]], timeout: float) -> Completion:
    try:
        text = await asyncio.wait_for(mock.respond(model, messages), timeout)
    except TimeoutError:
        raise ModelError("timeout", f"{model} did not answer within {timeout:g} s") from None
    prompt_words = sum(mock.count_tokens(mock._content(m)) for m in messages)
    return Completion(
        text=text,
        model=model,
        response_model=model,
        input_tokens=prompt_words,
        output_tokens=mock.count_tokens(text),
        cost_usd=0.0,
        finish_reason="stop",
    )


async def _litellm_once(
    model: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any] | None,
    response_format: dict[str, Any] | None,
    timeout: float,
    api_base: str | None,
    api_key: str | None,
) -> Completion:
    litellm = _litellm(model)
    kwargs: dict[str, Any] = dict(params or {})
    kwargs.update(model=model, messages=messages, timeout=timeout, num_retries=0, max_retries=0)
    if response_format is not None:
        kwargs["response_format"] = response_format
    if api_base:
        kwargs["api_base"] = api_base
    if api_key:
        kwargs["api_key"] = api_key
    try:
        # litellm enforces ``timeout`` itself; the outer bound catches a hang anywhere else.
        async with asyncio.timeout(timeout + 5.0):
            resp = await litellm.acompletion(**kwargs)
    except TimeoutError:
        raise ModelError("timeout", f"{model} did not answer within {timeout:g} s") from None
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise classify(exc, model, api_key) from None
    return _to_completion(litellm, model, resp)


def _to_completion(litellm: Any, model: str, resp: Any) -> Completion:
    choice = resp.choices[0] if getattr(resp, "choices", None) else None
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None) or ""
    usage = getattr(resp, "usage", None)
    cost = (getattr(resp, "_hidden_params", None) or {}).get("response_cost")
    if cost is None:
        try:
            cost = litellm.completion_cost(completion_response=resp)
        except Exception:
            cost = 0.0
    return Completion(
        text=str(text),
        model=model,
        response_model=getattr(resp, "model", None),
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cost_usd=float(cost or 0.0),
        finish_reason=getattr(choice, "finish_reason", None),
    )


def _headers(exc: Exception) -> dict[str, str]:
    out: dict[str, str] = {}
    for src in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "headers", None),
    ):
        try:
            if src:
                out.update({str(k): str(v) for k, v in dict(src).items()})
        except Exception:
            continue
    return out


def classify(exc: Exception, model: str, api_key: str | None = None) -> ModelError:
    """Map a litellm/openai/httpx exception to a :class:`ModelError` with a scrubbed message."""
    names = {c.__name__ for c in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = None
    if "Timeout" in names or "APITimeoutError" in names or "TimeoutException" in names:
        kind = "timeout"
    elif "RateLimitError" in names or status == 429:
        kind = "rate_limited"
    elif "ContextWindowExceededError" in names:
        kind = "context_window"
    elif "ContentPolicyViolationError" in names:
        kind = "content_policy"
    elif "AuthenticationError" in names or "PermissionDeniedError" in names or status in (401, 403):
        kind = "auth"
    elif "NotFoundError" in names or status == 404:
        kind = "not_found"
    elif (status is not None and status >= 500) or (
        "InternalServerError" in names or "ServiceUnavailableError" in names or "BadGatewayError" in names
    ):
        kind = "server_error"
    elif (
        "BadRequestError" in names
        or "UnprocessableEntityError" in names
        or (status is not None and 400 <= status < 500)
    ):
        kind = "bad_request"
    elif "APIConnectionError" in names or "ConnectError" in names or "RemoteProtocolError" in names:
        kind = "connection"
    elif "APIError" in names or "APIResponseValidationError" in names or "JSONDecodeError" in names:
        kind = "server_error"  # a garbled provider response: worth another attempt
    else:
        kind = "unknown"
    retry_after = parse_retry_after(_headers(exc)) if kind == "rate_limited" or status == 503 else None
    message = redact(f"{model}: {type(exc).__name__}: {exc}", [api_key])
    if len(message) > 600:
        message = message[:600] + "..."
    return ModelError(kind, message, status=status, retry_after=retry_after)
