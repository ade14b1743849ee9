"""Speed of per-case MLflow trace logging (``evalkit.tracking.mlflow_traces``), embedded and on a server.

One evalkit run of ``EVALKIT_BENCH_CASES`` cases (default 500; two scorers, one an LLM-judge-shaped
score with a rationale, plus an expected value: three assessments a trace) is logged with
``log_run``, then its traces with ``log_case_traces`` — into the embedded SQLite store, and into a
real ``mlflow server`` on loopback (SQLite backend, one worker). For scale, the fluent path
(``mlflow.start_span`` + ``mlflow.log_feedback``/``log_expectation`` per score) is timed on
``EVALKIT_BENCH_FLUENT`` cases (default 50) of the embedded store.

Prints one JSON object on its last line: cases, embedded/server/fluent cases per second, the
seconds of a second, idempotent pass (nothing written), and the machine's cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

N_CASES = int(os.environ.get("EVALKIT_BENCH_CASES", "500"))
N_FLUENT = int(os.environ.get("EVALKIT_BENCH_FLUENT", "50"))


def make_run(store: Path, n: int) -> str:
    from evalkit import evaluate
    from evalkit.schema import Case, Score
    from evalkit.targets.python_callable import from_callable

    cases = [{"id": f"c{i:04d}", "input": f"question {i}", "expected": f"answer {i}"} for i in range(n)]
    meta = {"judge": "helpful@2", "model": "mock/judge"}

    def answer(text: str) -> str:
        i = int(text.split()[-1])
        return f"answer {i}" if i % 5 else "no idea"

    def helpful(case: Case, output: Any) -> Score:
        ok = output == case.expected
        return Score(name="helpful", value=4.0 if ok else 2.0, passed=ok, rationale="the answer " + str(output),
                     metadata=meta)

    res = evaluate(cases, target=from_callable(answer), scorers=["exact_match", helpful], suite_name="bench",
                   store=store, tracing=False, mlflow=False)
    return res.run_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path, template: Path) -> tuple[subprocess.Popen[bytes], str]:
    shutil.copy(template, root / "server.db")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen([str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
                             "--artifacts-destination", (root / "artifacts").as_uri(), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    for _ in range(600):
        try:
            with urllib.request.urlopen(uri + "/health", timeout=1):
                settle(proc.pid)
                return proc, uri
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("mlflow server did not start")


def _session_cpu(sid: int) -> float:
    """CPU seconds used so far by the processes of session ``sid`` (the server, its job runner, consumers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # field 6 (session id), after the name
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def settle(sid: int, quiet: float = 0.1, limit_s: float = 120) -> None:
    """Wait until the server's process tree is idle: it is healthy before its job consumers finish starting,
    and on 2 cores their start-up would be timed as trace logging."""
    before, deadline = _session_cpu(sid), time.monotonic() + limit_s
    while time.monotonic() < deadline:
        time.sleep(1)
        now = _session_cpu(sid)
        if now - before < quiet:
            return
        before = now


def timed_traces(store: Path, run_id: str, uri: str) -> tuple[float, float, int]:
    """(seconds of the first pass, seconds of the repeat pass, traces logged)."""
    from evalkit.store.db import open_store
    from evalkit.tracking import log_run
    from evalkit.tracking.mlflow_traces import log_case_traces

    with open_store(store) as st:
        log_run(st, run_id, tracking_uri=uri)
        first = log_case_traces(st, run_id, mode="all", tracking_uri=uri)
        again = log_case_traces(st, run_id, mode="all", tracking_uri=uri)
    assert first.failed == 0 and again.logged == 0, (first, again)
    return first.seconds, again.seconds, first.logged


def fluent(uri: str, store: Path, run_id: str, n: int) -> float:
    """Seconds to log ``n`` cases the fluent way (span, then one log call per assessment)."""
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"  # the assessments need the trace written
    import mlflow
    from mlflow.entities import AssessmentSource

    from evalkit.store.db import open_store
    from evalkit.store.reads import cases_with_scores

    with open_store(store) as st:
        cases = cases_with_scores(st, run_id)[:n]
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench-fluent")
    t0 = time.perf_counter()
    for c in cases:
        with mlflow.start_span(name=c["case_id"]) as span:
            span.set_inputs({"input": c["input"]})
            span.set_outputs(c["output"])
            tid = span.trace_id
        mlflow.log_expectation(trace_id=tid, name="expected_response", value=c["expected"])
        for s in c["scores"]:
            mlflow.log_feedback(trace_id=tid, name=s["name"], value=s["value"], rationale=s["rationale"],
                                source=AssessmentSource("CODE", s["name"]))
    return time.perf_counter() - t0


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="evalkit-bench-traces-"))
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        store = tmp / ".evalkit" / "evalkit.duckdb"
        run_id = make_run(store, N_CASES)
        embedded = f"sqlite:///{tmp / '.evalkit' / 'mlflow.db'}"
        from evalkit.tracking.uri import client

        template = tmp / "template.db"
        client(f"sqlite:///{template}").search_experiments(max_results=1)  # migrations, outside the timing
        shutil.copy(template, tmp / ".evalkit" / "mlflow.db")
        e_first, e_again, logged = timed_traces(store, run_id, embedded)
        f_s = fluent(embedded, store, run_id, N_FLUENT)
        server_root = tmp / "server"
        server_root.mkdir()
        proc, uri = start_server(server_root, template)
        try:
            s_first, s_again, s_logged = timed_traces(store, run_id, uri)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        print(json.dumps({
            "cases": logged, "embedded_cases_per_s": round(logged / e_first, 1),
            "server_cases_per_s": round(s_logged / s_first, 1), "embedded_s": round(e_first, 2),
            "server_s": round(s_first, 2), "embedded_repeat_s": round(e_again, 3), "server_repeat_s": round(s_again, 3),
            "fluent_cases": N_FLUENT, "fluent_embedded_cases_per_s": round(N_FLUENT / f_s, 1),
            "cores": os.cpu_count()}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
