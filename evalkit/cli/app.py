"""The root ``evalkit`` command; user errors print one line and exit 2, with no traceback."""

from __future__ import annotations

import sys

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


def _mount() -> None:
    from evalkit.cli import run, runs, show

    app.command("run")(run.run)
    app.command("runs")(runs.runs)
    app.command("show")(show.show)
    for module, attr in (
        ("evalkit.cli.cache", "app"),
    ):
        try:
            mod = __import__(module, fromlist=[attr])
        except ImportError:
            continue
        app.add_typer(getattr(mod, attr), name=module.rsplit(".", 1)[1])
    for module in ("evalkit.cli.tracing_cmds", "evalkit.cli.mlflow_cmds", "evalkit.cli.report_cmd", "evalkit.cli.batch_cmds"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ImportError:
            continue
        mod.register(app)


def main() -> None:
    _mount()
    try:
        rc = app(standalone_mode=False)
    except UserError as exc:
        sys.stderr.write(f"error: {exc.format()}\n")
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
