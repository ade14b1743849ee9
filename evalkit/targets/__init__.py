"""Targets: how the agent under test is called.

A target spec in a suite is one of:
- ``"package.module:function"`` or ``{callable: "package.module:function"}``: a Python callable,
  sync (run in a worker thread) or async, taking the case input (or the whole Case when it
  declares a parameter named ``case``);
- ``{model: "provider/model", prompt: "... {input} ..."}``: a model and a prompt template
  (:mod:`evalkit.targets.model`);
- ``{url: "http://...", ...}``: an HTTP endpoint (:mod:`evalkit.targets.http`).

Each module exposes ``build(spec: dict, base_dir: Path) -> Target``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.errors import UserError
from evalkit.targets.base import Target
from evalkit.targets.python_callable import from_callable, from_import_path


def build_target(spec: Any, base_dir: Path | None = None) -> Target:
    """A :class:`Target` from a suite's ``target`` entry or a Python callable."""
    base = base_dir or Path.cwd()
    if isinstance(spec, Target):
        return spec
    if callable(spec):
        return from_callable(spec)
    if isinstance(spec, str):
        return from_import_path(spec, base)
    if isinstance(spec, dict):
        if "callable" in spec:
            extra = set(spec) - {"callable", "name", "version"}
            if extra:
                raise UserError(f"target: unknown key '{sorted(extra)[0]}' for a callable target", field="target")
            t = from_import_path(str(spec["callable"]), base)
            t.name = str(spec.get("name", t.name))
            t.version = spec.get("version", t.version)
            return t
        if "model" in spec:
            from evalkit.targets.model import build as build_model

            return build_model(spec, base)
        if "url" in spec:
            from evalkit.targets.http import build as build_http

            return build_http(spec, base)
    raise UserError(
        "target must be 'module:function', {callable: ...}, {model: ..., prompt: ...} or {url: ...}", field="target"
    )


__all__ = ["Target", "build_target"]
