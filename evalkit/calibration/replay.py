"""A calibration set as a suite: its fixed responses replayed as the target, scored by the judge.

The run goes through the one run pipeline (retries, typed errors, traces, the store), so the
calibration is measured on the judge's real verdicts and stays traceable to a run id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.calibration.calibration_set import REFERENCE_KEY, CalibrationItem
from evalkit.judging.model import JudgeDef
from evalkit.schema import Case
from evalkit.suite import Suite
from evalkit.targets.base import Target

RULES_KEY = "rules"


def replay_target(items: Sequence[CalibrationItem], version: str) -> Target:
    """A target answering each calibration case with its recorded response (and tool calls)."""
    by_id = {it.id: it for it in items}

    async def replay(case: Case) -> Any:
        from evalkit.context import record_tool_call

        item = by_id[case.id]
        for call in item.tool_calls:
            record_tool_call(call.name, call.arguments)
        return item.output

    return Target(name="calibration-replay", call=replay, version=version, kind="replay")


def calibration_suite(judge: JudgeDef, items: Sequence[CalibrationItem], *, model: str | None,
                      set_path: Path, judge_spec: str | None = None) -> Suite:
    """The suite that scores ``items`` with ``judge`` (``judge_spec``: how to find it, default its name)."""
    from evalkit.scorers.registry import build_scorer

    digest = hashlib.sha256(set_path.read_bytes()).hexdigest()[:12]
    cases = []
    for it in items:
        meta = dict(it.case.metadata)
        if it.rules:
            meta[RULES_KEY] = list(it.rules)
        cases.append(it.case.model_copy(update={"metadata": meta}))
    args: dict[str, Any] = {"judge": judge_spec or judge.name}
    if model:
        args["model"] = model
    if "rules" in judge.placeholders:
        args["rules"] = "case"
    if judge.output == "pairwise":
        args["reference"] = REFERENCE_KEY
    return Suite(name=f"calibration/{judge.name}", cases=cases, target=replay_target(items, digest),
                 scorers=[build_scorer({"judge": args})], dataset_path=set_path)
