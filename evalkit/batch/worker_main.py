"""The body of a local worker process (see :mod:`evalkit.batch.local_workers`).

A worker is a fresh interpreter started as ``python -c BOOT FD WATCH``: ``FD`` is its end of a
socket pair to the driver (a :class:`multiprocessing.connection.Connection`), ``WATCH`` the read end
of a pipe whose write end only the driver holds. The first message is the driver's ``sys.path``;
then each message is a :class:`~evalkit.batch.chunks.ChunkJob` answered with ``("ok", ChunkReport)``
or ``("error", why)``; ``None`` (or the driver going away) ends the process.

Unlike :mod:`multiprocessing`'s ``spawn``, nothing of the driver's ``__main__`` is run again here: a
script calling ``evaluate()`` without an ``if __name__ == "__main__":`` guard still works.
"""

from __future__ import annotations

import os
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

# SIGINT is ignored before anything else (the driver starts us with it blocked, so none got through yet):
# Ctrl-C is the driver's to handle.
BOOT = ("import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "hasattr(signal, 'pthread_sigmask') and signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
        "from multiprocessing.connection import Connection\n"
        "conn = Connection(int(sys.argv[1]))\n"
        "sys.path[:] = conn.recv()\n"
        "from evalkit.batch.worker_main import serve\n"
        "serve(conn, int(sys.argv[2]))\n")


def _watch_driver(fd: int) -> None:
    """Exit when the driver is gone (its end of the pipe closes): nobody would merge what this worker writes
    (``--resume`` will)."""

    def watch() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        os._exit(1)

    threading.Thread(target=watch, name="evalkit-driver-watch", daemon=True).start()


def _describe(exc: BaseException) -> str:
    from evalkit.errors import UserError

    if isinstance(exc, UserError):
        return exc.message
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".rstrip(": ")


def serve(conn: Connection, watch_fd: int) -> None:
    """Run the chunks the driver sends until it sends None or goes away."""
    os.set_inheritable(conn.fileno(), False)  # a process the agent starts must not hold the driver's line open
    os.set_inheritable(watch_fd, False)
    _watch_driver(watch_fd)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from evalkit.batch.chunks import run_chunk

    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            msg: tuple[str, Any] = ("ok", run_chunk(job))
        except BaseException as exc:  # the chunk failed: the driver says why
            msg = ("error", _describe(exc))
        try:
            conn.send(msg)
        except OSError:
            return
