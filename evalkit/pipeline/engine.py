"""Engines execute a plan's case × repeats and write each result as it finishes.

The local engine is evalkit's asyncio :class:`~evalkit.runner.Runner` in this process, with
Ctrl-C handling (first press: start no more cases; second: cancel the ones in flight). The Ray
engine (:mod:`evalkit.batch.ray_engine`) spreads the same runner over a cluster. Both return an
:class:`~evalkit.runner.RunOutcome`; what they leave unstarted the pipeline records as cancelled.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

from evalkit.pipeline.plan import Plan
from evalkit.runner import Runner, RunOptions, RunOutcome, Tracer
from evalkit.schema import CaseResult
from evalkit.store.db import Store
from evalkit.store.writer import StoreWriter


def run_local(plan: Plan, store: Store, *, tracer: Tracer | None = None,
              on_result: Callable[[CaseResult], None] | None = None, handle_signals: bool = True) -> RunOutcome:
    """Run the plan in this process, results written by a background writer as they finish."""
    s = plan.settings
    warm_up(plan)
    writer = StoreWriter(store, before_write=getattr(tracer, "sync", None))
    runner = Runner(
        plan.suite.target,  # type: ignore[arg-type]  # the pipeline checked there is one
        plan.suite.scorers,
        RunOptions(run_id=plan.run_id, suite=plan.suite.name, concurrency=s.concurrency, timeout_s=s.timeout_s,
                   repeats=s.repeats, cache=s.cache, skip=plan.skip),
        writer, tracer=tracer, on_result=on_result,
    )

    async def main() -> RunOutcome:
        loop = asyncio.get_running_loop()
        presses = 0

        def on_sigint() -> None:
            nonlocal presses
            presses += 1
            if presses == 1:
                runner.stop()
            else:
                runner.cancel()

        installed = False
        if handle_signals:
            try:
                loop.add_signal_handler(signal.SIGINT, on_sigint)
                loop.add_signal_handler(signal.SIGTERM, on_sigint)
                installed = True
            except (NotImplementedError, RuntimeError, ValueError):
                installed = False
        try:
            return await runner.run(plan.cases)
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)

    try:
        outcome: RunOutcome = run_async(main())
    except BaseException as exc:  # never lose the reason: the run is finalised as failed
        outcome = RunOutcome(status="failed", failures=[f"engine stopped: {type(exc).__name__}: {exc}"])
        if isinstance(exc, KeyboardInterrupt):
            outcome.status = "interrupted"
    finally:
        try:
            writer.close()
        except BaseException as exc:
            outcome = RunOutcome(status="failed", failures=[f"results could not be stored: {exc}"], store_error=str(exc))
        flush = getattr(tracer, "flush", None)
        if flush is not None:
            flush()
            lost = tracer.loss_note()  # type: ignore[union-attr]
            if lost:
                outcome.failures.append(lost)
    return outcome


def warm_up(plan: Plan) -> None:
    """Pay the model stack's import before the clock starts, so it does not skew case latencies."""
    target = plan.suite.target
    models = [*(target.models if target else []),
              *(m for s in plan.suite.scorers if isinstance(m := getattr(s.fn, "model", None), str))]
    if models:
        from evalkit.llm.facade import warm_up as warm

        warm(models)


def run_async(coro: Any) -> Any:
    """Run a coroutine, also from inside a running loop (notebooks) by using a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
