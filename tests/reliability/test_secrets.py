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


def contents(path: Path) -> bytes:
    """A file's bytes, plus the decoded rows of a DuckDB or Parquet file (compression can hide a string)."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        import polars as pl

        data += repr(pl.read_parquet(path).rows()).encode()
    elif path.suffix == ".duckdb":
        import duckdb

        con = duckdb.connect(str(path), read_only=True)
        try:
            for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
                data += repr(con.execute(f'SELECT * FROM "{table}"').fetchall()).encode()
        finally:
            con.close()
    return data


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
        data = contents(p)
        leaks += [f"{p.relative_to(workspace)}: {name}" for name, value in CANARIES.items() if value.encode() in data]
    leaks += [f"output: {name}" for name, value in CANARIES.items() for o in outputs if value in o]
    figures.update({"files checked": len(written), "outputs checked": len(outputs), "leaked secrets": len(leaks)})
    assert leaks == []


AGENT = '''
import os


def answer(question: str) -> str:
    if "fail" in question:
        raise RuntimeError(f"upstream said 401 for key {os.environ['ACME_API_KEY']} at "
                           f"https://bot:{os.environ['ACME_DB_PASSWORD']}@db.internal/v1")
    return "the router"
'''


def test_target_exception_text_is_redacted_in_every_sink(workspace: Path, figures: dict[str, Any]) -> None:
    canaries = {"ACME_API_KEY": "acme-live-0123456789abcdef", "ACME_DB_PASSWORD": "db-pass-7f7f7f7f"}
    (workspace / "agent.py").write_text(AGENT)
    (workspace / "cases.jsonl").write_text("".join(
        json.dumps({"id": f"c{i}", "input": "please fail" if i % 2 else "route me", "expected": "router"}) + "\n"
        for i in range(6)))
    (workspace / "suite.yaml").write_text("name: leaky\ndataset: cases.jsonl\ntarget: agent:answer\n"
                                          "scorers:\n  - contains: {values: [router]}\n")
    env = {**os.environ, **canaries, "PYTHONPATH": str(REPO)}
    outputs: list[str] = []

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([sys.executable, "-m", "evalkit.cli.app", *args], cwd=workspace, env=env,
                           capture_output=True, text=True, timeout=300)
        outputs.append(p.stdout + p.stderr)
        return p

    run = cli("run", "suite.yaml", "--json", "--html", "report.html", "--junit", "junit.xml",
              "--markdown", "summary.md", "--json-out", "all.json", "--max-error-rate", "1")
    assert run.returncode in (0, 1), run.stderr
    out = json.loads(run.stdout)
    assert out["summary"]["errors"] == 3 and out["mlflow_run_id"]
    for args in (("show", out["run_id"]), ("show", out["run_id"], "--json"), ("trace", out["run_id"], "c1", "--json"),
                 ("trace", out["run_id"], "c1"), ("traces", out["run_id"], "--failed"), ("export", out["run_id"], "-o", "exported"),
                 ("report", out["run_id"], "-o", "again.html")):
        assert cli(*args).returncode == 0, (args, outputs[-1])
    assert "upstream said 401" in outputs[1]  # the error itself is kept, only the secret is masked
    written = [p for p in workspace.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in written)
    leaks = [f"{p.relative_to(workspace)}: {n}" for p in written for n, v in canaries.items() if v.encode() in contents(p)]
    leaks += [f"output {i}: {n}" for i, o in enumerate(outputs) for n, v in canaries.items() if v in o]
    figures.update({"files checked": len(written), "outputs checked": len(outputs), "leaked secrets": len(leaks)})
    assert leaks == []


@pytest.mark.parametrize(("target", "where"), [
    ("target:\n  model: openai/gpt-4o-mini\n  params:\n    api_key: sk-live-abcdefghijkl\n", "target.params.api_key"),
    ("target:\n  model: openai/gpt-4o-mini\n  api_base: https://me:hunter22@llm.internal/v1\n", "target.api_base"),
    ("target:\n  url: http://127.0.0.1:9/chat\n  headers:\n    Authorization: Bearer tok-123456789\n",
     "target.headers.Authorization"),
])
def test_suite_files_refuse_secrets(workspace: Path, target: str, where: str) -> None:
    (workspace / "cases.jsonl").write_text('{"id": "a", "input": "hi"}\n')
    (workspace / "suite.yaml").write_text(f"name: s\ndataset: cases.jsonl\n{target}scorers:\n  - contains: {{values: [a]}}\n")
    p = subprocess.run([sys.executable, "-m", "evalkit.cli.app", "run", "suite.yaml"], cwd=workspace,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    line = p.stderr.strip().splitlines()
    assert len(line) == 1 and line[0].startswith("error: suite.yaml:") and f"'{where}' holds a secret" in line[0]
    assert "environment variable" in line[0] and "hunter22" not in p.stderr and "abcdefghijkl" not in p.stderr
    assert not (workspace / ".evalkit").exists()  # nothing stored is touched


def test_tracking_uri_password_never_printed(workspace: Path) -> None:
    import socket

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    (workspace / "cases.jsonl").write_text('{"id": "a", "input": "hi", "expected": "hi"}\n')
    (workspace / "suite.yaml").write_text("name: s\ndataset: cases.jsonl\ntarget: evalkit.demo.agent:answer\n"
                                          "scorers:\n  - contains: {values: [a]}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": f"http://ci:pw-0xdeadbeef@127.0.0.1:{dead_port}"}
    p = subprocess.run([sys.executable, "-m", "evalkit.cli.app", "run", "suite.yaml"], cwd=workspace, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "unreachable" in p.stderr and "ci:[REDACTED]@127.0.0.1" in p.stderr
    assert "pw-0xdeadbeef" not in p.stdout + p.stderr
