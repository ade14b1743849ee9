"""``evalkit scorers`` and ``evalkit judges``: what a suite can name, with arguments and versions."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from evalkit.cli.align_cmd import align
from evalkit.cli.common import JsonOpt, console, print_json

_SKIP = {"self", "args", "kwargs", "params"}


def _arguments(factory: Any) -> list[dict[str, Any]]:
    out = []
    for p in inspect.signature(factory).parameters.values():
        if p.name in _SKIP or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        arg: dict[str, Any] = {"name": p.name, "required": p.default is inspect.Parameter.empty}
        if not arg["required"]:
            arg["default"] = p.default
        if p.annotation is not inspect.Parameter.empty:
            arg["type"] = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", str(p.annotation))
        out.append(arg)
    return out


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _signature(args: list[dict[str, Any]]) -> str:
    return ", ".join(a["name"] if a["required"] else f"{a['name']}={a['default']!r}" for a in args)


def scorers(json_out: JsonOpt = False) -> None:
    """List the deterministic scorers a suite can name under `scorers:`, with their arguments.

    Every scorer also takes `as:` (its score name), `optional:` and `threshold:`. LLM judges are
    listed by `evalkit judges`.
    """
    from evalkit import __version__
    from evalkit.scorers.registry import _REGISTRY, registered

    rows: list[dict[str, Any]] = [{"name": n, "arguments": _arguments(_REGISTRY[n]), "description": _first_line(_REGISTRY[n]),
             "version": f"evalkit {__version__}"} for n in registered()]
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    from evalkit.safe_text import terminal as escape

    t = Table(caption=f"{len(rows)} scorers (evalkit {__version__}); every scorer also takes as:, optional:, threshold:",
              caption_justify="left")
    for col in ("scorer", "arguments", "what it checks"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["name"], escape(_signature(r["arguments"])), escape(r["description"]))
    console().print(t)


class _JudgesGroup(TyperGroup):
    """``evalkit judges``: with no subcommand it lists; a first word that is no subcommand (``evalkit judges
    correctness``) is the judge to show, as before ``judges`` had subcommands."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-")), None)
        if first is not None and first not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


judges_app = typer.Typer(cls=_JudgesGroup, invoke_without_command=True, no_args_is_help=False,
                         subcommand_metavar="[NAME | align JUDGE ...]",
                         add_completion=False, rich_markup_mode=None)


@judges_app.callback()
def judges(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List the built-in LLM judges with their versions, verdict shape, threshold and default model.

    `evalkit judges NAME` shows one judge (a built-in name, name@version or a judge .yaml path) in full;
    `evalkit judges align JUDGE ...` learns a version that agrees better with human labels.
    """
    if ctx.invoked_subcommand is None:
        _list_judges(json_out)


judges_app.command("align")(align)


@judges_app.command("show", hidden=True)
def show_judge(
    name: Annotated[str, typer.Argument(help="A built-in name, name@version or a judge .yaml path.",
                                        show_default=False)],
    json_out: JsonOpt = False,
) -> None:
    """Show one judge in full: its fields, prompt SHA-256, source file and rubric."""
    _show_judge(name, json_out)


def _show_judge(name: str, json_out: bool) -> None:
    from evalkit.errors import UserError
    from evalkit.judging.loader import builtin_names, find_judge

    jd = find_judge(name)
    if jd is None:
        raise UserError(f"unknown judge '{name}' (built-in judges: {', '.join(builtin_names())})")
    data = {**jd.model_dump(mode="json"), "ref": jd.ref, "prompt_sha256": jd.prompt_sha256, "source": jd.source}
    if json_out:
        print_json(data)
    else:
        from evalkit.safe_text import terminal as escape
        from evalkit.safe_text import visible

        con = console()
        con.print(f"[bold]{escape(jd.ref)}[/bold] — {escape(jd.description)}")
        for key in ("output", "threshold", "model", "requires", "params", "prompt_sha256", "source"):
            con.print(f"  {key}: {escape(str(data.get(key)))}")
        con.print(visible(jd.prompt), markup=False, highlight=False)


def _list_judges(json_out: bool) -> None:
    from evalkit.judging.loader import builtin_names, find_judge

    rows: list[dict[str, Any]] = []
    for n in builtin_names():
        jd = find_judge(n)
        if jd is not None:
            rows.append({"name": jd.name, "version": jd.version, "output": jd.output, "threshold": jd.threshold,
                         "model": jd.model, "requires": jd.requires, "description": jd.description})
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    from evalkit.safe_text import terminal as escape

    t = Table(caption="use in a suite: `- NAME` or `- NAME: {model: ..., samples: 3}`; "
                      "`evalkit judges NAME` shows the rubric", caption_justify="left")
    for col in ("judge", "version", "verdict", "threshold", "reads", "default model", "what it judges"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["name"], r["version"], r["output"], "" if r["threshold"] is None else f"{r['threshold']:g}",
                  ", ".join(r["requires"]), escape(r["model"] or ""), escape(r["description"]))
    console().print(t)


def register(app: typer.Typer) -> None:
    """Mount the catalogue commands on the root app."""
    app.command("scorers")(scorers)
    app.add_typer(judges_app, name="judges")
