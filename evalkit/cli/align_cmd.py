"""``evalkit judges align``: learn a judge version that agrees better with people, keep it only if it does."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, fmt, print_json
from evalkit.errors import UserError

if TYPE_CHECKING:
    from evalkit.calibration.align import AlignResult
    from evalkit.calibration.calibration_set import CalibrationItem
    from evalkit.judging.model import JudgeDef
    from evalkit.store.db import Store


def align(
    judge: Annotated[str, typer.Argument(help="A built-in judge name, name@version (a file in ./judges) or a judge "
                                         ".yaml file.", show_default=False)],
    set_file: Annotated[Path | None, typer.Option("--set", help="A calibration set (JSONL: items with output and "
                                                  "label).", show_default=False)] = None,
    builtin: Annotated[bool, typer.Option("--builtin", help="The judge's shipped calibration set "
                                          "(judges/calibration/JUDGE.jsonl).")] = False,
    labels: Annotated[Path | None, typer.Option("--labels", help="A labels file (JSONL or CSV) for cases of the run "
                                                "given by --run; the items are rebuilt from the run's case results.",
                                                show_default=False)] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="The stored run the labels are about (alone: the "
                                               "labels already in the store for it).", show_default=False)] = None,
    model: Annotated[str | None, typer.Option(help="Judge model [default: $EVALKIT_JUDGE_MODEL, else the judge "
                                              "file's]; the new file names it.", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Where to write the new version [default: "
                                             "judges/NAME-VERSION.yaml here]; never over an existing file.",
                                             show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the training / held-out split and of the example order.")] = 0,
    holdout: Annotated[float, typer.Option(help="Share of each human level held out to test the new version.",
                                           min=0.05, max=0.95)] = 0.4,
    max_examples: Annotated[int, typer.Option(help="Most few-shot examples in the prompt (0: rubric notes only).",
                                              min=0)] = 6,
    concurrency: Annotated[int | None, typer.Option(help="Judge calls in flight.", min=1)] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Align a judge with human labels: split the labelled items (seeded, stratified by label) into training
    and held-out parts, score the current version on both, build candidate versions from its training
    disagreements only (few-shot examples from human reviewers, calibration notes from the counts, or both),
    pick the best on the training part and score it on the held-out part.

    The new version (same name, version VERSION-aligned.N) is written only if its held-out agreement
    (weighted kappa on 1-5 scales, kappa on yes/no) is strictly higher than the current version's; otherwise
    exit 1 and nothing is written. The built-in name keeps meaning the old version; use the new one by its
    path, or as NAME@VERSION from the folder holding judges/. Every scoring is a run in the store.
    """
    from evalkit.calibration.align import align_judge
    from evalkit.cli.calibrate_cmd import _judge, _store

    jd = _judge(judge)
    sources = [s for s in (builtin, set_file is not None, labels is not None or run_id is not None) if s]
    if len(sources) != 1:
        raise UserError("give one of --set FILE, --builtin or --labels FILE --run RUN_ID")
    if labels is not None and run_id is None:
        raise UserError("--labels needs --run RUN_ID: the run whose case results the labels are about")
    say = None if json_out else (lambda msg: console(stderr=True).print(msg, markup=False, highlight=False))
    set_path: Path | None = None
    notes: list[str] = []
    if builtin or set_file is not None:
        set_path, items = _set_items(jd, set_file)
        source = f"set:{set_path.name}"
    st = _store(store)
    try:
        if set_path is None:
            assert run_id is not None
            items, source, notes = _run_items(st, jd, labels, run_id)
        result = align_judge(jd, items, store=st, set_path=set_path,
                             judge_spec=judge if judge.endswith((".yaml", ".yml")) else None, model=model, seed=seed,
                             holdout=holdout, max_examples=max_examples, out=out, source=source,
                             concurrency=concurrency, notes=notes, log=say)
    finally:
        st.close()
    if json_out:
        print_json(result.as_json())
    else:
        _show(result)
    if not result.improved:
        import sys

        from evalkit.safe_text import one_line

        sys.stderr.write(one_line(result.message) + "\n")
        raise typer.Exit(1)


def _set_items(jd: JudgeDef, set_file: Path | None) -> tuple[Path, list[CalibrationItem]]:
    from evalkit.calibration.calibration_set import builtin_calibration_set, load_calibration_set

    path = set_file or builtin_calibration_set(jd.name)
    if path is None:
        raise UserError(f"judge {jd.ref} has no built-in calibration set: give --set FILE or --labels FILE --run RUN_ID")
    return path, load_calibration_set(path, jd)


def _run_items(st: Store, jd: JudgeDef, labels: Path | None, run_id: str) -> tuple[list[CalibrationItem], str, list[str]]:
    from evalkit.calibration.align import items_from_run
    from evalkit.calibration.labels import load_labels
    from evalkit.calibration.records import stored_labels

    if labels is None:
        found = stored_labels(st, judge=jd.name, run_id=run_id)
        if not found:
            raise UserError(f"no labels for judge {jd.name} and run {run_id} in the store: give --labels FILE")
        source = f"store:{run_id}"
    else:
        found = [lb for lb in load_labels(labels, jd) if lb.judge_name == jd.name]
        if not found:
            raise UserError(f"{labels}: no labels for judge {jd.name}", file=labels)
        source = f"labels:{labels.name}@{run_id}"
    rebuilt = items_from_run(st, run_id, jd, found)
    notes = list(rebuilt.notes)
    if rebuilt.dataset is None and "context" in jd.placeholders:
        notes.append("the run's dataset file is gone or changed: items carry no context (case results do not store it)")
    return rebuilt.items, source, notes


def _show(r: AlignResult) -> None:
    from rich.table import Table

    from evalkit.safe_text import terminal

    out = console()
    out.print(f"[bold]{terminal(r.judge.ref)}[/bold] · {terminal(r.model)} — {len(r.train_ids)} training, "
              f"{len(r.heldout_ids)} held-out items ({terminal(r.source)}, seed {r.seed}); "
              f"{r.disagreements} training disagreement(s)")
    t = Table("version", f"training {r.metric}", f"held-out {r.metric}")
    t.add_row(f"current ({terminal(r.judge.version)})", fmt(r.before_train), fmt(r.before_heldout))
    for c in r.candidates:
        chosen = c is r.chosen
        t.add_row(f"{c.kind}{' (chosen)' if chosen else ''}", fmt(c.train_agreement),
                  fmt(r.after_heldout) if chosen else "")
    out.print(t)
    runs = [f"current {r.baseline_run_id}", *(f"{c.kind} {c.run_id}" for c in r.candidates)]
    if r.chosen is not None and r.heldout_run_id:
        runs.append(f"held-out {r.chosen.kind} {r.heldout_run_id}")
    out.print("runs: " + ", ".join(runs))
    for note in r.notes:
        out.print(terminal(note))
    if r.improved and r.new_judge is not None:
        out.print(f"held-out {r.metric}: {fmt(r.before_heldout)} before, {fmt(r.after_heldout)} after; wrote "
                  f"{terminal(r.new_judge.ref)} to {terminal(str(r.path))} (prompt sha256 {r.new_judge.prompt_sha256})")
