"""``evalkit doctor``: check the store file, and move a damaged one aside."""

from __future__ import annotations

from typing import Annotated

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, print_json
from evalkit.errors import EXIT_INFRA
from evalkit.safe_text import terminal_line


def doctor(
    store: StoreOpt = None,
    move_aside: Annotated[bool, typer.Option("--move-aside", help="Rename a damaged store to "
                                             "<name>.corrupt-<timestamp>; the next run creates a fresh one.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Check the store: does it open, schema version, rows per table, a writer's lock, and what to do.
    Exit 0 when it is healthy (or absent, or in use by a writer), 3 when it is damaged or unreadable."""
    from evalkit.store.db import default_store_path
    from evalkit.store.doctor import diagnose
    from evalkit.store.doctor import move_aside as move

    path = store or default_store_path()
    d = diagnose(path)
    moved = move(d) if move_aside else None
    if json_out:
        print_json({**d.as_dict(), "moved_to": str(moved) if moved else None})
    else:
        out = console()
        state = ("absent" if not d.exists else "in use by a writer" if d.locked else "healthy" if d.healthy
                 else "DAMAGED" if not d.opens or d.unreadable else "UNREADABLE")
        out.print(terminal_line(f"store: {d.label} ({state})"))
        if d.exists and not d.locked:
            out.print(f"opens: {'yes' if d.opens else 'no'} · schema version: {d.schema_version or '–'}"
                      + ("" if d.shared else f" · side files: {d.side_files}"))
        if d.problem:
            out.print(terminal_line(f"problem: {d.problem}"))
        for table, n in d.rows.items():
            out.print(f"  {table}: {n} rows")
        for table, why in d.unreadable.items():
            out.print("  " + terminal_line(f"{table}: unreadable ({why})"))
        if moved is not None:
            out.print(terminal_line(f"moved to {moved}; the next `evalkit run` creates a fresh store"))
        else:
            for line in d.advice:
                out.print(terminal_line(f"→ {line}"))
    if not d.healthy and moved is None:
        raise typer.Exit(EXIT_INFRA)
