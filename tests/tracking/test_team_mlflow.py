"""A team's MLflow: a real `mlflow server` whose backend store is PostgreSQL, fed by `evalkit run`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EVALKIT, REPO
from tests.fakes.postgres import PostgresServer
from tests.tracking._mlflow_server import mlflow_server_process

pytestmark = [pytest.mark.team_store, pytest.mark.mlflow_server]

SUITE = REPO / "datasets" / "demo" / "suite.yaml"  # offline, deterministic agent; optional LLM judges skip


class TeamMlflow:
    def __init__(self, uri: str, backend: str, root: Path) -> None:
        self.uri, self.backend, self.root = uri, backend, root

    def log_tail(self) -> str:
        """The server log's tail, for failure messages."""
        try:
            return "--- mlflow server log (tail) ---\n" + (self.root / "server.log").read_text(errors="replace")[-3000:]
        except OSError:
            return "(no mlflow server log)"


@pytest.fixture(scope="module")
def team_mlflow(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamMlflow]:
    """`mlflow server --backend-store-uri postgresql://...` on loopback, artifacts proxied to a temp dir."""
    backend = postgres_server.create_database()
    root = tmp_path_factory.mktemp("team-mlflow")
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the `server` extra installs psycopg2
    with mlflow_server_process(backend.replace("postgresql://", "postgresql+psycopg2://", 1), root) as uri:
        yield TeamMlflow(uri, backend, root)


def _run_cmd(workdir: Path, team: str) -> list[str]:
    return [*EVALKIT, "run", str(SUITE), "--store", str(workdir / "evalkit.duckdb"), "--team", team, "--json",
            "--no-trace", "--no-cache"]


def _env(uri: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "EVALKIT_NO_MLFLOW"}
    return {**env, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": uri}


def _result(server: TeamMlflow, proc: subprocess.CompletedProcess[str] | tuple[int, str, str]) -> dict[str, Any]:
    code, out, err = (proc.returncode, proc.stdout, proc.stderr) if not isinstance(proc, tuple) else proc
    assert code == 0, f"evalkit run exited {code}:\n{out[-2000:]}\n{err[-3000:]}\n{server.log_tail()}"
    res: dict[str, Any] = json.loads(out)
    assert res["status"] == "completed" and res["mlflow_run_id"], f"{res}\n{err[-3000:]}\n{server.log_tail()}"
    return res


def _notes(out: str) -> list[str]:
    try:
        return [str(n) for n in json.loads(out).get("notes", [])]
    except (ValueError, AttributeError):
        return []


def _runs(uri: str, experiment: str) -> list[Any]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} on {uri}"
    return list(client.search_runs([exp.experiment_id]))


def _pg_count(url: str, sql: str) -> int:
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def test_evalkit_run_lands_on_a_postgres_backed_server(team_mlflow: TeamMlflow, workspace: Path) -> None:
    res = _result(team_mlflow, subprocess.run(_run_cmd(workspace, "solo"), cwd=workspace, env=_env(team_mlflow.uri),
                                 capture_output=True, text=True, timeout=600))

    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=team_mlflow.uri).get_run(res["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags.get("evalkit.run_id") == res["run_id"]
    logged = run.data.metrics
    for name in ("cases", "errors/rate", "key_facts/pass_rate", "tool_calls/pass_rate", "concise/mean"):
        assert logged.get(name) == pytest.approx(res["metrics"][name], abs=1e-4), (name, logged)  # logged at 4 d.p.
    assert logged["cases"] == 29 and logged["key_facts/pass_rate"] > 0.5
    assert [r.info.run_id for r in _runs(team_mlflow.uri, "solo/it-support-demo")] == [res["mlflow_run_id"]]
    # the server's tables really are in PostgreSQL, and hold this run
    assert _pg_count(team_mlflow.backend, "SELECT count(*) FROM runs") >= 1
    assert _pg_count(team_mlflow.backend, f"SELECT count(*) FROM runs WHERE run_uuid = '{res['mlflow_run_id']}'") == 1
    assert not (workspace / "mlflow.db").exists() and not (workspace / ".evalkit" / "mlflow.db").exists()


def test_two_concurrent_runs_both_land(team_mlflow: TeamMlflow, workspace: Path) -> None:
    dirs = [workspace / "a", workspace / "b"]
    procs = []
    for d in dirs:
        d.mkdir()
        procs.append(subprocess.Popen(_run_cmd(d, "conc"), cwd=d, env=_env(team_mlflow.uri), text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    finished = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        finished.append((p.returncode if p.returncode is not None else -1, out, err))
    race = [n for _code, out, _err in finished for n in _notes(out) if "MLflow logging failed" in n]
    assert not race, race  # MLflow's dataset_pk race on concurrent log_inputs is retried (mlflow_log._log_inputs)
    results = [_result(team_mlflow, f) for f in finished]
    ids = {r["mlflow_run_id"] for r in results}
    assert len(ids) == 2, results
    runs = _runs(team_mlflow.uri, "conc/it-support-demo")
    seen = [(r.info.run_id, r.info.status) for r in runs]
    assert {r.info.run_id for r in runs} == ids and all(r.info.status == "FINISHED" for r in runs), \
        f"{seen} vs {ids}\n{team_mlflow.log_tail()}"
    assert {r.data.tags.get("evalkit.run_id") for r in runs} == {r["run_id"] for r in results}
    placeholders = ",".join(f"'{i}'" for i in sorted(ids))
    assert _pg_count(team_mlflow.backend, f"SELECT count(*) FROM runs WHERE run_uuid IN ({placeholders})") == 2


def test_the_team_set_up_mlflow_server_and_shared_store_side_by_side(team_mlflow: TeamMlflow, team_store_url: str,
                                                                      tmp_path: Path) -> None:
    """Two "machines" (directories): one runs into the team MLflow server and the team store with traces on,
    the other reads the same run's cases and trace from the store and finds its MLflow run."""
    ci, laptop = tmp_path / "ci", tmp_path / "laptop"
    ci.mkdir()
    laptop.mkdir()
    env = {**_env(team_mlflow.uri), "EVALKIT_STORE": team_store_url}
    res = _result(team_mlflow, subprocess.run([*EVALKIT, "run", str(SUITE), "--team", "shared", "--json"], cwd=ci,
                                              env=env, capture_output=True, text=True, timeout=600))
    shown = subprocess.run([*EVALKIT, "show", res["run_id"], "--json", "--all"], cwd=laptop, env=env,
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["total"] == 29
    traced = subprocess.run([*EVALKIT, "sql", "SELECT count(DISTINCT trace_id) AS n FROM spans WHERE run_id = "
                             f"'{res['run_id']}'", "--json"], cwd=laptop, env=env, capture_output=True, text=True,
                            timeout=300)
    assert traced.returncode == 0 and json.loads(traced.stdout)[0]["n"] == 29, traced.stderr
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=team_mlflow.uri).get_run(res["mlflow_run_id"])
    assert run.data.tags["evalkit.run_id"] == res["run_id"]
    password = team_store_url.split("//")[1].split("@")[0].split(":")[1]
    assert password not in json.dumps(run.to_dictionary())  # the store's URL reaches MLflow redacted, if at all
    assert not (ci / ".evalkit" / "evalkit.duckdb").exists()  # nothing went to a local file
