"""Python callables as targets."""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalkit.context import AGENT_MS, current
from evalkit.errors import UserError, describe_exception
from evalkit.schema import Case
from evalkit.targets.base import Target
from evalkit.targets.threads import run_sync


def _wants_case(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "case" in params


def from_callable(fn: Callable[..., Any], name: str | None = None) -> Target:
    """Wrap a sync or async function. It receives the case input, or the Case if it has a ``case`` parameter."""
    wants_case = _wants_case(fn)
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
    label = name or f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', getattr(fn, '__name__', 'target'))}"

    def arg(case: Case) -> Any:
        if wants_case:
            return case
        return case.input if isinstance(case.input, str) else [m.model_dump(exclude_none=True) for m in case.input]

    if is_async:

        async def call(case: Case) -> Any:
            return await fn(arg(case))

    else:

        def timed(value: Any) -> Any:
            # the agent's own time, measured on its thread: waiting for a free thread is not latency
            t0 = time.perf_counter()
            try:
                return fn(value)
            finally:
                ctx = current()
                if ctx is not None:
                    ctx.extras[AGENT_MS] = (time.perf_counter() - t0) * 1000

        async def call(case: Case) -> Any:
            # daemon threads: a call that outlives its timeout is abandoned and cannot hang the exit
            return await run_sync(timed, arg(case), name=f"{label} (case {case.id})")

    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    version = getattr(fn, "__version__", None) or getattr(module, "__version__", None)
    return Target(name=label, call=call, version=version, kind="callable", config={"callable": label})


def importable(folder: Path) -> None:
    """Put ``folder`` and the working directory on ``sys.path`` (absolute: a relative entry would follow
    later changes of directory and go stale in the import caches)."""
    for entry in (folder.resolve(), Path.cwd().resolve()):
        if str(entry) not in sys.path:
            sys.path.insert(0, str(entry))


def from_import_path(path: str, base_dir: Path) -> Target:
    """Import ``package.module:function`` (the suite's directory and cwd are on the path)."""
    mod_name, sep, attr = path.partition(":")
    if not sep or not mod_name or not attr:
        raise UserError(f"target '{path}' must look like 'package.module:function'", field="target")
    importable(base_dir)
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise UserError(f"cannot import target module '{mod_name}': {exc}", field="target") from None
    except BaseException as exc:  # the agent's module fails as it loads (SyntaxError, SystemExit, ...)
        raise UserError(f"target module '{mod_name}' failed to import: {describe_exception(exc)}",
                        field="target") from None
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise UserError(f"module '{mod_name}' has no attribute '{attr}'", field="target")
    if not callable(obj):
        raise UserError(f"target '{path}' is not callable", field="target")
    return from_callable(obj, name=path)
