"""The leaderboard notebook runs headless and offline against a small workspace."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO
from tests.tracking._cli import cli_json
from tests.tracking._runs import make_run

NOTEBOOK = REPO / "notebooks" / "leaderboard.ipynb"


def test_notebook_executes(tracked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tracked / ".evalkit" / "evalkit.duckdb"
    for quality, agent in ((0.5, "alpha"), (0.9, "beta"), (0.7, "alpha")):
        make_run(store, quality=quality, agent=agent)
    cli_json("sync", "--json")
    monkeypatch.setenv("EVALKIT_SUITE", "qa")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(tracked)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "ranked by exact_match/mean" in text and "12 case results" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the trend plot
