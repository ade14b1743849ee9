"""``@evalkit.cases``: one pytest item per case of a suite, a dataset or a list.

The decorator only attaches a marker (it imports nothing heavy); the pytest plugin loads the
source once per process at collection and parametrises the test, so ``--evalkit-repeat`` can
multiply the items.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalkit.schema import Case
    from evalkit.suite import Suite

MARKER = "evalkit_cases"
REPEAT_MARKER = "evalkit_repeat"


def cases(source: str | Path | Iterable[Any], *, argname: str = "case") -> Any:
    """Parametrise a test over cases, with each case's id as the test id.

    ``source`` is a suite file (its scorers, target and thresholds are used by the ``evaluate``
    fixture and the session gate), a dataset file (.jsonl, .csv, .parquet, .yaml), or a list of
    cases (``Case`` objects, dicts or strings). Relative paths are looked up from the pytest
    rootdir, then the test file's folder, then the working directory.
    """
    import pytest

    if not isinstance(source, str | Path):
        source = list(source)
    return pytest.mark.evalkit_cases(source, argname=argname)


@dataclass
class CaseSource:
    """Loaded cases and, for a suite file, the suite they belong to."""

    key: str
    name: str
    cases: list[Case]
    suite: Suite | None = None
    path: Path | None = None

    def meta(self) -> dict[str, Any]:
        """What the session needs to know about this source (JSON-serialisable)."""
        s = self.suite
        return {
            "name": self.name,
            "suite_file": str(self.path) if s is not None and self.path else None,
            "dataset_path": str(s.dataset_path if s is not None else self.path) if (s or self.path) else None,
            "target": s.target.name if s is not None and s.target is not None else None,
        }


_LOADED: dict[str, CaseSource] = {}


def _resolve(spec: str | Path, bases: Sequence[Path]) -> Path:
    p = Path(spec)
    if p.is_absolute():
        return p
    for base in bases:
        if (base / p).exists():
            return (base / p).resolve()
    return (bases[0] / p).resolve() if bases else p.resolve()


def _is_suite(path: Path) -> bool:
    if path.suffix.lower() not in (".yaml", ".yml") or not path.exists():
        return False
    from evalkit.yaml_lines import load_yaml

    data, _ = load_yaml(path)
    return isinstance(data, dict) and "dataset" in data


def load_source(spec: Any, bases: Sequence[Path] = ()) -> CaseSource:
    """Load (once per process) the cases a ``@cases(...)`` marker names."""
    if not isinstance(spec, str | Path):
        key = f"inline:{id(spec)}"
        if key not in _LOADED:
            from evalkit.datasets import coerce_cases

            _LOADED[key] = CaseSource(key=key, name="pytest", cases=coerce_cases(spec))
        return _LOADED[key]
    path = _resolve(spec, bases)
    key = str(path)
    if key in _LOADED:
        return _LOADED[key]
    if _is_suite(path):
        from evalkit.suite import load_suite

        suite = load_suite(path)
        src = CaseSource(key=key, name=suite.name, cases=list(suite.cases), suite=suite, path=path)
    else:
        from evalkit.datasets import load_dataset

        src = CaseSource(key=key, name=path.stem, cases=load_dataset(path), path=path)
    _LOADED[key] = src
    return src


def params(source: CaseSource, repeats: int) -> list[Any]:
    """``pytest.param`` per case (and repeat), id = case id (``<id>-r<k>`` when repeating)."""
    import pytest

    if repeats <= 1:
        return [pytest.param(c, id=c.id) for c in source.cases]
    mark = pytest.mark.evalkit_repeat
    return [pytest.param(c, id=f"{c.id}-r{r}", marks=mark(r)) for c in source.cases for r in range(repeats)]
