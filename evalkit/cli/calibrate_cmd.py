"""``evalkit calibrate`` and ``evalkit labels``: measure judges against human labels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from evalkit.cli.common import JsonOpt, StoreOpt, console, fmt, fmt_ci, print_json
from evalkit.cli.mlflow_cmds import TeamOpt, TrackingOpt
from evalkit.errors import UserError

if TYPE_CHECKING:
    from evalkit.calibration.calibrate import Calibration
    from evalkit.calibration.labels import Label
    from evalkit.judging.model import JudgeDef
    from evalkit.store.db import Store

labels_app = typer.Typer(help="Human labels in the store: import a labels file, export them again.",
                         no_args_is_help=True)


def _judge(spec: str) -> JudgeDef:
    from evalkit.judging.loader import builtin_names, find_judge

    jd = find_judge(spec)
    if jd is None:
        raise UserError(f"unknown judge '{spec}' (built-in judges: {', '.join(builtin_names())}; or a judge .yaml path)")
    return jd


def _store(store: Path | None) -> Store:
    from evalkit.store.db import default_store_path, open_store

    return open_store(store or default_store_path())


def calibrate(
    judge: Annotated[str | None, typer.Argument(help="A built-in judge name or a judge .yaml file [with --builtin: "
                                                "default every built-in judge].", show_default=False)] = None,
    builtin: Annotated[bool, typer.Option("--builtin", help="Score the judge's shipped calibration set (judges/"
                                          "calibration/JUDGE.jsonl) with the judge model, then compare.")] = False,
    set_file: Annotated[Path | None, typer.Option("--set", help="Score this calibration set (the same format) "
                                                  "instead.", show_default=False)] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="A labels file (JSONL or CSV) for cases of a "
                                                "stored run; imported into the store.", show_default=False)] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="The run whose judge scores are compared [default "
                                               "with --labels: the newest run the judge scored labelled cases "
                                               "in].", show_default=False)] = None,
    model: Annotated[str | None, typer.Option(help="Judge model for --builtin/--set [default: "
                                              "$EVALKIT_JUDGE_MODEL, else the judge file's].", show_default=False)] = None,
    concurrency: Annotated[int | None, typer.Option(help="Judge calls in flight (--builtin/--set).", min=1)] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.", min=100)] = 2000,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log the calibration to MLflow.")] = False,
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    team: TeamOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Measure a judge@version × model against human labels: accuracy, Cohen's kappa (quadratic-weighted on
    1-5 scales), sensitivity and specificity at the pass threshold with bootstrap intervals, the confusion
    matrix, and Krippendorff's alpha among annotators when several label a case (the ceiling).

    The calibration is stored with the run it was measured on, logged to MLflow (experiment
    evalkit-judge-calibration), shown next to the judge's scores in summaries and the dashboard, and
    lets later runs report the pass rate corrected for the judge's error and gate on
    --min-judge-agreement.
    """
    import os

    if judge is None and not builtin:
        raise UserError("name a judge (or give --builtin to calibrate every built-in judge)")
    if sum((builtin, set_file is not None, labels is not None)) > 1:
        raise UserError("give one of --builtin, --set FILE or --labels FILE")
    if not (builtin or set_file or labels) and run_id is None:
        raise UserError("give --builtin, --set FILE, --labels FILE or --run RUN_ID (labels already in the store)")
    from evalkit.judging.loader import builtin_names

    done = []
    for name in [judge] if judge is not None else builtin_names():
        cal = _measure(_judge(name), name, builtin=builtin, set_file=set_file, labels=labels, run_id=run_id,
                       model=model, concurrency=concurrency, resamples=resamples, store=store, quiet=json_out)
        mlflow_id, note = None, None
        if not no_mlflow and os.environ.get("EVALKIT_NO_MLFLOW", "").strip().lower() not in ("1", "true", "yes", "on"):
            mlflow_id, note = _log(cal, store, tracking_uri, team)
        if json_out:
            done.append({**cal.as_json(), "mlflow_run_id": mlflow_id, "notes": [note] if note else []})
        else:
            _show(cal, mlflow_id, note)
    if json_out:
        print_json(done[0] if judge is not None else done)


def _measure(jd: JudgeDef, spec: str, *, builtin: bool, set_file: Path | None, labels: Path | None,
             run_id: str | None, model: str | None, concurrency: int | None, resamples: int, store: Path | None,
             quiet: bool) -> Calibration:
    """One judge's calibration from the chosen source, stored."""
    from evalkit.calibration.calibrate import calibrate as measure

    st = _store(store)
    try:
        if builtin or set_file is not None:
            path, run, found = _score_set(st, jd, spec, set_file, model, concurrency, quiet=quiet)
            source = f"set:{path.name}"
        else:
            found, source = _labels(st, jd, labels, run_id)
            run = run_id or _newest_run(st, jd, found)
        return measure(st, run, jd, found, source=source, resamples=resamples)
    finally:
        st.close()


def _log(cal: Calibration, store: Path | None, tracking_uri: str | None, team: str | None) -> tuple[str | None, str | None]:
    """Log to MLflow: (its run id, None), or (None, why not) — the calibration is in the store either way."""
    from evalkit.calibration.tracking import log_calibration
    from evalkit.tracking.errors import TrackingError

    try:
        return log_calibration(cal, store_path=None if store is None else Path(store), tracking_uri=tracking_uri,
                               team=team), None
    except TrackingError as exc:
        return None, f"MLflow logging failed: {exc}; the calibration is in the store"


def _score_set(st: Store, jd: JudgeDef, spec: str, set_file: Path | None, model: str | None, concurrency: int | None,
               *, quiet: bool) -> tuple[Path, str, list[Label]]:
    """Run the calibration set through the pipeline; returns the set's path, the run id and its labels."""
    from evalkit.calibration.calibration_set import as_labels, builtin_calibration_set, load_calibration_set
    from evalkit.calibration.records import save_labels
    from evalkit.calibration.replay import calibration_suite
    from evalkit.pipeline import resolve_settings, run_suite

    path = set_file
    if path is None:
        path = builtin_calibration_set(jd.name)
        if path is None:
            raise UserError(f"judge {jd.ref} has no built-in calibration set: give --set FILE or --labels FILE")
    items = load_calibration_set(path, jd)
    suite = calibration_suite(jd, items, model=model, set_path=path,
                              judge_spec=jd.source or spec)
    settings, explicit = resolve_settings({"mlflow": False, "concurrency": concurrency, "max_error_rate": 1.0},
                                          suite.defaults.model_dump())
    if not quiet:
        console(stderr=True).print(f"scoring {len(items)} calibration items of {path} with {jd.ref} …")
    finished = run_suite(suite, settings, explicit, door="api", store=st, handle_signals=True)
    if finished.summary.status != "completed":
        raise UserError(f"the calibration run {finished.run_id} did not complete ({finished.summary.status}); "
                        "nothing was measured")
    found = as_labels(items, jd)
    save_labels(st, found, source=str(path), run_id=finished.run_id)
    return path, finished.run_id, found


def _labels(st: Store, jd: JudgeDef, labels: Path | None, run_id: str | None) -> tuple[list[Label], str]:
    from evalkit.calibration.labels import load_labels
    from evalkit.calibration.records import save_labels, stored_labels

    if labels is None:
        found = stored_labels(st, judge=jd.name, run_id=run_id)
        if not found:
            raise UserError(f"no labels for judge {jd.name} in the store: give --labels FILE")
        return found, "store"
    found = [lb for lb in load_labels(labels, jd) if lb.judge_name == jd.name]
    if not found:
        raise UserError(f"{labels}: no labels for judge {jd.name}", file=labels)
    save_labels(st, found, source=str(labels), run_id=run_id)
    return found, f"labels:{labels.name}"


def _newest_run(st: Store, jd: JudgeDef, labels: list[Label]) -> str:
    """The newest run in which the judge scored at least one labelled case."""
    keys = sorted({lb.case_key for lb in labels})
    marks = ", ".join("?" for _ in keys)
    rows = st.execute(
        f"SELECT r.run_id FROM runs r WHERE EXISTS (SELECT 1 FROM scores s WHERE s.run_id = r.run_id AND s.name = ?"
        f" AND s.case_id IN ({marks})) ORDER BY r.started_at DESC LIMIT 1", [jd.name, *keys])
    if not rows:
        raise UserError(f"no stored run has scores from judge {jd.name} for the labelled cases: give --run RUN_ID")
    return str(rows[0][0])


def _show(cal: Calibration, mlflow_id: str | None, note: str | None) -> None:
    from rich.table import Table

    from evalkit.safe_text import terminal

    out = console()
    r = cal.as_json()
    out.print(f"[bold]{terminal(cal.judge.ref)}[/bold] · {terminal(cal.model)} — {r['items']} labelled items "
              f"(run {cal.run_id})")
    t = Table("statistic", "value", "95% interval")
    for key, label in (("agreement", f"agreement ({r['agreement_metric']})"), ("accuracy", "accuracy"),
                       ("kappa", "Cohen's kappa"), ("weighted_kappa", "weighted kappa (quadratic)"),
                       ("sensitivity", f"sensitivity (pass ≥ {fmt(r['threshold'])})" if r["threshold"] is not None
                        else "sensitivity"), ("specificity", "specificity")):
        ci = r.get(f"{key}_ci") if key != "agreement" else r.get(f"{r['agreement_metric']}_ci")
        if r.get(key) is not None:
            t.add_row(label, fmt(r[key]), fmt_ci(ci))
    ia = r.get("inter_annotator")
    if ia:
        t.add_row("annotators' alpha (ceiling)", fmt(ia["alpha"]), "")
    out.print(t)
    m = Table("human \\ judge", *[str(c) for c in r["categories"]])
    for name, row in zip(r["categories"], r["confusion_matrix"], strict=True):
        m.add_row(str(name), *[str(v) for v in row])
    out.print(m)
    skipped = [f"{r[k]} {why}" for k, why in (("unscored", "labelled case(s) without a verdict"),
                                               ("tied", "with tied annotators")) if r[k]]
    if skipped:
        out.print("left out: " + ", ".join(skipped))
    out.print(f"stored as calibration {cal.calibration_id}" + (f"; MLflow run {mlflow_id}" if mlflow_id else ""))
    if note:
        console(stderr=True).print(f"[yellow]{terminal(note)}[/yellow]")


@labels_app.command("import")
def labels_import(
    file: Annotated[Path | None, typer.Argument(help="A labels file (JSONL or CSV).", show_default=False)] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Tie labels that name no run to this run.")] = None,
    from_mlflow: Annotated[str | None, typer.Option("--from-mlflow", metavar="RUN_ID", help="Instead of a file: "
                                                    "the HUMAN assessments on this stored run's MLflow traces "
                                                    "named after its LLM-judge scorers.", show_default=False)] = None,
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Validate a labels file and store its labels (a label given again for the same case, judge, annotator,
    repeat and run replaces the stored one). With --from-mlflow RUN_ID, the labels are the reviewers'
    assessments of the run's traces in MLflow (annotator: the assessment's source id)."""
    from evalkit.calibration.labels import load_labels
    from evalkit.calibration.records import save_labels
    from evalkit.safe_text import terminal

    if (file is None) == (from_mlflow is None):
        raise UserError("give a labels FILE or --from-mlflow RUN_ID (one of the two)")
    if from_mlflow is not None and run_id is not None:
        raise UserError("--run ties a labels file's rows to a run; labels from MLflow name their run")
    skipped: list[str] = []
    if from_mlflow is not None:
        from evalkit.calibration.mlflow_labels import SOURCE, import_from_mlflow
        from evalkit.store.db import default_store_path

        st = _store(store)
        try:
            run, converted = import_from_mlflow(st, from_mlflow, store_path=store or default_store_path(),
                                                tracking_uri=tracking_uri)
            n = save_labels(st, converted.labels, source=f"{SOURCE}:{run}")
        finally:
            st.close()
        origin, skipped = f"MLflow (run {terminal(run)})", converted.skipped
    else:
        assert file is not None
        found = load_labels(file)  # validated whole before the store is opened
        st = _store(store)
        try:
            n = save_labels(st, found, source=str(file), run_id=run_id)
        finally:
            st.close()
        origin = str(file)
    if json_out:
        print_json({"imported": n, "file": str(file)} if from_mlflow is None else
                   {"imported": n, "from_mlflow": run, "skipped": skipped})
    else:
        console().print(f"{n} label(s) stored from {origin}")
        for line in skipped[:20]:
            console(stderr=True).print(f"[yellow]left out: {terminal(line)}[/yellow]")
        if len(skipped) > 20:
            console(stderr=True).print(f"[yellow]… and {len(skipped) - 20} more left out[/yellow]")


@labels_app.command("export")
def labels_export(
    out: Annotated[Path, typer.Argument(help="File to write: .jsonl or .csv.", show_default=False)],
    judge: Annotated[str | None, typer.Option(help="Only this judge's labels.")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run's labels (and those naming no run).")] = None,
    store: StoreOpt = None,
) -> None:
    """Write the stored labels as a labels file (what `evalkit labels import` and --labels read)."""
    from evalkit.calibration.labels import write_labels
    from evalkit.calibration.records import stored_labels
    from evalkit.store.db import default_store_path, open_store

    st = open_store(store or default_store_path(), read_only=True)
    try:
        found = stored_labels(st, judge=judge, run_id=run_id)
    finally:
        st.close()
    write_labels(out, found)
    console().print(f"{len(found)} label(s) written to {out}")


def register(app: Any) -> None:
    app.command("calibrate")(calibrate)
    app.add_typer(labels_app, name="labels")
