"""``evalkit ui``: serve the read-only dashboard until Ctrl-C."""

from __future__ import annotations

from typing import Annotated

import typer

from evalkit.cli.common import StoreOpt, console
from evalkit.cli.mlflow_cmds import TeamOpt, TrackingOpt


def ui(
    host: Annotated[str, typer.Option(help="Interface to listen on; beyond loopback a token is required.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).", min=0, max=65535)] = 8765,
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    team: TeamOpt = None,
    token: Annotated[str | None, typer.Option(
        help="Require this token (Bearer header, or open /?token=... once) [env EVALKIT_UI_TOKEN, preferred].",
        show_default=False)] = None,
    mlflow_url: Annotated[str | None, typer.Option(
        "--mlflow-url", help="MLflow web UI address for links [default: the tracking URI when it is http(s)].",
        show_default=False)] = None,
) -> None:
    """Serve a live, read-only dashboard: leaderboard, trends, runs, cases with their traces, judge health.

    Reads MLflow (embedded or server) and the observability store (local file or team store) on every
    request, so it shows runs while they write. Nothing is fetched from outside the server.
    """
    import signal
    import threading

    from evalkit.errors import UserError
    from evalkit.store.db import default_store_path
    from evalkit.tracking.uri import resolve_tracking_uri
    from evalkit.ui.server import Dashboard, check_bind, start_ui
    from evalkit.ui.views import Tracking

    token = check_bind(host, token)
    path = store or default_store_path()
    app = Dashboard(path, Tracking(resolve_tracking_uri(path, tracking_uri), web_url=mlflow_url), team=team)
    try:
        server = start_ui(app, host, port, token=token)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    err = console(stderr=True)
    how = " (token required: open it once as /?token=YOUR_TOKEN)" if server.token_required else ""
    err.print(f"evalkit ui: dashboard at {server.url}{how}; Ctrl-C to stop", highlight=False)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.close()


def register(app: typer.Typer) -> None:
    """Mount ``evalkit ui`` on the root app."""
    app.command("ui")(ui)
