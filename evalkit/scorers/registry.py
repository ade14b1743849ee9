"""Scorer registry: names to factories, with arguments validated like a function call.

A *scorer factory* takes keyword arguments and returns a *score function*
``async (case, output, run) -> Score | list[Score] | bool | float``. Suites name a factory and
its arguments; :func:`build_scorer` validates them (pydantic, no extra keys) and returns a
:class:`BoundScorer` that always produces a list of :class:`Score` and never raises.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, create_model

from evalkit.errors import UserError
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

_REGISTRY: dict[str, Factory] = {}


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


def register(name: str) -> Callable[[Factory], Factory]:
    """Register a scorer factory under ``name``."""

    def deco(factory: Factory) -> Factory:
        _REGISTRY[name] = factory
        return factory

    return deco


def scorer(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Decorate a plain scoring function ``(case, output[, run]) -> bool | float | Score``.

    The function is registered under its name (or ``name``) so suites can use it, and is
    returned unchanged so it can also be passed directly to :func:`evalkit.evaluate`.
    """

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        reg = name or f.__name__
        adapted = _adapt(f)
        _REGISTRY[reg] = lambda: adapted
        f.__evalkit_scorer_name__ = reg  # type: ignore[attr-defined]
        return f

    return deco(fn) if fn is not None else deco


def registered() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    from evalkit.scorers import budget, spans_scorers, structured, text, trajectory  # noqa: F401


def _resolve(name: str) -> tuple[Factory, str | None]:
    """A factory for ``name``; second item is a judge name when ``name`` names a judge."""
    _load_builtins()
    if name in _REGISTRY:
        return _REGISTRY[name], None
    if ":" in name:
        mod, _, attr = name.partition(":")
        try:
            obj = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise UserError(f"cannot import scorer '{name}': {exc}") from None
        factory: Factory = obj if getattr(obj, "__evalkit_factory__", False) else (lambda: _adapt(obj))
        return factory, None
    from evalkit.judging.scorer import judge_scorer, lookup_judge

    if name == "judge":  # `- judge: {judge: path/to/judge.yaml, ...}`
        return judge_scorer, None
    if lookup_judge(name) is not None:
        return judge_scorer, name
    known = ", ".join(registered())
    raise UserError(f"unknown scorer '{name}' (known: {known}; or a judge name, or module:function)")


def _validate_args(factory: Factory, name: str, args: dict[str, Any]) -> dict[str, Any]:
    sig = inspect.signature(factory)
    fields: dict[str, Any] = {}
    var_kw = False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
            continue
        if p.kind in (p.VAR_POSITIONAL,):
            continue
        ann = p.annotation if p.annotation is not inspect.Parameter.empty else Any
        if isinstance(ann, str):
            hints = inspect.get_annotations(factory, eval_str=True)
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
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = "is not a known argument" if err["type"] == "extra_forbidden" else err["msg"].lower()
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
        try:
            res = self.fn(case, output, run)
            if inspect.isawaitable(res):
                res = await res
        except asyncio.CancelledError:
            raise
        except NotScored as exc:
            return [Score(name=self.name, error=f"not_scored: {exc}")]
        except Exception as exc:
            return [Score(name=self.name, error=f"{type(exc).__name__}: {exc}")]
        return self._normalise(res)

    def _normalise(self, res: ScoreValue) -> list[Score]:
        if res is None:
            return [Score(name=self.name, error="scorer returned None (not scored)")]
        if isinstance(res, Score):
            res = [res]
        if isinstance(res, list):
            out = []
            for s in res:
                if not s.name or s.name == "_" or len(res) == 1:
                    s = s.model_copy(update={"name": self.name})
                if s.passed is None and s.value is not None and self.threshold is not None:
                    s = s.model_copy(update={"passed": float(s.value) >= self.threshold})
                out.append(s)
            return out
        if isinstance(res, bool):
            return [Score(name=self.name, value=res, passed=res)]
        if isinstance(res, int | float):
            passed = None if self.threshold is None else float(res) >= self.threshold
            return [Score(name=self.name, value=float(res), passed=passed)]
        return [Score(name=self.name, error=f"scorer returned {type(res).__name__}, expected bool, float or Score")]


def build_scorer(spec: str | dict[str, Any] | Callable[..., Any] | BoundScorer) -> BoundScorer:
    """Build a scorer from a suite entry (``name`` or ``{name: {args}}``) or a callable."""
    if isinstance(spec, BoundScorer):
        return spec
    if callable(spec):
        nm = str(getattr(spec, "__evalkit_scorer_name__", None) or getattr(spec, "__name__", "scorer"))
        return BoundScorer(name=nm, fn=_adapt(spec), config={"callable": f"{spec.__module__}:{getattr(spec, '__qualname__', nm)}"})
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
    alias = args.pop("as", None)
    optional = bool(args.pop("optional", False))
    factory, judge_name = _resolve(name)
    if judge_name is not None:
        args = {"judge": judge_name, **args}
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
    score_name = str(alias or name)
    model = getattr(fn, "model", None)
    if optional and isinstance(model, str):
        from evalkit.llm.credentials import has_credentials

        if not has_credentials(model):
            raise ScorerUnavailable(f"{score_name}: no credentials for {model} (set its API key, or "
                                    f"EVALKIT_JUDGE_MODEL / EVALKIT_API_BASE); skipped")
    if threshold is not None and not isinstance(threshold, int | float):
        raise UserError(f"scorer '{name}': argument 'threshold' must be a number")
    return BoundScorer(name=score_name, fn=fn, config={"scorer": name, **valid}, threshold=threshold)
