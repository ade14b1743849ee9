"""Suite files: name, dataset, target, scorers, thresholds and run defaults, validated up front.

Before the scorers are built, the suite's folder (and the working directory) are importable, the
modules listed under ``imports:`` are imported in order, and the target's module is imported (as
part of building the target), so ``@evalkit.scorer`` functions defined next to the agent or in a
module of the suite's folder can be named by their bare name.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalkit.datasets import DatasetSource, check_unique, describe_validation_errors
from evalkit.errors import UserError, UserErrors, describe_exception
from evalkit.schema import Case
from evalkit.scorers.registry import BoundScorer, ScorerUnavailable, build_scorer
from evalkit.targets import Target, build_target
from evalkit.targets.python_callable import importable
from evalkit.yaml_lines import line_of, load_yaml


class RunDefaults(BaseModel):
    """Run settings a suite may fix; the command line overrides them."""

    model_config = ConfigDict(extra="forbid")
    concurrency: int = Field(default=16, ge=1, le=10_000)
    timeout_s: float = Field(default=60.0, gt=0)
    repeats: int = Field(default=1, ge=1, le=1000)
    max_error_rate: float = Field(default=0.05, ge=0, le=1)
    workers: int | str = "auto"  # worker processes, or "auto" (checked by evalkit.pipeline.settings.RunSettings)
    min_judge_agreement: float | None = Field(default=None, ge=-1, le=1)  # judges must be calibrated this well


class AgentInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    version: str | None = None


class SuiteSpec(BaseModel):
    """The validated content of a suite file."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    description: str | None = None
    dataset: str | list[dict[str, Any]]
    target: str | dict[str, Any]
    imports: list[str] = Field(default_factory=list)
    scorers: list[str | dict[str, Any]] = Field(min_length=1)
    thresholds: list[Any] | dict[str, Any] = Field(default_factory=list)
    primary: str | None = Field(default=None, min_length=1)  # the metric a leaderboard ranks by
    defaults: RunDefaults = Field(default_factory=RunDefaults)
    repeats: int | None = Field(default=None, ge=1, le=1000)
    agent: AgentInfo = Field(default_factory=AgentInfo)
    tags: list[str] = Field(default_factory=list)


@dataclass
class Suite:
    """A loaded suite: everything needed to run, built and validated."""

    name: str
    cases: Sequence[Case]
    target: Target | None
    scorers: list[BoundScorer]
    thresholds: list[Any] = field(default_factory=list)
    primary: str | None = None  # the suite's headline metric (None: the first threshold's, see plan)
    defaults: RunDefaults = field(default_factory=RunDefaults)
    path: Path | None = None
    dataset_path: Path | None = None
    agent: AgentInfo = field(default_factory=AgentInfo)
    raw: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # optional scorers that cannot run here, with why
    lines: dict[Any, int] = field(default_factory=dict)  # YAML path -> line, for later error messages


def _inside(path: Path, roots: list[Path]) -> bool:
    rp = path.resolve()
    return any(rp.is_relative_to(r.resolve()) for r in roots)


_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _import_modules(names: list[str], file: Path, lines: dict[Any, int]) -> None:
    """Import the suite's ``imports:`` in order; a failure names the suite's line and the module."""
    for i, name in enumerate(names):
        line = line_of(lines, ("imports", i))
        as_module = name[:-3].replace("/", ".") if name.endswith(".py") else None
        hint = f" (write the module name: '{as_module}')" if as_module and _MODULE.match(as_module) else ""
        if not _MODULE.match(name):
            if ":" in name:
                hint = " (imports lists modules; name 'module:function' under scorers:)"
            raise UserError(f"imports: '{name}' is not a module name{hint}", file=file, line=line)
        try:
            importlib.import_module(name)
        except UserError as exc:
            raise UserError(f"cannot import '{name}': {exc.message}", file=file, line=line) from None
        except ModuleNotFoundError as exc:
            raise UserError(f"cannot import '{name}': {describe_exception(exc)}{hint}", file=file, line=line) from None
        except (Exception, SystemExit) as exc:  # a module failing as it is imported
            raise UserError(f"cannot import '{name}': {describe_exception(exc)}", file=file, line=line) from None


RANKABLE = ("mean", "pass_rate", "pass_at_k", "pass_all_k")  # scorer metrics a suite may rank by


def _primary(text: str, scorers: list[str], file: Path, line: int | None) -> str:
    """The suite's ``primary:`` metric, checked: a scorer's name (its mean) or ``<scorer>/<metric>``."""
    import difflib

    from evalkit.gate.thresholds import GLOBAL_METRICS

    metric = f"{text}/mean" if text in scorers else text
    known = [f"{s}/{m}" for s in scorers for m in RANKABLE] + list(GLOBAL_METRICS)
    if metric not in known:
        close = difflib.get_close_matches(metric, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; give a scorer name or one of {', '.join(known[:4])}, ..."
        raise UserError(f"primary '{text}' is not a metric of this suite{hint}", file=file, line=line, field="primary")
    return metric


def _all(problems: list[UserError]) -> UserError:
    """One error, or all of them when a file has several mistakes."""
    return problems[0] if len(problems) == 1 else UserErrors(problems)


def _judge_paths_from(base: Path, entry: Any) -> Any:
    """``entry`` with relative judge file paths (``- judges/x.yaml``, ``judge: {judge: judges/x.yaml}``)
    resolved from the suite's folder, as dataset paths are, when the file is there."""

    def resolve(ref: Any) -> Any:
        if isinstance(ref, str) and ref.endswith((".yaml", ".yml")) and not Path(ref).is_absolute():
            return str(base / ref) if (base / ref).is_file() else ref
        return ref

    if isinstance(entry, str):
        return resolve(entry)
    if isinstance(entry, dict) and len(entry) == 1:
        (name, args), = entry.items()
        if isinstance(args, dict) and "judge" in args:
            args = {**args, "judge": resolve(args["judge"])}
        return {resolve(name): args}
    return entry


def find_secret(data: Any, loc: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Where a suite's YAML holds a credential (a credential-named key with a value, a password in a
    URL, a bearer token, a key shape), else None. Inline case data is data and is not searched."""
    from evalkit.redact import has_credential, is_secret_name

    if isinstance(data, dict):
        for k, v in data.items():
            here = (*loc, k)
            if (loc == () and k == "dataset") or (isinstance(k, str) and k.endswith("_env")):
                continue  # case data is data; *_env values name environment variables
            if isinstance(k, str) and is_secret_name(k) and isinstance(v, str | int) and str(v).strip():
                return here
            found = find_secret(v, here)
            if found is not None:
                return found
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found = find_secret(v, (*loc, i))
            if found is not None:
                return found
    elif isinstance(data, str) and has_credential(data):
        return loc
    return None


def load_suite(path: Path | str, *, build_target_now: bool = True) -> Suite:
    """Load and fully validate a suite file (dataset, target, scorers) before anything runs.

    Order: the file, the dataset (it must have cases), the suite's ``imports:``, the target
    (importing its module) when ``build_target_now``, then the scorers, so that scorers defined in
    user code are registered by the time they are named.
    """
    p = Path(path)
    data, lines = load_yaml(p)
    if not isinstance(data, dict):
        raise UserError("a suite file must be a mapping with name, dataset, target and scorers", file=p, line=1)
    secret = find_secret(data)
    if secret is not None:
        raise UserError(f"'{'.'.join(map(str, secret))}' holds a secret; suites are shared and logged, so keys go "
                        "in environment variables (api_key_env: NAME for models, headers_env: {Header: NAME} "
                        "for HTTP targets)", file=p, line=line_of(lines, secret))
    try:
        spec = SuiteSpec.model_validate(data)
    except ValidationError as exc:
        raise _all([UserError(msg, file=p, line=line_of(lines, loc))
                    for msg, loc in describe_validation_errors(exc, known=SuiteSpec.model_fields)]) from None
    base = p.parent
    # dataset
    if isinstance(spec.dataset, str):
        ds = (base / spec.dataset) if not Path(spec.dataset).is_absolute() else Path(spec.dataset)
        if not _inside(ds, [base, Path.cwd()]):
            raise UserError(
                f"dataset '{spec.dataset}' is outside the workspace (suite folder or working directory)",
                file=p, line=line_of(lines, ("dataset",)), field="dataset",
            )
        if not ds.exists():
            raise UserError(f"dataset '{spec.dataset}' not found (resolved to {ds})", file=p, line=line_of(lines, ("dataset",)))
        cases: Sequence[Case] = DatasetSource(ds).validate()
        dataset_path: Path | None = ds
    else:
        from evalkit.datasets import _case

        pairs = ((line_of(lines, ("dataset", i)) or 0, _case(c, p, line_of(lines, ("dataset", i)), lines, ("dataset", i)))
                 for i, c in enumerate(spec.dataset))
        cases = list(check_unique(pairs, p))
        dataset_path = None
    if len(cases) == 0:
        what = f"dataset '{spec.dataset}'" if isinstance(spec.dataset, str) else "dataset (an inline list)"
        raise UserError(f"{what} has no cases", file=p, line=line_of(lines, ("dataset",)))
    # user code: the suite's folder, its imports, then the target's module (scorers may live there)
    importable(base)
    _import_modules(spec.imports, p, lines)
    target = None
    if build_target_now:
        try:
            target = build_target(spec.target, base)
        except UserError as exc:
            raise UserError(exc.message, file=p, line=line_of(lines, ("target",)), field=exc.field) from None
    # scorers
    scorers = []
    skipped: list[str] = []
    problems: list[UserError] = []
    for i, entry in enumerate(spec.scorers):
        try:
            scorers.append(build_scorer(_judge_paths_from(base, entry)))
        except ScorerUnavailable as why:
            skipped.append(str(why))
        except UserError as exc:
            problems.append(UserError(exc.message, file=p, line=line_of(lines, ("scorers", i))))
    if problems:
        raise _all(problems)
    if not scorers:
        raise UserError("no scorer can run: " + "; ".join(skipped), file=p, line=line_of(lines, ("scorers",)))
    names = [s.name for s in scorers]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise UserError(f"two scorers are named '{sorted(dupes)[0]}'; give one an 'as:' name", file=p,
                        line=line_of(lines, ("scorers",)))
    if target is not None and spec.agent.name:
        target.name = spec.agent.name
    if target is not None and spec.agent.version:
        target.version = spec.agent.version
    defaults = spec.defaults
    if spec.repeats is not None:
        defaults = defaults.model_copy(update={"repeats": spec.repeats})
    thresholds = spec.thresholds if isinstance(spec.thresholds, list) else [spec.thresholds]
    primary = _primary(spec.primary, names, p, line_of(lines, ("primary",))) if spec.primary else None
    return Suite(
        name=spec.name, cases=cases, target=target, scorers=scorers, thresholds=thresholds, primary=primary,
        defaults=defaults,
        path=p, dataset_path=dataset_path, agent=spec.agent, raw=data, tags=spec.tags, skipped=skipped, lines=lines,
    )
