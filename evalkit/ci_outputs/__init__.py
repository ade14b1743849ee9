"""CI outputs of a run: JUnit XML, a Markdown report and the GitHub job summary."""

from evalkit.ci_outputs.junit import render_junit, write_junit
from evalkit.ci_outputs.markdown import render_markdown, write_github_summary, write_markdown

__all__ = ["render_junit", "render_markdown", "write_github_summary", "write_junit", "write_markdown"]
