"""The Ray engine: same per-case scores as the local engine; shards merge exactly once."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import polars as pl
import pytest

from evalkit.batch.parquet_sink import committed_parts, merge_parts, merge_spans, span_files
from evalkit.batch.ray_engine import ChunkJob, run_chunk
from evalkit.pipeline import RunSettings, run_suite
from evalkit.store import reads
from evalkit.store.db import Store, open_store
from evalkit.suite import load_suite
from tests.fakes.openai_server import FakeOpenAIServer, Reply

HAS_RAY = importlib.util.find_spec("ray") is not None
N = 40

AGENT = '''
def answer(question: str) -> str:
    n = int(question.split()[-1])
    return "the answer is " + ("forty-two" if n % 3 else "unknown")
'''


def _judge_reply(req: object) -> Reply:
    """A deterministic verdict that depends on the prompt, so cases get different scores."""
    prompt = getattr(req, "prompt", "")
    grade = int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 5 + 1
    return Reply.ok(json.dumps({"rationale": f"grade {grade}", "score": grade}))


def _suite(ws: Path, *, judge: bool) -> Path:
    (ws / "ray_case_agent.py").write_text(AGENT)
    with (ws / "cases.jsonl").open("w") as f:
        for i in range(N):
            f.write(json.dumps({"id": f"c{i:03d}", "input": f"question {i}", "expected": "forty-two",
                                "tags": ["odd" if i % 2 else "even"]}) + "\n")
    scorers = "  - contains:\n      key: expected\n  - length:\n      max_words: 3\n"
    if judge:
        scorers += "  - correctness:\n      model: openai/gpt-4o-mini\n"
    path = ws / "suite.yaml"
    path.write_text(f"name: ray-suite\ndataset: cases.jsonl\ntarget: ray_case_agent:answer\nscorers:\n{scorers}"
                    "defaults:\n  concurrency: 4\n")
    return path


def _scores(store: Store, run_id: str) -> pl.DataFrame:
    return reads.score_frame(store, run_id).select("case_id", "repeat", "name", "value", "passed", "error")


class _Ticks(list[tuple[int, int, int, float]]):
    """A progress display that keeps the Ray engine's stored totals."""

    def update(self, result: object) -> None: ...

    def set_totals(self, cases: int, errors: int, tokens: int, cost_usd: float) -> None:
        self.append((cases, errors, tokens, cost_usd))

    def close(self) -> None: ...


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (pip install 'evalkit[ray]')")
def test_ray_engine_matches_local_engine_on_cached_responses(
    workspace: Path, openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALKIT_API_BASE", openai_server.url + "/v1")
    monkeypatch.setenv("EVALKIT_API_KEY", "sk-test")
    openai_server.responder = _judge_reply
    suite_file = _suite(workspace, judge=True)
    store = open_store()
    try:
        local = run_suite(load_suite(suite_file), RunSettings(concurrency=4, mlflow=False), door="api", store=store,
                          handle_signals=False)
        assert local.status == "completed" and openai_server.count == N
        ticks = _Ticks()
        ray_run = run_suite(load_suite(suite_file), RunSettings(concurrency=4, mlflow=False, engine="ray"), door="cli",
                            store=store, progress=lambda plan: ticks, handle_signals=False)
        assert ray_run.status == "completed" and ray_run.gate.passed
        assert openai_server.count == N  # every judge answer came from the cache the local run filled

        a, b = _scores(store, local.run_id), _scores(store, ray_run.run_id)
        assert b.height == 3 * N and a.filter(pl.col("name") == "correctness")["value"].n_unique() > 1
        assert a.equals(b)
        cases = reads.case_frame(store, ray_run.run_id)
        assert cases["case_id"].n_unique() == N and cases.height == N and (cases["status"] == "ok").all()
        traced = store.execute("SELECT count(DISTINCT trace_id), count(*) FROM spans WHERE run_id = ?",
                               [ray_run.run_id])[0]
        assert traced[0] == N and traced[1] > N
        assert ticks and ticks[-1][0] == N and ticks[-1][2] > 0  # judge tokens counted (cached calls too)
        run = store.get_run(ray_run.run_id)
        assert run["config"]["engine"] == "ray" and run["summary"]["cases"] == N
        same = {k: v for k, v in ray_run.summary.metrics().items() if not k.startswith(("latency", "cost"))}
        assert same == {k: v for k, v in local.summary.metrics().items() if k in same}
        assert ray_run.summary.cost_usd_total == 0 < local.summary.cost_usd_total  # cache hits re-pay nothing
        assert not (workspace / ".evalkit" / "shards" / ray_run.run_id).exists()
    finally:
        store.close()


def test_a_retried_chunk_is_merged_once(workspace: Path) -> None:
    """Run a chunk in-process twice (a Ray retry), merge both attempts: every case, score and span once."""
    suite_file = _suite(workspace, judge=False)
    suite = load_suite(suite_file)
    store = open_store()
    shards = workspace / "shards"
    try:
        store.create_run({"run_id": "r1", "suite": suite.name, "status": "running"})
        cases = list(suite.cases)
        job = ChunkJob(run_id="r1", suite=suite.name, suite_file=str(suite_file), suite_sha256="x",
                       scorer_names=[s.name for s in suite.scorers], cwd=str(workspace), env={}, overrides={},
                       concurrency=4, timeout_s=10, repeats=1, cache=True, tracing=True, shard_dir=str(shards),
                       chunk=0, cases=cases[:10], flush_rows=4)
        first = run_chunk(job)
        assert (first.cases, first.parts, first.status) == (10, 3, "completed")
        # A retry after a crash finds the first attempt's parts and runs nothing again ...
        assert run_chunk(job).cases == 0
        # ... and parts holding the same cases twice (an attempt that died before committing) merge once.
        again = run_chunk(ChunkJob(**{**job.__dict__, "chunk": 1, "cases": cases[5:15]}))
        assert again.cases == 10
        merge_parts(store, "r1", committed_parts(shards))
        merge_parts(store, "r1", committed_parts(shards))
        merge_spans(store, "r1", span_files(shards, 0))
        merge_spans(store, "r1", span_files(shards, 1))
        rows = store.execute("SELECT count(*), count(DISTINCT case_id) FROM case_results WHERE run_id = 'r1'")[0]
        assert rows == (15, 15)
        dupes = store.execute("SELECT count(*) FROM (SELECT case_id, name FROM scores WHERE run_id = 'r1'"
                              " GROUP BY ALL HAVING count(*) > 1)")[0][0]
        assert dupes == 0 and store.execute("SELECT count(*) FROM scores WHERE run_id = 'r1'")[0][0] == 30
        span_traces = store.execute("SELECT count(DISTINCT trace_id) FROM spans WHERE run_id = 'r1'")[0][0]
        assert span_traces == 15  # spans of the discarded duplicate attempt were dropped
        assert store.execute("SELECT count(*) FROM spans s WHERE run_id = 'r1' AND trace_id NOT IN"
                             " (SELECT trace_id FROM case_results WHERE run_id = 'r1')")[0][0] == 0
    finally:
        store.close()
