"""A cheap, offline check of whether a model string has the credentials it needs (no litellm import)."""

from __future__ import annotations

import os

# provider prefix -> environment variables, any one of which is enough
PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "azure": ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
    "gemini": ("GEMINI_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "cohere": ("COHERE_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY"),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "bedrock": ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ROLE_ARN"),
    "vertex_ai": ("GOOGLE_APPLICATION_CREDENTIALS", "VERTEXAI_PROJECT"),
}
KEYLESS = {"mock", "ollama", "ollama_chat", "hosted_vllm", "lm_studio", "llamafile"}


def has_credentials(model: str) -> bool:
    """True when ``model`` can plausibly be called: keyless/local providers, an explicit
    ``EVALKIT_API_KEY``/``EVALKIT_API_BASE``, or the provider's usual key in the environment."""
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    if provider in KEYLESS or os.environ.get("EVALKIT_API_KEY") or os.environ.get("EVALKIT_API_BASE"):
        return True
    keys = PROVIDER_KEYS.get(provider)
    return True if keys is None else any(os.environ.get(k) for k in keys)


def missing_credentials_hint(model: str) -> str | None:
    """None when ``model`` has credentials, else which variable to set (one clause, for an error line)."""
    if has_credentials(model):
        return None
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    keys = " or ".join(PROVIDER_KEYS.get(provider, ()))
    return f"set {keys} (or EVALKIT_API_KEY; EVALKIT_API_BASE for a local OpenAI-compatible server)"
