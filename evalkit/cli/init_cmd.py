"""``evalkit init``: a starter suite, dataset, agent stub and pytest file that run as written."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evalkit.cli.common import console
from evalkit.errors import UserError

AGENT = '''"""Your agent. Replace the body of `answer` with a call to your own code or model."""


def answer(question: str) -> str:
    """Answer one question (the case's `input`)."""
    if "capital of france" in question.lower():
        return "Paris is the capital of France."
    return "I don't know yet."
'''

CASES = """{"id": "capital-fr", "input": "What is the capital of France?", "expected": "Paris"}
{"id": "capital-fr-casual", "input": "capital of france??", "expected": "Paris"}
{"id": "unknown", "input": "Who wrote the 2031 annual report?", "expected": "don't know"}
"""

SUITE = """# An evalkit suite: the cases, the agent under test, how each answer is scored, and the gate.
# Run it:  evalkit run {folder}/suite.yaml      Scorers: evalkit scorers   Judges: evalkit judges
name: {name}
dataset: cases.jsonl            # relative to this file
target: agent:answer            # module:function in this folder
scorers:
  - contains                    # the case's `expected` text appears in the answer (any case)
  - length: {{max_chars: 400}}
  # an LLM judge, skipped with a notice until a model is configured (OPENAI_API_KEY or EVALKIT_JUDGE_MODEL):
  - correctness: {{optional: true}}
thresholds:
  - contains/pass_rate>=0.6
"""

PYTEST = '''"""The same suite as pytest tests: one test per case (run: pytest {folder})."""

import evalkit
from agent import answer


@evalkit.cases("{folder}/suite.yaml")
def test_agent(case, evaluate):
    evaluate(case, answer(case.input_text)).assert_passed()
'''

CONFTEST = '''"""Lets the pytest file import the agent next to it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
'''


def init(
    folder: Annotated[Path, typer.Argument(help="Folder to create the starter files in.")] = Path("evals"),
    name: Annotated[str, typer.Option(help="The suite's name (its MLflow experiment).")] = "my-agent",
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
) -> None:
    """Write a starter suite, dataset, agent stub and pytest file that run as they are.

    Creates FOLDER/suite.yaml, cases.jsonl, agent.py, test_agent.py and conftest.py; then
    `evalkit run FOLDER/suite.yaml` and `pytest FOLDER` both work offline.
    """
    shown = folder.as_posix()
    files = {
        "suite.yaml": SUITE.format(name=name, folder=shown),
        "cases.jsonl": CASES,
        "agent.py": AGENT,
        "test_agent.py": PYTEST.format(folder=shown),
        "conftest.py": CONFTEST,
    }
    existing = [f for f in files if (folder / f).exists()]
    if existing and not force:
        raise UserError(f"{folder / existing[0]} exists; pick another folder or pass --force")
    folder.mkdir(parents=True, exist_ok=True)
    for fname, text in files.items():
        (folder / fname).write_text(text, encoding="utf-8")
    con = console()
    con.print(f"wrote {', '.join(str(folder / f) for f in files)}")
    con.print(f"next: evalkit run {shown}/suite.yaml   (then: evalkit show <run-id>)   ·   pytest {shown}")


def register(app: typer.Typer) -> None:
    """Mount ``init`` on the root app."""
    app.command("init")(init)
