"""HTTP targets send a W3C traceparent, so a remote agent's spans can join the case's trace."""

from __future__ import annotations

import re
from pathlib import Path

import evalkit
from evalkit.store.db import Store
from tests.fakes.openai_server import FakeOpenAIServer, Reply, Request


def test_http_target_sends_the_case_trace_in_traceparent(workspace: Path, openai_server: FakeOpenAIServer) -> None:
    def answer(req: Request) -> Reply:
        return Reply.ok(f"answer to {req.last_user}")

    openai_server.responder = answer
    target = {"url": openai_server.url + "/v1/chat/completions",
              "body": {"model": "agent", "messages": [{"role": "user", "content": "{input}"}]},
              "answer_path": "choices.0.message.content"}
    res = evalkit.evaluate([{"id": f"h{i}", "input": f"q{i}", "expected": f"answer to q{i}"} for i in range(5)],
                           target=target, scorers=["exact_match"], tracing=True)
    assert res.metrics["exact_match/pass_rate"] == 1.0
    with Store(res.store_path, read_only=True) as st:  # type: ignore[arg-type]
        traces = dict(st.execute("SELECT case_id, trace_id FROM case_results WHERE run_id = ?", [res.run_id]))
    sent = {}
    for r in openai_server.requests:
        m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}", r.headers.get("traceparent", ""))
        assert m, r.headers
        sent[r.last_user] = m.group(1)
    assert {f"h{i}": sent[f"q{i}"] for i in range(5)} == traces
