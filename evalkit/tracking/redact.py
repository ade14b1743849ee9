"""Keep secrets out of MLflow: names ending in _KEY/_TOKEN/_SECRET, and values of such env vars."""

from __future__ import annotations

import os
import re

REDACTED = "***"
SECRET_NAME = re.compile(r"(_KEY|_TOKEN|_SECRET|_PASSWORD|APIKEY|API_KEY)$", re.IGNORECASE)
MIN_SECRET_LEN = 6


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names look secret (longest first)."""
    env = os.environ if environ is None else environ
    vals = {v for k, v in env.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LEN}
    return sorted(vals, key=len, reverse=True)


def is_secret_name(name: str) -> bool:
    leaf = re.split(r"[./]", name)[-1]
    return bool(SECRET_NAME.search(leaf) or SECRET_NAME.search(name))


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return text


def redact(items: dict[str, str], secrets: list[str] | None = None) -> dict[str, str]:
    """Params or tags with secret-named entries and secret values redacted."""
    secrets = secret_values() if secrets is None else secrets
    return {k: (REDACTED if is_secret_name(k) else scrub(v, secrets)) for k, v in items.items()}
