"""The dashboard's one HTML page and the Content-Security-Policies of everything the server sends.

Same look as the report (its stylesheet, plus a few dashboard rules); the inline script and style
are pinned by SHA-256, the page may fetch only from its own origin, and nothing may frame it.
"""

from __future__ import annotations

import functools

from evalkit.report.assets import STYLE
from evalkit.report.embed import csp, source_hash
from evalkit.ui.script import UI_SCRIPT

UI_STYLE = STYLE + r"""
nav{display:flex;gap:4px;margin-left:18px}
nav a{color:#c9d1d9;text-decoration:none;padding:4px 10px;border-radius:6px}
nav a.on,nav a:hover{background:#3a434d;color:#fff}
header .live{margin-left:auto;color:#c9d1d9;font-size:12px}
a{color:var(--acc)}
td.rank{font-weight:600;width:3.5em}td.rank.tied{color:var(--warn)}
.cibar{display:inline-block;position:relative;width:120px;height:10px;background:#eef1f4;border-radius:5px;vertical-align:middle}
.cibar .iv{position:absolute;top:2px;height:6px;background:#9ec5fe;border-radius:3px}
.cibar .pt{position:absolute;top:0;width:2px;height:10px;background:var(--acc)}
.suite-head{display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}
.suite-head .note{font-size:12px}
svg.trend{width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:6px}
svg.trend text{font-size:11px;fill:var(--muted)}
.legend{display:flex;gap:14px;flex-wrap:wrap;margin:6px 0}
.legend span.sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:middle}
tr.flag-regression td{background:var(--badbg)}
tr.link{cursor:pointer}tr.link:hover{background:#f3f7fc}
.err-banner{background:var(--badbg);color:var(--bad);border:1px solid #ffcecb;border-radius:6px;padding:8px 12px;margin-bottom:12px}
@media (min-width:2200px){:root{font-size:18px}main{max-width:none}.cibar{width:180px}}
"""

_TITLE = "evalkit · dashboard"


@functools.cache
def shell() -> str:
    """The dashboard page: an empty ``main`` the script fills from the JSON API."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{_TITLE}</title>\n<style>{UI_STYLE}</style>\n</head>\n<body>\n"
        '<main id="app"><p class="loading">Loading…</p></main>\n'
        f"<script>{UI_SCRIPT}</script>\n</body>\n</html>\n"
    )


@functools.cache
def shell_csp() -> str:
    """Only the page's own script and style; fetches to its own origin; no frames, forms or other sources."""
    return (f"default-src 'none'; script-src {source_hash(UI_SCRIPT)}; style-src {source_hash(UI_STYLE)}; img-src data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def report_csp() -> str:
    """The report's own policy (it also sits in the page), and no framing."""
    return csp() + "; frame-ancestors 'none'"


def api_csp() -> str:
    return "default-src 'none'; frame-ancestors 'none'"
