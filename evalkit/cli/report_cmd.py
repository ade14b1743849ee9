"""``evalkit report RUN_ID -o report.html`` and ``evalkit report --compare RUN_A RUN_B -o diff.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evalkit.cli.common import StoreOpt, console
from evalkit.errors import UserError


def report(
    run_ids: Annotated[list[str], typer.Argument(help="A run id (or unique prefix); with --compare, the baseline "
                                                      "run A then the candidate run B.", show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="HTML file to write "
                                                "[default: report-RUN.html or diff-A-B.html].")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Diff two runs: metric deltas with intervals and "
                                                            "significance, and the cases that flipped.")] = False,
    store: StoreOpt = None,
) -> None:
    """Write a self-contained HTML report of a run (or a diff of two runs): no server, no network."""
    from evalkit.report import write_compare, write_report
    from evalkit.store.db import open_store

    want = 2 if compare else 1
    if len(run_ids) != want:
        raise UserError(
            "--compare takes two run ids: the baseline A and the candidate B" if compare
            else f"give one run id (got {len(run_ids)}); to diff two runs use --compare RUN_A RUN_B"
        )
    with open_store(store, read_only=True) as st:
        runs = [st.get_run(r)["run_id"] for r in run_ids]
        if compare:
            path = write_compare(st, runs[0], runs[1], output or Path(f"diff-{runs[0]}-{runs[1]}.html"))
        else:
            path = write_report(st, runs[0], output or Path(f"report-{runs[0]}.html"))
    size = path.stat().st_size
    console().print(f"wrote {path} ({size / 1024:.0f} KiB)")


def register(app: typer.Typer) -> None:
    """Mount ``report`` on the root command."""
    app.command("report")(report)
