"""LLM judges: versioned YAML rubrics, rendered with fenced data, answered as validated JSON."""

from evalkit.judging.loader import builtin_dir, builtin_names, find_judge, load_judge_file
from evalkit.judging.model import JudgeDef
from evalkit.judging.run import resolve_model, run_judge
from evalkit.judging.scorer import judge_scorer, lookup_judge

__all__ = [
    "JudgeDef",
    "builtin_dir",
    "builtin_names",
    "find_judge",
    "judge_scorer",
    "load_judge_file",
    "lookup_judge",
    "resolve_model",
    "run_judge",
]
