"""Scorer registry: names to factories, with arguments validated like a function call.

A *scorer factory* takes keyword arguments and returns a *score function*
``(case, output[, run]) -> Score | list[Score] | bool | float`` (sync or async). Suites name a
factory and its arguments; :func:`build_scorer` validates them (pydantic, no extra keys) and
returns a :class:`BoundScorer` that always produces a list of :class:`Score` and never raises.

User code registers scorers with one decorator family:

- :func:`scorer` for a plain score function (``- polite`` in a suite);
- :func:`scorer_factory` for a factory whose keyword arguments come from the suite
  (``- length_between: {min: 1, max: 10}``).

Both work bare or with ``name=``; :func:`register` (``@register("name")``) is the form the
built-ins use. A suite may also name ``module:function`` directly: the score is named after the
function (or its ``name=``), never ``module:function``.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import importlib
import inspect
import math
import numbers
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ConfigDict, Field, ValidationError, create_model

from evalkit.errors import UserError, describe_exception
from evalkit.schema import Case, Score, ToolCall, Usage
from evalkit.scorers._util import NotScored


class ScorerUnavailable(Exception):
    """An ``optional: true`` scorer that cannot run here (e.g. no credentials for its model)."""


@dataclass
class RunInfo:
    """What a scorer may know about how the case ran, besides its output."""

    latency_ms: float = 0.0
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    trace_id: str | None = None
    spans_source: Callable[[], list[dict[str, Any]]] | None = None
    error: str | None = None
    _spans: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def spans(self) -> list[dict[str, Any]]:
        """The case's finished spans (built on first use: most scorers never look)."""
        if self._spans is None:
            self._spans = self.spans_source() if self.spans_source is not None else []
        return self._spans


ScoreValue = Score | list[Score] | bool | float | int | None
ScoreFn = Callable[[Case, Any, RunInfo], ScoreValue | Awaitable[ScoreValue]]
Factory = Callable[..., ScoreFn]
F = TypeVar("F", bound=Callable[..., Any])

_REGISTRY: dict[str, Factory] = {}
_BUILTIN: set[str] = set()  # names registered by evalkit itself: user scorers may not take them
_RESERVED = {"judge"}  # ``- judge: {judge: path.yaml}``
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_SUITE_KEYS = ("as", "optional", "threshold")  # understood for every scorer, besides its own arguments


def _adapt(fn: Callable[..., Any]) -> ScoreFn:
    """Let plain scorers take ``(case, output)`` or ``(case, output, run)``."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        takes_run = len(params) >= 3 or any(p.kind is p.VAR_POSITIONAL for p in inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        takes_run = True
    if takes_run:
        return fn
    if inspect.iscoroutinefunction(fn):

        async def two_async(case: Case, output: Any, run: RunInfo) -> Any:
            return await fn(case, output)

        return two_async
    return lambda case, output, run: fn(case, output)


def _mark(obj: Any, **attrs: Any) -> None:
    for key, value in attrs.items():
        with contextlib.suppress(AttributeError, TypeError):  # bound methods, builtins: the registry knows the name
            setattr(obj, key, value)


def register(name: str) -> Callable[[F], F]:
    """Register a scorer factory under ``name`` (``@register("exact_match")``, as the built-ins do)."""

    def deco(factory: F) -> F:
        if getattr(factory, "__module__", "").startswith("evalkit."):
            _BUILTIN.add(name)
        _REGISTRY[name] = factory
        _mark(factory, __evalkit_factory__=True, __evalkit_scorer_name__=name)
        return factory

    return deco


def _claim(name: str | None, obj: Any, decorator: str) -> str:
    """The registry name for user scorer ``obj``: checked, and not one of evalkit's own."""
    if not callable(obj):
        raise TypeError(f"@evalkit.{decorator} decorates a function, not {type(obj).__name__}")
    reg = name if name is not None else getattr(obj, "__name__", None)
    if not isinstance(reg, str) or not _NAME.match(reg) or reg == "<lambda>":
        raise ValueError(f"@evalkit.{decorator}: give a scorer name (name=...) made of letters, digits and _ (got {reg!r})")
    _load_builtins()
    if reg in _BUILTIN or reg in _RESERVED:
        raise ValueError(f"@evalkit.{decorator}: '{reg}' is a built-in scorer name; choose another with name=...")
    return reg


def scorer(fn: Callable[..., Any] | str | None = None, *, name: str | None = None) -> Any:
    """Decorate a plain scoring function ``(case, output[, run]) -> bool | float | Score``.

    ``@evalkit.scorer`` or ``@evalkit.scorer(name="polite")``. The function is registered under
    its name (or ``name``) so suites can use it (``- polite``), and is returned unchanged so it can
    also be passed directly to :func:`evalkit.evaluate`. Raise :class:`evalkit.NotScored` when the
    case lacks what the scorer needs.
    """
    if isinstance(fn, str):  # @scorer("polite")
        fn, name = None, fn

    def deco(f: F) -> F:
        reg = _claim(name, f, "scorer")
        adapted = _adapt(f)

        def factory() -> ScoreFn:
            return adapted

        _mark(factory, __evalkit_factory__=True, __evalkit_scorer_name__=reg)
        _REGISTRY[reg] = factory
        _mark(f, __evalkit_scorer_name__=reg)
        return f

    return deco(fn) if fn is not None else deco


def scorer_factory(fn: Callable[..., Any] | str | None = None, *, name: str | None = None) -> Any:
    """Decorate a scorer factory: its keyword arguments come from the suite, validated like the built-ins'.

    ``@evalkit.scorer_factory`` or ``@evalkit.scorer_factory(name="between")``; the factory
    returns a score function ``(case, output[, run])``. A suite then writes
    ``- length_between: {min: 1, max: 10}``; the parameters' annotations and defaults are the
    schema (unknown or mistyped arguments are a one-line error naming the suite's line).
    """
    if isinstance(fn, str):  # @scorer_factory("between"), like @register
        fn, name = None, fn

    def deco(f: F) -> F:
        reg = _claim(name, f, "scorer_factory")
        _REGISTRY[reg] = f
        _mark(f, __evalkit_factory__=True, __evalkit_scorer_name__=reg)
        return f

    return deco(fn) if fn is not None else deco


def registered() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    from evalkit.scorers import budget, spans_scorers, structured, text, trajectory  # noqa: F401


@dataclass
class _Resolved:
    factory: Factory
    score_name: str  # what the scores are called unless the suite says ``as:``
    judge: str | None = None  # set when the entry names a judge


def _import_attr(spec: str) -> Any:
    mod, _, attr = spec.partition(":")
    if not mod or not attr:
        raise UserError(f"scorer '{spec}' must look like 'package.module:function'")
    try:
        obj: Any = importlib.import_module(mod)
    except ModuleNotFoundError as exc:
        raise UserError(f"cannot import scorer module '{mod}': {exc}") from None
    except Exception as exc:  # a broken user module: SyntaxError, an error at import time
        raise UserError(f"cannot import scorer module '{mod}': {describe_exception(exc)}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(f"cannot import scorer '{spec}': module '{mod}' has no attribute '{attr}'")
        obj = getattr(obj, part)
    return obj


def _resolve(name: str) -> _Resolved:
    """The factory a suite entry names: a registered scorer, ``module:function`` or a judge."""
    _load_builtins()
    if name in _REGISTRY:
        return _Resolved(_REGISTRY[name], name)
    if ":" in name:
        obj = _import_attr(name)
        if not callable(obj):
            raise UserError(f"scorer '{name}' is not callable")
        default = name.rpartition(":")[2].rpartition(".")[2]
        score_name = str(getattr(obj, "__evalkit_scorer_name__", None) or default)
        if getattr(obj, "__evalkit_factory__", False):
            return _Resolved(obj, score_name)
        adapted = _adapt(obj)
        return _Resolved(lambda: adapted, score_name)
    from evalkit.judging.scorer import judge_scorer, lookup_judge

    if name == "judge":  # `- judge: {judge: path/to/judge.yaml, ...}`
        return _Resolved(judge_scorer, name)
    if lookup_judge(name) is not None:
        return _Resolved(judge_scorer, name, judge=name)
    from evalkit.judging import builtin_names

    names = registered()
    close = difflib.get_close_matches(name, [*names, *builtin_names()], n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise UserError(f"unknown scorer '{name}' ({hint}known: {', '.join(names)}; or a judge name, module:function, "
                    "or an @evalkit.scorer of a module listed under the suite's 'imports:')")


def _validate_args(factory: Factory, name: str, args: dict[str, Any]) -> dict[str, Any]:
    sig = inspect.signature(factory)
    fields: dict[str, Any] = {}
    var_kw = False
    hints: dict[str, Any] | None = None
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
            continue
        if p.kind in (p.VAR_POSITIONAL,):
            continue
        ann = p.annotation if p.annotation is not inspect.Parameter.empty else Any
        if isinstance(ann, str):
            if hints is None:
                try:
                    hints = inspect.get_annotations(factory, eval_str=True)
                except Exception:  # an annotation that does not evaluate here: accept any value
                    hints = {}
            ann = hints.get(p.name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        # aliased so argument names like ``schema`` cannot clash with BaseModel attributes
        fields[f"arg_{p.name}"] = (ann, Field(default, alias=p.name))
    model = create_model(
        f"{name}_args", __config__=ConfigDict(extra="allow" if var_kw else "forbid", arbitrary_types_allowed=True), **fields
    )
    try:
        return model.model_validate(args).model_dump(by_alias=True)
    except ValidationError as exc:
        errors = exc.errors()
        # a misspelt argument also leaves a required one missing: report the misspelling
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            known = [p.name for p in sig.parameters.values() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
            close = difflib.get_close_matches(str(err["loc"][0]), [*known, *_SUITE_KEYS], n=1)
            if close:
                msg = f"is not a known argument (did you mean '{close[0]}'?)"
            else:
                msg = f"is not a known argument (known: {', '.join(known) or 'none'})"
        else:
            msg = err["msg"].lower()
        raise UserError(f"scorer '{name}': argument '{loc}' {msg}", field=None) from None


@dataclass
class BoundScorer:
    """A configured scorer: call it to get a list of Scores; exceptions become score errors."""

    name: str
    fn: ScoreFn
    config: dict[str, Any]
    threshold: float | None = None

    @property
    def is_async(self) -> bool:
        """Whether scoring may wait on I/O (then scorers of a case run concurrently)."""
        return inspect.iscoroutinefunction(self.fn)

    async def __call__(self, case: Case, output: Any, run: RunInfo) -> list[Score]:
        """Score one case. Whatever the score function raises or returns becomes data: a list of Scores."""
        try:
            res = self.fn(case, output, run)
            if inspect.isawaitable(res):
                res = await res
            return self._normalise(res)
        except asyncio.CancelledError:
            raise
        except NotScored as exc:
            why = describe_exception(exc).removeprefix(f"{type(exc).__name__}: ")
            return [Score.not_applicable(self.name, why if why != type(exc).__name__ else "not applicable to this case")]
        except BaseException as exc:  # SystemExit, KeyboardInterrupt from user code are this case's error too
            return [Score.failure(self.name, "scorer_exception", describe_exception(exc))]

    def _normalise(self, res: ScoreValue) -> list[Score]:
        if res is None:
            return [Score.failure(self.name, "scorer_exception", "scorer returned None")]
        if isinstance(res, Score):
            res = [res]
        if isinstance(res, list) and res and all(isinstance(s, Score) for s in res):
            out = []
            for s in res:
                if not s.name or s.name == "_" or len(res) == 1:
                    s = s.model_copy(update={"name": self.name})
                if isinstance(s.value, float) and not math.isfinite(s.value):
                    s = Score.failure(s.name, "scorer_exception", f"scorer returned a Score with value {s.value}: not a finite number")
                if s.passed is None and s.value is not None and self.threshold is not None:
                    s = s.model_copy(update={"passed": float(s.value) >= self.threshold})
                out.append(s)
            return out
        if isinstance(res, (bool, *numpy_bool())):
            return [Score(name=self.name, value=bool(res), passed=bool(res))]
        if isinstance(res, numbers.Real):  # numpy numbers too
            value = float(res)  # OverflowError for an int too big for a float: the scorer's error
            if not math.isfinite(value):
                return [Score.failure(self.name, "scorer_exception", f"scorer returned {value}, not a finite number")]
            passed = None if self.threshold is None else value >= self.threshold
            return [Score(name=self.name, value=value, passed=passed)]
        return [Score.failure(self.name, "scorer_exception", f"scorer returned {_type_name(res)}; expected bool, a number, "
                                                             "a Score or a list of Scores")]


def numpy_bool() -> tuple[type, ...]:
    """numpy's bool type when numpy is already loaded (a scorer returning ``np.bool_`` is a verdict)."""
    np = sys.modules.get("numpy")
    kind = getattr(np, "bool_", None)  # numpy may be half-imported by another thread (no bool_ yet)
    return (kind,) if isinstance(kind, type) else ()


def _type_name(value: Any) -> str:
    if isinstance(value, list):
        return "an empty list" if not value else f"a list of {type(value[0]).__name__}"
    return type(value).__name__


def build_scorer(spec: str | dict[str, Any] | Callable[..., Any] | BoundScorer) -> BoundScorer:
    """Build a scorer from a suite entry (``name`` or ``{name: {args}}``) or a callable.

    A callable is a score function (named by its ``@scorer`` name or its function name), or a
    factory decorated with :func:`scorer_factory` / :func:`register` (built with its defaults).
    """
    if isinstance(spec, BoundScorer):
        return spec
    if callable(spec):
        nm = str(getattr(spec, "__evalkit_scorer_name__", None) or getattr(spec, "__name__", "scorer"))
        label = f"{getattr(spec, '__module__', '?')}:{getattr(spec, '__qualname__', nm)}"
        if getattr(spec, "__evalkit_factory__", False):
            return _bind(_Resolved(spec, nm), nm, {}, config={"callable": label})
        return BoundScorer(name=nm, fn=_adapt(spec), config={"callable": label})
    if isinstance(spec, str):
        name, args = spec, {}
    elif isinstance(spec, dict) and len(spec) == 1:
        name, raw = next(iter(spec.items()))
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise UserError(f"scorer '{name}': arguments must be a mapping, got {type(raw).__name__}")
        args = dict(raw)
    else:
        raise UserError("a scorer entry must be a name or a mapping {name: {arguments}}")
    if not isinstance(name, str) or not name:
        raise UserError("a scorer's name must be a non-empty string")
    return _bind(_resolve(name), name, args, config={"scorer": name})


def _bind(res: _Resolved, name: str, args: dict[str, Any], *, config: dict[str, Any]) -> BoundScorer:
    """Validate ``args`` against the factory, call it and wrap the score function."""
    alias = args.pop("as", None)
    optional = bool(args.pop("optional", False))
    factory = res.factory
    if res.judge is not None:
        args = {"judge": res.judge, **args}
    # Factories that take ``threshold`` decide pass/fail themselves; for others it is generic.
    own_threshold = "threshold" in inspect.signature(factory).parameters
    threshold = args.get("threshold") if own_threshold else args.pop("threshold", None)
    valid = _validate_args(factory, name, args)
    try:
        fn = factory(**valid)
    except UserError:
        raise
    except (ValueError, TypeError) as exc:
        raise UserError(f"scorer '{name}': {exc}") from None
    except Exception as exc:  # a user factory failing on its arguments is still the suite's problem
        raise UserError(f"scorer '{name}': {describe_exception(exc)}") from None
    if not callable(fn):
        raise UserError(f"scorer '{name}': the factory returned {type(fn).__name__}, not a score function")
    score_name = str(alias or getattr(fn, "judge_name", None) or res.score_name)
    model = getattr(fn, "model", None)
    if isinstance(model, str):  # a provider model without litellm installed: said now, never per case
        from evalkit.llm.availability import missing_litellm_hint, scorer_role

        needs = missing_litellm_hint(model, scorer_role(fn, score_name))
        if needs is not None:
            if optional:
                raise ScorerUnavailable(f"{score_name}: {needs}; skipped")
            raise UserError(needs)
    if optional and isinstance(model, str):
        from evalkit.llm.credentials import has_credentials

        if not has_credentials(model):
            raise ScorerUnavailable(f"{score_name}: no credentials for {model} (set its API key, or "
                                    f"EVALKIT_JUDGE_MODEL / EVALKIT_API_BASE); skipped")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)):
        raise UserError(f"scorer '{name}': argument 'threshold' must be a number")
    return BoundScorer(name=score_name, fn=_adapt(fn), config={**config, **valid}, threshold=threshold)
