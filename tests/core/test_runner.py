"""The async runner: timeouts, exceptions, concurrency bound, cancellation, sync and async targets."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from evalkit.context import record_tool_call
from evalkit.runner import Runner, RunOptions
from evalkit.schema import Case, CaseResult
from evalkit.scorers.registry import build_scorer
from evalkit.targets import build_target


class ListSink:
    def __init__(self) -> None:
        self.results: list[CaseResult] = []

    def add(self, result: CaseResult, case: Case) -> None:
        self.results.append(result)


def run_cases(target: Any, cases: list[Case], scorers: list[Any] | None = None, **opts: Any) -> list[CaseResult]:
    sink = ListSink()
    runner = Runner(build_target(target), [build_scorer(s) for s in (scorers or ["exact_match"])],
                    RunOptions(run_id="r1", **opts), sink)
    asyncio.run(runner.run(cases))
    return sorted(sink.results, key=lambda r: (r.case_id, r.repeat))


def test_exceptions_become_case_errors_and_the_run_goes_on() -> None:
    cases = [Case(id="a", input="fine", expected="fine"), Case(id="b", input="boom now", expected="x")]
    a, b = run_cases("tests.core.helpers:explode", cases)
    assert a.status == "ok" and a.scores[0].passed is True
    assert b.status == "error" and b.error == "ValueError: cannot handle boom now"
    assert b.scores[0].value is None and b.scores[0].error == "not scored: the target failed"
    assert (b.scores[0].outcome, b.scores[0].error_kind) == ("error", "target_exception")


def test_timeouts_for_async_and_sync_targets() -> None:
    for target in ("tests.core.helpers:slow_async", "tests.core.helpers:slow_sync"):
        fast, slow = run_cases(target, [Case(id="a", input="0", expected="done"), Case(id="b", input="1.0")],
                               timeout_s=0.2)
        assert fast.status == "ok"
        assert slow.status == "error" and slow.error is not None and slow.error.startswith("timeout")


def test_concurrency_is_bounded() -> None:
    live = 0
    peak = 0
    lock = threading.Lock()

    async def agent(q: str) -> str:
        nonlocal live, peak
        with lock:
            live += 1
            peak = max(peak, live)
        await asyncio.sleep(0.01)
        with lock:
            live -= 1
        return q

    results = run_cases(agent, [Case(input=str(i), expected=str(i)) for i in range(60)], concurrency=5)
    assert len(results) == 60 and peak == 5


def test_repeats_and_skip() -> None:
    cases = [Case(id="a", input="x", expected="x"), Case(id="b", input="y", expected="y")]
    results = run_cases("tests.core.helpers:echo", cases, repeats=3, skip={("a", 1)})
    assert [(r.case_id, r.repeat) for r in results] == [("a", 0), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]


def test_tool_calls_and_case_input_reach_scorers() -> None:
    def agent(case: Case) -> str:
        record_tool_call("lookup", {"id": case.id})
        return "ok"

    (r,) = run_cases(agent, [Case(id="k", input="q", expected_tool_calls=[{"name": "lookup", "arguments": {"id": "k"}}])],
                     scorers=["tool_calls"])
    assert r.tool_calls[0].name == "lookup" and r.scores[0].passed is True


def test_cancel_marks_in_flight_cases_cancelled() -> None:
    async def agent(q: str) -> str:
        await asyncio.sleep(10)
        return q

    sink = ListSink()
    runner = Runner(build_target(agent), [build_scorer("exact_match")], RunOptions(run_id="r", concurrency=2), sink)

    async def main() -> None:
        task = asyncio.create_task(runner.run([Case(input=str(i)) for i in range(10)]))
        await asyncio.sleep(0.05)
        runner.cancel()
        await task

    t0 = time.perf_counter()
    asyncio.run(main())
    assert time.perf_counter() - t0 < 5
    assert runner.outcome.status == "interrupted"
    assert len(sink.results) == 2 and all(r.status == "cancelled" for r in sink.results)


def test_a_sync_agents_latency_is_its_own_time_not_the_wait_for_the_loop() -> None:
    own: dict[str, float] = {}

    def quick(question: str) -> str:
        t0 = time.perf_counter()
        time.sleep(0.002)
        own[question] = (time.perf_counter() - t0) * 1000
        return question

    def hog(case: Case, output: Any) -> bool:  # a sync scorer holding the event loop for 60 ms
        end = time.perf_counter() + 0.06
        while time.perf_counter() < end:
            pass
        return True

    results = run_cases(quick, [Case(id=f"c{i}", input=f"q{i}") for i in range(8)], scorers=[hog], concurrency=4)
    assert len(results) == 8 and all(r.outcome == "completed" for r in results)
    # finished agents waited behind other cases' scorers (wall time from start to scores ≥ one hog) ...
    assert max((r.ended_at - r.started_at).total_seconds() * 1000 for r in results) >= 120
    # ... and that wait is not the agent's latency: it is what the agent measured itself, plus the wrapper
    for r in results:
        assert own[r.output] <= r.latency_ms < own[r.output] + 5, (r.case_id, r.latency_ms, own[r.output])
