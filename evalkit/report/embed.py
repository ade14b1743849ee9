"""The page shell: data embedded safely, inline style and script pinned by a Content-Security-Policy.

Untrusted text reaches the page only inside the JSON data block, where ``<``, ``>``, ``&`` and the
JavaScript line separators are ``\\u``-escaped, so nothing in it can close the ``<script>`` element; the
script then writes every string with ``textContent`` (the renderers in :mod:`evalkit.report.html` first
make control and bidi characters visible: :func:`evalkit.safe_text.displayable`). The CSP allows exactly the one inline script and
the one inline style (by SHA-256), images only from ``data:``, and nothing else: the page makes no
network request. Large payloads are gzipped and base64-encoded; the page inflates them with the
browser's ``DecompressionStream``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from typing import Any

from evalkit import safe_text
from evalkit.report.assets import SCRIPT, STYLE

COMPRESS_OVER = 1_000_000  # bytes of JSON above which the data block is gzipped
_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def json_for_script(data: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (and equal to ``json.dumps`` once parsed; a non-finite
    float, which JSON cannot hold, is null)."""
    text = safe_text.json_dumps(data, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in _ESCAPES:  # str.replace is much faster than str.translate on a large payload
        text = text.replace(char, escaped)
    return text


def source_hash(text: str) -> str:
    """The CSP source expression of an inline script or style."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def csp() -> str:
    """The page's policy: only its own inline script and style run; no fetches, frames or forms."""
    return (
        f"default-src 'none'; script-src {source_hash(SCRIPT)}; style-src {source_hash(STYLE)}; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def page(title: str, data: Any, *, compress: bool | None = None) -> str:
    """The whole HTML document. ``compress``: None gzips only payloads over :data:`COMPRESS_OVER` bytes."""
    body = json_for_script(data)
    if compress is None:
        compress = len(body) > COMPRESS_OVER
    if compress:
        packed = base64.b64encode(gzip.compress(body.encode(), compresslevel=6, mtime=0)).decode()
        block = f'<script type="application/gzip+base64" id="evalkit-data">{packed}</script>'
    else:
        block = f'<script type="application/json" id="evalkit-data">{body}</script>'
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{csp()}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{safe_text.html(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        '<div id="app"><p class="loading">Loading report…</p></div>\n'
        f"{block}\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
