"""One run pipeline for every door: settings → plan → engine → finalise → gate → outputs → tracking."""

from evalkit.pipeline.finished import FinishedRun
from evalkit.pipeline.plan import Plan, make_plan, start_run
from evalkit.pipeline.run import close_run, finish, run_suite
from evalkit.pipeline.settings import RunSettings, resolve_settings

__all__ = ["FinishedRun", "Plan", "RunSettings", "close_run", "finish", "make_plan", "resolve_settings", "run_suite",
           "start_run"]
