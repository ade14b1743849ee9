"""One dashboard workspace per test module: building its runs takes a few seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ui._dash import Workspace, build


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("dash")
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("EVALKIT_TEAM", raising=False)
        mp.setenv("EVALKIT_STORE", str(root / ".evalkit" / "evalkit.duckdb"))
        yield build(root)
