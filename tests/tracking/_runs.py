"""Realistic runs for the tracking tests, made with ``evalkit.evaluate``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evalkit import evaluate
from evalkit.schema import Case, Score
from evalkit.targets.python_callable import from_callable

JUDGE_SHA = "ab" * 32


def make_run(store: Path | str, *, quality: float = 0.8, n: int = 12, agent: str = "bot", version: str = "1.0",
             suite: str = "qa", judge: bool = True, judge_down: bool = False, mlflow: bool = False,
             tracing: bool = False, branch: str | None = None) -> str:
    """A run of ``n`` cases whose answers are right for the first ``quality`` share; returns its id.

    ``judge_down``: every judge score is a provider error (the judge's endpoint is down). The run is
    not logged to MLflow unless ``mlflow`` (the tests log it themselves, or sync it). ``branch``: the git
    branch the run records (``EVALKIT_GIT_BRANCH``).
    """
    good = round(quality * n)
    cases = [{"id": f"c{i:02d}", "input": f"question {i}", "expected": f"answer {i}"} for i in range(n)]

    def answer(text: str) -> str:
        i = int(text.split()[-1])
        return f"answer {i}" if i < good else "no idea"

    target = from_callable(answer)
    target.name, target.version = agent, version
    meta = {"judge": "helpful@2", "prompt_sha256": JUDGE_SHA, "model": "mock/judge"}

    def helpful(case: Case, output: Any) -> Score:
        if judge_down:
            return Score.failure("helpful", "provider", "provider_error: HTTP 503 from mock/judge", metadata=meta)
        ok = output == case.expected
        return Score(name="helpful", value=4.0 if ok else 2.0, passed=ok, rationale="judged", metadata=meta)

    scorers: list[Any] = ["exact_match"] + ([helpful] if judge else [])
    with _branch(branch):
        res = evaluate(cases, target=target, scorers=scorers, suite_name=suite, store=store, tracing=tracing,
                       mlflow=mlflow, max_error_rate=1.0 if judge_down else None)
        res.wait_traces()  # the MLflow traces are in before the next run (and the environment is put back)
    return res.run_id


@contextmanager
def _branch(name: str | None) -> Iterator[None]:
    old = os.environ.get("EVALKIT_GIT_BRANCH")
    if name is not None:
        os.environ["EVALKIT_GIT_BRANCH"] = name
    try:
        yield
    finally:
        if name is not None:
            if old is None:
                os.environ.pop("EVALKIT_GIT_BRANCH", None)
            else:
                os.environ["EVALKIT_GIT_BRANCH"] = old
