"""``evalkit cache``: inspect and clear the LLM response cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evalkit.cli.common import JsonOpt, print_json

app = typer.Typer(help="The LLM response cache (.evalkit/llm_cache.sqlite, or EVALKIT_CACHE).", no_args_is_help=True)

CacheOpt = Annotated[
    Path | None,
    typer.Option("--cache", envvar="EVALKIT_CACHE", help="Cache file [default: .evalkit/llm_cache.sqlite]."),
]


def _use(path: Path | None) -> None:
    if path is not None:
        import os

        os.environ["EVALKIT_CACHE"] = str(path)


@app.command("stats")
def stats(cache: CacheOpt = None, json_out: JsonOpt = False) -> None:
    """Show how many responses are cached, per model, and the file size."""
    from evalkit.llm import cache as llm_cache

    _use(cache)
    info = llm_cache.stats()
    if json_out:
        print_json(info)
        return
    typer.echo(f"cache: {info['path']}")
    typer.echo(f"entries: {info['entries']}  size: {info['bytes'] / 1024:.1f} KiB")
    for model, n in info["models"].items():
        typer.echo(f"  {model}: {n}")


@app.command("clear")
def clear(
    cache: CacheOpt = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model's responses.")] = None,
) -> None:
    """Delete cached responses (all, or one model's). The next run calls the providers again."""
    from evalkit.llm import cache as llm_cache

    _use(cache)
    n = llm_cache.clear(model)
    typer.echo(f"removed {n} cached response{'s' if n != 1 else ''} from {llm_cache.cache_path()}")
