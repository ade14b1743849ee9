"""Load judge files (YAML) and find built-in judges, installed or from the source tree."""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from evalkit.errors import UserError
from evalkit.judging.model import JudgeDef

_REPO_JUDGES = Path(__file__).resolve().parents[2] / "judges"


def builtin_dir() -> Path | None:
    """Where the built-in judges live: package data ``evalkit/builtin_judges`` or the repo's ``judges/``."""
    try:
        res = importlib.resources.files("evalkit") / "builtin_judges"
        if res.is_dir():
            return Path(str(res))
    except (ModuleNotFoundError, TypeError, FileNotFoundError):
        pass
    return _REPO_JUDGES if _REPO_JUDGES.is_dir() else None


def _line_of(text: str, key: str) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(f"{key}:"):
            return i
    return None


def load_judge_file(path: str | Path) -> JudgeDef:
    """Parse and validate one judge file; problems raise :class:`UserError` naming the file and field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read judge file: {exc.strerror or exc}", file=p) from None
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}", file=p, line=(mark.line + 1) if mark else None
        ) from None
    if not isinstance(data, dict):
        raise UserError(
            "a judge file must be a mapping (name, version, description, output, prompt, ...)", file=p
        )
    try:
        judge = JudgeDef.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = "is not a known field" if err["type"] == "extra_forbidden" else err["msg"]
        if err["type"] == "missing":
            msg = "is required"
        field = loc or None
        raise UserError(
            f"judge {msg}" if field else f"judge: {msg}",
            file=p,
            field=field,
            line=_line_of(text, loc.split(".")[0]) if loc else None,
        ) from None
    judge.source = str(p)
    return judge


@functools.cache
def _builtin_index() -> dict[str, Path]:
    d = builtin_dir()
    if d is None:
        return {}
    return {f.stem: f for f in sorted(d.glob("*.yaml"))}


def builtin_names() -> list[str]:
    """Names of the built-in judges."""
    return sorted(_builtin_index())


@functools.cache
def _load_cached(path: str, mtime: float) -> JudgeDef:
    return load_judge_file(path)


def find_judge(name_or_path: str, base_dir: Path | None = None) -> JudgeDef | None:
    """A built-in judge by name, a judge file by path (``.yaml``/``.yml``), or ``name@version``: the
    built-in when its version matches, else the judge file of that name and version in ``judges/``
    under ``base_dir`` or the current directory (where ``evalkit judges align`` writes aligned
    versions). None when none exists."""
    if name_or_path.endswith((".yaml", ".yml")):
        p = Path(name_or_path)
        if not p.is_absolute() and base_dir is not None and (base_dir / p).exists():
            p = base_dir / p
        if not p.exists():
            return None
        return _load_cached(str(p.resolve()), p.stat().st_mtime)
    name, at, version = name_or_path.partition("@")
    path = _builtin_index().get(name)
    if not at:
        return None if path is None else _load_cached(str(path), path.stat().st_mtime)
    if path is not None:
        builtin = _load_cached(str(path), path.stat().st_mtime)
        if builtin.version == version:
            return builtin
    return _local_version(name, version, base_dir)


def local_judge_files(base_dir: Path | None = None) -> list[Path]:
    """The judge files in ``judges/`` under ``base_dir`` and the current directory (not the built-ins)."""
    builtin = builtin_dir()
    seen: dict[Path, None] = {}
    for root in dict.fromkeys([*([base_dir] if base_dir is not None else []), Path.cwd()]):
        d = (root / "judges").resolve()
        if not d.is_dir() or (builtin is not None and d == builtin.resolve()):
            continue
        for f in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            seen.setdefault(f, None)
    return list(seen)


def _local_version(name: str, version: str, base_dir: Path | None) -> JudgeDef | None:
    for f in local_judge_files(base_dir):
        try:
            jd = _load_cached(str(f), f.stat().st_mtime)
        except (UserError, OSError):
            continue  # a broken file elsewhere in judges/ does not hide the one asked for
        if jd.name == name and jd.version == version:
            return jd
    return None
