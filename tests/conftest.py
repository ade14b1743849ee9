"""Shared fixtures: an isolated workspace per test and the loopback OpenAI-compatible server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.postgres import PostgresServer, available

pytest_plugins = ["tests.fakes.fixtures"]

# `evalkit run` logs MLflow inline here (tests read MLflow right after a run); tests/tracking/test_detach.py
# covers the detached default of a laptop.
os.environ.setdefault("EVALKIT_MLFLOW_DETACH", "0")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never reach the network by accident: only loopback connections are allowed."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory with its own store, cache and MLflow location."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALKIT_STORE", str(tmp_path / ".evalkit" / "evalkit.duckdb"))
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / ".evalkit" / "llm_cache.sqlite"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for key in list(os.environ):
        if key.endswith("_API_KEY"):
            monkeypatch.delenv(key, raising=False)
    return tmp_path


EVALKIT = [sys.executable, "-m", "evalkit.cli.app"]


def evalkit_cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``evalkit`` command as a user would (a fresh process) in ``cwd``."""
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([*EVALKIT, *args], cwd=cwd, capture_output=True, text=True, env=full, timeout=600)


# -- reliability figures: tests fill them, the session prints them (also under pytest-xdist) -------------

FIGURES: dict[str, dict[str, object]] = {}


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, object]:
    """A dict the test fills; it is printed in pytest's terminal summary at the end of the session."""
    return FIGURES.setdefault(request.node.name, {})


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the figures to the controller
        import json

        workeroutput["evalkit_figures"] = json.dumps(FIGURES, default=str)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    import json

    FIGURES.update(json.loads(getattr(node, "workeroutput", {}).get("evalkit_figures", "{}")))


def pytest_terminal_summary(terminalreporter: object) -> None:
    if not any(FIGURES.values()):
        return
    terminalreporter.section("evalkit reliability figures")  # type: ignore[attr-defined]
    for name, figs in sorted(FIGURES.items()):
        if figs:
            terminalreporter.write_line(f"{name}: " + ", ".join(f"{k} {v}" for k, v in figs.items()))  # type: ignore[attr-defined]


# -- the team store: one throwaway PostgreSQL server per pytest process (marker team_store) ---------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on loopback for this pytest process (each xdist worker starts its own).

    Skips with the reason when no server binaries are found, unless ``EVALKIT_REQUIRE_TEAM_STORE=1``
    (CI), where it fails instead so the team-store tests cannot silently not run.
    """
    reason = available()
    if reason is not None:
        if os.environ.get("EVALKIT_REQUIRE_TEAM_STORE") == "1":
            pytest.fail(f"EVALKIT_REQUIRE_TEAM_STORE=1 but the team-store tests cannot run: {reason}")
        pytest.skip(reason)
    try:
        server = PostgresServer().start()
    except RuntimeError as e:
        pytest.fail(f"could not start PostgreSQL: {e}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A plain ``postgresql://evalkit:PASS@127.0.0.1:PORT/<fresh db>`` URL."""
    return postgres_server.create_database()


@pytest.fixture
def team_store_url(postgres_server: PostgresServer, tmp_path: Path) -> str:
    """A team store URL on a fresh database: ``ducklake+postgresql://...?data_path=<tmp_path>/lake``."""
    from urllib.parse import quote

    lake = tmp_path / "lake"
    lake.mkdir(parents=True, exist_ok=True)
    url = postgres_server.create_database()
    return f"ducklake+{url}?data_path={quote(str(lake), safe='/')}"
