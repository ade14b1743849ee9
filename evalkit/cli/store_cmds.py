"""``evalkit push`` / ``pull`` (a run and its traces between this machine's store and the team store) and
``evalkit compact`` (the team store's upkeep)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, print_json

ToOpt = Annotated[str, typer.Option("--to", help="The store to copy into: a team store URL (ducklake+postgresql://…) "
                                                 "or a DuckDB file.", show_default=False)]
FromOpt = Annotated[str, typer.Option("--from", help="The store to copy from: a team store URL or a DuckDB file.",
                                      show_default=False)]


def _copy(run_id: str, src_target: Path | str, dst_target: Path | str, verb: str, json_out: bool) -> None:
    from evalkit.store.db import open_store
    from evalkit.store.transfer import copy_run

    with open_store(src_target, read_only=True) as src, open_store(dst_target) as dst:
        if src.label == dst.label:
            raise typer.BadParameter("the two stores are the same one", param_hint="--to/--from")
        rid = src.get_run(run_id)["run_id"]
        counts = copy_run(src, dst, rid)
        src_label, dst_label = src.label, dst.label
    if json_out:
        print_json({"run_id": rid, "from": src_label, "to": dst_label, "rows": counts})
        return
    rows = ", ".join(f"{t.replace('_', ' ')} {n:,}" for t, n in counts.items())
    console().print(f"{verb} run {rid}: {rows}\n  from {src_label}\n  to   {dst_label}")


def push(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix) in the local store.")],
    to: ToOpt,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Copy a run with its cases, scores and traces into the team store (replacing an earlier copy)."""
    from evalkit.store.db import default_store_path

    _copy(run_id, store or default_store_path(), to, "pushed", json_out)


def pull(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix) in the team store.")],
    from_: FromOpt,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Copy a run with its cases, scores and traces from the team store into the local one."""
    from evalkit.store.db import default_store_path

    _copy(run_id, from_, store or default_store_path(), "pulled", json_out)


def compact(store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Merge a team store's small files and inlined rows into larger Parquet files and drop the files no
    snapshot needs any more (readers stay fast; safe while others write). A file store: a checkpoint."""
    from evalkit.store.db import default_store_path, open_store

    with open_store(store or default_store_path()) as st:
        done = st.compact()
        label = st.label
    if json_out:
        print_json({"store": label, **done})
    else:
        console().print(f"{label}: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in done.items()))


def register(app: typer.Typer) -> None:
    app.command("push")(push)
    app.command("pull")(pull)
    app.command("compact")(compact)
