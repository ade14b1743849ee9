"""Fixtures for the MLflow tests: a pre-built embedded store, a real loopback `mlflow server`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# Creating an MLflow SQLite database runs its migrations (~6 s); build one per session and copy it.
SERVER_READY_POLLS = 600  # x 0.2 s: a loaded 2-core machine can take a minute to import mlflow


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mlflow_server: needs a real `mlflow server` (session fixture, ~15 s start)")


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite database."""
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(uri + "/health", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Iterator[str]:
    """A real `mlflow server` on a loopback port (SQLite backend, proxied artifacts); yields its URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    db = root / "server.db"
    shutil.copy(mlflow_template, db)
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination", (root / "artifacts").as_uri(),
           "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        for _ in range(SERVER_READY_POLLS):
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
            if _healthy(uri):
                break
            time.sleep(0.2)
        else:
            pytest.fail("mlflow server did not become ready")
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group (uvicorn workers)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture
def dead_uri() -> str:
    """A loopback URI nothing listens on."""
    return f"http://127.0.0.1:{_free_port()}"
