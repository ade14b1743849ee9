"""Self-contained HTML reports: one file per run, and a diff of two runs. No server, no network."""

from evalkit.report.html import render_compare, render_run, write_compare, write_report

__all__ = ["render_compare", "render_run", "write_compare", "write_report"]
