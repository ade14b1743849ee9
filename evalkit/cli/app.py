"""The root ``evalkit`` command; user errors print one line and exit 2, with no traceback.

Run as the process's entry point, a command never hangs the exit: if non-daemon threads that
user code started are still running :data:`EXIT_GRACE_S` after the interpreter began to exit,
one warning names them and the process ends with the command's exit code (``os._exit``)
instead of waiting for them. Called from other code (tests), ``main()`` only raises SystemExit.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

import typer

from evalkit.errors import UserError

app = typer.Typer(
    name="evalkit",
    help="Run agent test suites, score them (deterministic scorers and LLM judges), trace every case "
    "into DuckDB and log summaries to MLflow.\n\nExit codes: 0 done / gate passed, 1 gate failed, "
    "2 bad input or usage, 3 infrastructure (store, provider errors above --max-error-rate).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


VERSION_OF = ("mlflow", "mlflow-skinny", "duckdb", "litellm")  # shown by --version when installed


def version_text() -> str:
    """``evalkit <version>`` and the installed versions of the stack, from package metadata (nothing imported)."""
    from importlib.metadata import PackageNotFoundError, version

    def of(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    parts = [f"evalkit {of('evalkit') or 'unknown'}"]
    parts += [f"{dist} {v}" for dist in VERSION_OF if (v := of(dist)) is not None]
    return "\n".join(parts)


def _version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                 help="Print the versions of evalkit, mlflow, duckdb and litellm, and exit."),
) -> None:
    pass


def _mount() -> None:
    from evalkit.cli import (
        batch_cmds,
        cache,
        calibrate_cmd,
        catalog,
        doctor,
        init_cmd,
        mlflow_cmds,
        report_cmd,
        run,
        runs,
        show,
        store_cmds,
        tracing_cmds,
        ui_cmd,
    )

    app.command("run")(run.run)
    app.command("runs")(runs.runs)
    app.command("show")(show.show)
    app.command("doctor")(doctor.doctor)
    app.add_typer(cache.app, name="cache")
    for module in (tracing_cmds, mlflow_cmds, store_cmds, report_cmd, batch_cmds, catalog, init_cmd, ui_cmd,
                   calibrate_cmd):
        module.register(app)


EXIT_GRACE_S = 2.0  # time left for non-daemon threads (idle pools, late flushes) to end on their own


def _leftover_threads() -> list[threading.Thread]:
    main_thread = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main_thread and not t.daemon and t.is_alive()]


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1  # sys.exit("message") exits 1


def _guard_exit(code: int) -> None:
    """If non-daemon threads are alive, arm a watchdog: still alive after the grace, warn once and ``os._exit``."""
    if not _leftover_threads():
        return  # the usual case: a normal interpreter exit, untouched
    caller = sys._getframe(2)  # main()'s caller: the console script or ``python -m``, module-level code
    if caller.f_globals.get("__name__") != "__main__" or caller.f_code.co_name != "<module>":
        return  # called in-process by other code: its process, its exit
    main_thread = threading.main_thread()

    def watchdog() -> None:
        main_thread.join()  # returns once the interpreter starts its exit (before it joins other threads)
        time.sleep(EXIT_GRACE_S)
        names = [t.name for t in _leftover_threads()]
        if not names:
            return  # they ended: the interpreter exits by itself
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.write(f"warning: {len(names)} thread(s) started by the agent are still running "
                             f"({', '.join(names)}); exiting anyway\n")
            sys.stderr.flush()
        os._exit(code)

    threading.Thread(target=watchdog, name="evalkit-exit-watchdog", daemon=True).start()


def main() -> None:
    from evalkit.redact import redact_logs

    redact_logs()
    _mount()
    try:
        _main()
    except SystemExit as exc:
        _guard_exit(_exit_code(exc.code))
        raise
    except BaseException:
        _guard_exit(1)  # the traceback is printed as usual, then the exit may not hang either
        raise


def _main() -> None:
    try:
        rc = app(standalone_mode=False)
    except UserError as exc:
        from evalkit.safe_text import one_line

        sys.stderr.write("".join(f"error: {one_line(line)}\n" for line in exc.lines()))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except Exception as exc:
        # usage errors from the (vendored) click layer: print them the click way, exit 2
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(2)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
