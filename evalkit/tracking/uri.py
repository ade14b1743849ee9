"""Where runs are tracked: the embedded SQLite store next to the DuckDB file, or ``MLFLOW_TRACKING_URI``."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.redact import redact
from evalkit.tracking.errors import TrackingError, TrackingUnavailable

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

EMBEDDED_DB = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
PROBE_TIMEOUT_S = float(os.environ.get("EVALKIT_MLFLOW_PROBE_TIMEOUT", "3"))
# Bounded HTTP behaviour while evalkit talks to a server, unless the user chose otherwise.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # keeps --json output clean
}


def workspace_dir(store_path: Path | str | None) -> Path:
    """The folder holding the DuckDB file (``.evalkit/``); for in-memory stores, ``./.evalkit``."""
    from evalkit.store.db import local_anchor

    if store_path is None or str(store_path) == ":memory:":
        return Path.cwd() / ".evalkit"
    return local_anchor(store_path).resolve().parent


def resolve_tracking_uri(store_path: Path | str | None, tracking_uri: str | None = None) -> str:
    """``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<workspace>/mlflow.db``."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{workspace_dir(store_path) / EMBEDDED_DB}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def experiment_name(suite: str, team: str | None = None) -> str:
    """``suite``, or ``team/suite`` with a team prefix (``--team`` / ``$EVALKIT_TEAM``)."""
    team = team if team is not None else os.environ.get("EVALKIT_TEAM")
    team = (team or "").strip().strip("/")
    return f"{team}/{suite}" if team else suite


def artifact_root(uri: str) -> str | None:
    """Artifact location for new experiments of the embedded store (beside its DB); None for servers."""
    db = sqlite_path(uri)
    if db is None:
        return None
    return (db.parent / ARTIFACTS_DIR).resolve().as_uri()


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "experiment"


def probe(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast with :class:`TrackingUnavailable` when an HTTP tracking server does not answer.

    Any HTTP answer except 502/503/504 counts as reachable (auth errors surface later, clearly).
    Non-HTTP URIs (sqlite, databricks, ...) are not probed here.
    """
    if uri.startswith(("http://", "https://")):
        shown = redact(uri)
        try:
            with urllib.request.urlopen(health_request(uri), timeout=timeout_s):
                return
        except urllib.error.HTTPError as exc:
            if exc.code in (502, 503, 504):
                raise TrackingUnavailable(f"MLflow tracking server {shown} is unhealthy (HTTP {exc.code})") from None
            return
        except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingUnavailable(
                f"MLflow tracking server {shown} is unreachable ({reason}); results stay in DuckDB, "
                "log them later with `evalkit sync`"
            ) from None
    db = sqlite_path(uri)
    if db is not None:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingError(f"cannot create the MLflow store folder {db.parent}: {exc}") from None


def health_request(uri: str) -> urllib.request.Request:
    """``GET <uri>/health``, with credentials in the URL (or MLflow's env variables) sent as headers.

    urllib cannot take ``user:password@`` in a URL; MLflow's client (requests) can, so the
    probe must too or it calls a reachable server unreachable.
    """
    parts = urllib.parse.urlsplit(uri.rstrip("/"))
    user, password = parts.username, parts.password
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path + "/health", "", ""))
    headers: dict[str, str] = {}
    user = urllib.parse.unquote(user) if user else os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = urllib.parse.unquote(password) if password else os.environ.get("MLFLOW_TRACKING_PASSWORD")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if user and password:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    return urllib.request.Request(url, headers=headers)


@contextlib.contextmanager
def bounded_http() -> Iterator[None]:
    """Few retries and a modest timeout for MLflow's HTTP client while evalkit works (restored after)."""
    saved = {k: os.environ.get(k) for k in HTTP_DEFAULTS}
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)


def client(uri: str) -> MlflowClient:
    """An MlflowClient on ``uri`` (imports mlflow: ~2 s the first time; creating a SQLite store ~6 s once per
    machine and MLflow version: later workspaces start from a copy, see :mod:`evalkit.tracking.template_db`)."""
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    db = sqlite_path(uri)
    try:
        if db is None or _created(db):
            return MlflowClient(tracking_uri=uri)
        with _creation_lock(db):  # two processes creating one embedded store race on its migrations
            from evalkit.tracking import template_db

            seeded = template_db.seed(db, artifact_root(uri))  # a copy of the first workspace's fresh store
            c = MlflowClient(tracking_uri=uri)
            c.search_experiments(max_results=1)  # creates and migrates the database (if not seeded), under the lock
            if not seeded:
                template_db.keep(db)
            return c
    except TrackingError:
        raise
    except Exception as exc:
        raise wrap(exc, uri) from None


def _created(db: Path) -> bool:
    """The embedded database exists with MLflow's tables (a first creation is not under way)."""
    return db.exists() and db.stat().st_size > 0 and not Path(f"{db}.creating").exists()


@contextlib.contextmanager
def _creation_lock(db: Path) -> Iterator[None]:
    """An exclusive lock (``<db>.creating``) around the first creation of an embedded MLflow store."""
    import fcntl

    db.parent.mkdir(parents=True, exist_ok=True)
    lock = Path(f"{db}.creating")
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # the other creator finishes first; then its store is used as is
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                lock.unlink()
            fcntl.flock(fh, fcntl.LOCK_UN)


def wrap(exc: BaseException, uri: str) -> TrackingError:
    """Turn an MLflow/requests failure into TrackingUnavailable (connection) or TrackingError."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = str(exc).lower()
    if any(s in low for s in ("failed with exception", "max retries", "connection refused", "timed out",
                              "failed to establish", "connectionerror", "name or service not known")):
        return TrackingUnavailable(f"MLflow tracking server {uri} is unreachable ({text[:200]}); "
                                   "results stay in DuckDB, log them later with `evalkit sync`")
    return TrackingError(f"MLflow ({uri}): {text[:300]}")
