"""Start a real loopback `mlflow server` on any backend store (SQLite, PostgreSQL, ...)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_READY_POLLS = 600  # x 0.2 s: a loaded 2-core machine can take a minute to import mlflow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(uri + "/health", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def mlflow_server_process(backend_store_uri: str, root: Path) -> Iterator[str]:
    """`mlflow server` on a free loopback port, artifacts proxied into ``root/artifacts``; yields its URI.

    Fails the test with the server log's tail when it exits or is not healthy in time; stops it on exit.
    """
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", backend_store_uri, "--artifacts-destination", (root / "artifacts").as_uri(),
           "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    log_path = root / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        for _ in range(SERVER_READY_POLLS):
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited: {log_path.read_text(errors='replace')[-2000:]}")
            if healthy(uri):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"mlflow server did not become ready: {log_path.read_text(errors='replace')[-2000:]}")
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have exited already
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group (uvicorn workers)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
