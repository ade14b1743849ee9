"""Every notebook in notebooks/ executes top to bottom, each in a fresh copy of the folder and its own store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 900  # generous: the CI machine is small and shared


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(notebook: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    work = workspace / "notebooks"
    shutil.copytree(
        REPO / "notebooks", work, ignore=shutil.ignore_patterns(".evalkit", ".ipynb_checkpoints", "*.html", "*.png", "mlruns")
    )
    # the kernel is a child process: it inherits this environment (store, cache, repo, no tracking server)
    monkeypatch.setenv("EVALKIT_REPO", str(REPO))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(workspace / ".jupyter-runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(workspace / ".ipython"))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(work / notebook.name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    nbformat.write(nb, workspace / f"{notebook.stem}.executed.ipynb")  # for a look when debugging
