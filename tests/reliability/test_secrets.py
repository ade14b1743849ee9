"""Secrets: known canary keys in the environment and an HTTP target's auth header appear in no
file evalkit writes (store, cache, MLflow store and artifacts, report, JUnit, Markdown, JSON,
export) and in none of its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.fakes.openai_server import FakeOpenAIServer, Reply, Request

pytestmark = pytest.mark.reliability

CANARIES = {
    "OPENAI_API_KEY": "sk-canary-openai-4f1d9a7c2b",
    "ANTHROPIC_API_KEY": "sk-ant-canary-8e2c5d1f0a",
    "AGENT_AUTH_HEADER": "Bearer canary-http-token-77aa31",
    "SERVICE_TOKEN": "canary-service-token-5c5c",
}

SUITE = """
name: secrets
dataset: cases.jsonl
target:
  url: {url}/v1/chat/completions
  body: {{model: agent, messages: [{{role: user, content: "{{input}}"}}]}}
  answer_path: choices.0.message.content
  headers_env: {{Authorization: AGENT_AUTH_HEADER}}
  timeout: 10
scorers:
  - contains: {{values: [router]}}
  - correctness
  - safety
"""


def responder(req: Request) -> Reply:
    if "rationale" in req.prompt:
        return Reply.ok(json.dumps({"rationale": "fine", "score": 4, "verdict": "yes", "answer": "yes"}))
    return Reply.ok("Restart the router, then reconnect.")


def test_no_secret_reaches_any_written_file(workspace: Path, figures: dict[str, Any]) -> None:
    server = FakeOpenAIServer().start()
    server.responder = responder
    try:
        (workspace / "cases.jsonl").write_text(
            "".join(json.dumps({"id": f"s{i}", "input": f"VPN keeps dropping ({i})", "expected": "restart the router"}) + "\n"
                    for i in range(12)))
        (workspace / "suite.yaml").write_text(SUITE.format(url=server.url))
        summary_file = workspace / "step_summary.md"
        env = {**os.environ, **CANARIES, "PYTHONPATH": str(REPO), "EVALKIT_JUDGE_MODEL": "openai/gpt-4o-mini",
               "EVALKIT_API_BASE": server.url + "/v1", "GITHUB_STEP_SUMMARY": str(summary_file),
               "EVALKIT_LOG_LEVEL": "DEBUG"}
        env.pop("MLFLOW_TRACKING_URI", None)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            p = subprocess.run([sys.executable, "-m", "evalkit.cli.app", *args], cwd=workspace, env=env,
                               capture_output=True, text=True, timeout=300)
            outputs.append(p.stdout + p.stderr)
            return p

        outputs: list[str] = []
        run = cli("run", "suite.yaml", "--json", "--html", "report.html", "--junit", "junit.xml",
                  "--markdown", "summary.md", "--json-out", "all.json")
        assert run.returncode == 0, run.stderr
        out = json.loads(run.stdout)
        run_id = out["run_id"]
        assert out["summary"]["errors"] == 0
        assert any(s["name"] == "correctness" and s["scored"] == 12 for s in out["summary"]["scorers"])
        assert out["mlflow_run_id"], "the run must be logged to MLflow for this test to mean anything"
        assert all(r.headers.get("authorization") == CANARIES["AGENT_AUTH_HEADER"]
                   for r in server.requests if r.body.get("model") == "agent")
        for args in (("report", run_id, "-o", "again.html"), ("export", run_id, "-o", "exported"),
                     ("show", run_id, "--json"), ("trace", run_id, "s1"), ("sql", "SELECT * FROM spans", "--json")):
            p = cli(*args)
            assert p.returncode == 0, (args, p.stderr)
    finally:
        server.stop()
    written = [p for p in workspace.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in written) and any("mlflow" in str(p) for p in written)
    assert (workspace / "exported").exists() and summary_file.exists()
    leaks = []
    for p in written:
        data = p.read_bytes()
        leaks += [f"{p.relative_to(workspace)}: {name}" for name, value in CANARIES.items() if value.encode() in data]
    leaks += [f"output: {name}" for name, value in CANARIES.items() for o in outputs if value in o]
    figures.update({"files checked": len(written), "outputs checked": len(outputs), "leaked secrets": len(leaks)})
    assert leaks == []
