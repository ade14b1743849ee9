"""Fault injection: 1,000 cases, 20 % of agent and judge calls fault at the loopback provider.

Every fault is one of: 429 with and without Retry-After, 500, 503, a hang past the timeout, a
connection dropped mid-body, a malformed body (and, for the judge, malformed verdict JSON).
Most faults are transient (the retry succeeds); a known subset persists through every attempt.
Afterwards the store holds every case exactly once, each score is a value or an explicit error,
and the error counts equal exactly the persistent faults injected.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import evalkit
from evalkit.store.db import Store
from tests.fakes.openai_server import FakeOpenAIServer, Reply, Request

pytestmark = pytest.mark.reliability

N_CASES = 1000
KINDS = ["429_retry_after", "429", "500", "503", "hang", "drop", "malformed"]
CANARY = "sk-canary-0123456789-do-not-leak"


def fault_reply(kind: str) -> Reply:
    return {
        "429_retry_after": Reply.rate_limit(retry_after=0.05),
        "429": Reply.rate_limit(),
        "500": Reply.error(500),
        "503": Reply.error(503, "service unavailable"),
        "hang": Reply.hang(2.0),
        "drop": Reply.drop(),
        "malformed": Reply.malformed(),
        "bad_verdict": Reply.ok("I think it deserves a five, honestly"),
    }[kind]


class FaultPlan:
    """Decides, per (case, role), whether and how calls fail; counts what it injected."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.plan: dict[tuple[str, str], tuple[str, bool] | None] = {}
        for i in range(N_CASES):
            for role in ("agent", "judge"):
                r = rng.random()
                kinds = [*KINDS, "bad_verdict"] if role == "judge" else KINDS
                if r < 0.15:
                    self.plan[(f"c{i:04d}", role)] = (rng.choice(kinds), False)  # transient
                elif r < 0.20:
                    self.plan[(f"c{i:04d}", role)] = (rng.choice(kinds), True)  # persists
                else:
                    self.plan[(f"c{i:04d}", role)] = None
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.injected = 0
        self.lock = threading.Lock()

    def persistent(self, role: str) -> set[str]:
        return {k[0] for k, v in self.plan.items() if k[1] == role and v is not None and v[1]}

    def respond(self, req: Request) -> Reply:
        text = req.prompt
        case = re.search(r"\[(c\d{4})\]", text)
        assert case, text[:200]
        role = "judge" if "rationale" in text else "agent"
        key = (case.group(1), role)
        with self.lock:
            self.attempts[key] += 1
            first = self.attempts[key] == 1
        fault = self.plan[key]
        if fault is not None and (fault[1] or first):
            with self.lock:
                self.injected += 1
            return fault_reply(fault[0])
        if role == "agent":
            return Reply.ok(f"Answer for {case.group(1)}: restart the router.")
        return Reply.ok(json.dumps({"rationale": "plausible fix", "score": 4}))


def test_faults_are_retried_then_recorded_never_lost(workspace: Path, monkeypatch: pytest.MonkeyPatch,
                                                    figures: dict[str, Any]) -> None:
    for k, v in {"EVALKIT_MAX_ATTEMPTS": "3", "EVALKIT_BACKOFF_BASE": "0.01", "EVALKIT_BACKOFF_MAX": "0.05",
                 "EVALKIT_TIMEOUT": "1.0", "OPENAI_API_KEY": CANARY, "EVALKIT_JUDGE_MODEL": "openai/gpt-4o-mini"}.items():
        monkeypatch.setenv(k, v)
    plan = FaultPlan()
    server = FakeOpenAIServer().start()
    server.responder = plan.respond
    monkeypatch.setenv("EVALKIT_API_BASE", server.url + "/v1")
    try:
        cases = [{"id": f"c{i:04d}", "input": f"[c{i:04d}] The VPN drops every hour, what should I do?",
                  "expected": "restart the router"} for i in range(N_CASES)]
        target = {"model": "openai/gpt-4o-mini", "prompt": "{input}", "api_base": server.url + "/v1"}
        res = evalkit.evaluate(cases, target=target, scorers=["correctness", {"contains": {"values": ["router"]}}], mlflow=False,
                               concurrency=64, tracing=True)
    finally:
        server.stop()
    s = res.summary
    by_name = {x.name: x for x in s.scorers}
    with Store(res.store_path, read_only=True) as st:  # type: ignore[arg-type]
        rows = st.execute("SELECT count(*), count(DISTINCT case_id) FROM case_results WHERE run_id = ?", [res.run_id])[0]
        score_rows = st.execute("SELECT count(*), count(DISTINCT (case_id, name)),"
                                " count(*) FILTER (WHERE value IS NULL AND error IS NULL) FROM scores WHERE run_id = ?",
                                [res.run_id])[0]
        judge_errors = dict(st.execute(
            "SELECT error_kind, count(*) FROM scores WHERE run_id = ? AND name = 'correctness'"
            " AND outcome = 'error' GROUP BY 1", [res.run_id]))
        judge_failed = dict(st.execute(
            "SELECT case_id, error_kind FROM scores WHERE run_id = ? AND name = 'correctness' AND outcome = 'error'",
            [res.run_id]))
        agent_failed = dict(st.execute(
            "SELECT case_id, error_kind FROM case_results WHERE run_id = ? AND status = 'error'", [res.run_id]))
        spans_with_canary = st.execute("SELECT count(*) FROM spans WHERE attributes::VARCHAR LIKE ?", [f"%{CANARY}%"])[0][0]
    figures.update({"cases run": rows[0], "faults injected": plan.injected,
                    "errors recorded": s.errors,
                    "lost": N_CASES - rows[1], "duplicated": rows[0] - rows[1], "leaked secrets": spans_with_canary})
    # every persistent agent fault outlived its retries; on a loaded machine a retried call may also time
    # out for good (EVALKIT_TIMEOUT is 1 s here): such a case is a typed timeout, still never lost
    agent_dead = set(agent_failed)
    assert plan.persistent("agent") <= agent_dead
    assert all(agent_failed[c] == "timeout" for c in agent_dead - plan.persistent("agent"))
    judge_dead = set(judge_failed) - agent_dead  # the judge is not asked when the agent failed
    assert plan.persistent("judge") - agent_dead <= judge_dead
    assert all(judge_failed[c] == "timeout" for c in judge_dead - plan.persistent("judge"))
    assert rows == (N_CASES, N_CASES)  # every case exactly once
    assert score_rows[0] == score_rows[1] == 2 * N_CASES and score_rows[2] == 0  # value or explicit error
    # the one error count: a case run errored when its agent or its judge failed for good
    assert s.errors == len(agent_dead) + len(judge_dead) and len(agent_dead) > 0 and len(judge_dead) > 0
    # the model target's faults are typed (provider, or a model-call timeout), never a bare exception
    assert set(agent_failed.values()) <= {"provider", "timeout"}
    assert by_name["correctness"].errors == len(agent_dead) + len(judge_dead)
    assert by_name["correctness"].scored == N_CASES - len(agent_dead) - len(judge_dead)
    assert sum(judge_errors.values()) == len(agent_dead) + len(judge_dead)  # a dead agent's judge: the agent's kind
    assert set(judge_errors) <= {"provider", "timeout", "judge_output_invalid"}
    assert by_name["correctness"].mean == 4.0  # errors were never scored as 0
    assert plan.injected > 0.15 * 2 * N_CASES
    assert spans_with_canary == 0
    from evalkit.gate import evaluate_gate, load_scores

    with Store(res.store_path, read_only=True) as st:  # type: ignore[arg-type]
        gate = evaluate_gate(s, load_scores(st, res.run_id), [], None)
    assert gate.exit_code == 3  # a provider outage is infrastructure, not a quality failure
    from evalkit.tracking.mlflow_log import log_run
    from evalkit.tracking.uri import client, resolve_tracking_uri

    with Store(res.store_path) as st:  # type: ignore[arg-type]
        mlflow_id = log_run(st, res.run_id)
    metrics = client(resolve_tracking_uri(res.store_path)).get_run(mlflow_id).data.metrics
    assert metrics["errors/rate"] == pytest.approx((len(agent_dead) + len(judge_dead)) / N_CASES)
    assert metrics["correctness/errors"] == len(agent_dead) + len(judge_dead)
    figures["errors in MLflow"] = int(metrics["correctness/errors"])
