"""Fixtures for the MLflow tests: a pre-built embedded store, a real loopback `mlflow server`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tracking._mlflow_server import free_port as _free_port
from tests.tracking._mlflow_server import mlflow_server_process


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mlflow_server: needs a real `mlflow server` (session fixture, ~15 s start)")


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite database."""
    # Creating one runs its migrations (~6 s): build one per session and copy it.
    from evalkit.tracking.uri import client

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    client(f"sqlite:///{db}").search_experiments(max_results=1)
    return db


@pytest.fixture
def tracked(workspace: Path, mlflow_template: Path) -> Path:
    """A workspace whose embedded MLflow store already exists (copied from the template)."""
    target = workspace / ".evalkit" / "mlflow.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template, target)
    return workspace


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Iterator[str]:
    """A real `mlflow server` on a loopback port (SQLite backend, proxied artifacts); yields its URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    db = root / "server.db"
    shutil.copy(mlflow_template, db)
    with mlflow_server_process(f"sqlite:///{db}", root) as uri:
        yield uri


@pytest.fixture
def dead_uri() -> str:
    """A loopback URI nothing listens on."""
    return f"http://127.0.0.1:{_free_port()}"
