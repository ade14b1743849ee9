"""The throwaway PostgreSQL server the team-store tests run against (tests/fakes/postgres.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fakes.postgres import PostgresServer, available

pytestmark = pytest.mark.team_store

REPO = Path(__file__).resolve().parents[2]


def _scalar(url: str, sql: str) -> object:
    import psycopg2

    with psycopg2.connect(url, connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute(sql)
        row = cur.fetchone()
    conn.close()
    return row[0] if row else None


def test_answers_select_1_with_the_password(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    assert parts.hostname == "127.0.0.1" and parts.username == "evalkit" and parts.password
    assert _scalar(postgres_url, "SELECT 1") == 1
    assert _scalar(postgres_url, "SHOW listen_addresses") == "127.0.0.1"
    assert _scalar(postgres_url, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is True


def test_refuses_a_wrong_password(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg2

    bad = postgres_server.url("postgres").replace(f":{postgres_server.password}@", ":not-the-password@")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(bad, connect_timeout=10)
    no_password = postgres_server.url("postgres").replace(f":{postgres_server.password}@", "@")
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(no_password, connect_timeout=10, passfile=os.devnull)


def test_fresh_databases_are_distinct(postgres_server: PostgresServer) -> None:
    import psycopg2

    a, b = postgres_server.create_database(), postgres_server.create_database()
    assert a != b
    assert _scalar(a, "SELECT current_database()") == urlsplit(a).path.lstrip("/")
    assert _scalar(b, "SELECT current_database()") == urlsplit(b).path.lstrip("/")
    conn = psycopg2.connect(a)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE only_in_a (x int)")
    conn.close()
    assert _scalar(a, "SELECT to_regclass('only_in_a') IS NOT NULL") is True
    assert _scalar(b, "SELECT to_regclass('only_in_a') IS NOT NULL") is False


def test_team_store_url_names_a_fresh_database_and_lake(team_store_url: str, tmp_path: Path) -> None:
    from evalkit.store.lake import parse_url

    lake = parse_url(team_store_url)
    assert (lake.host, lake.user, lake.data_path) == ("127.0.0.1", "evalkit", str(tmp_path / "lake"))
    assert Path(lake.data_path or "").is_dir()
    plain = team_store_url.removeprefix("ducklake+").split("?", 1)[0]
    assert _scalar(plain, "SELECT current_database()") == lake.dbname


# -- without PostgreSQL: a clear reason, a skip (or, in CI, a failure) ----------------------------------


def test_an_empty_bindir_gives_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_PG_BINDIR", str(tmp_path))
    reason = available()
    assert reason is not None and "initdb" in reason and str(tmp_path) in reason and "\n" not in reason
    with pytest.raises(RuntimeError, match="EVALKIT_PG_BINDIR"):
        PostgresServer()


def _pytest_without_binaries(tmp_path: Path, require: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("EVALKIT_REQUIRE_TEAM_STORE", "PYTEST_XDIST_WORKER")}
    env["EVALKIT_PG_BINDIR"] = str(tmp_path)  # an empty directory: no server binaries
    if require:
        env["EVALKIT_REQUIRE_TEAM_STORE"] = "1"
    node = f"{Path(__file__).relative_to(REPO)}::test_answers_select_1_with_the_password"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsE", "-p", "no:cacheprovider", "-p", "no:xdist",
                           node], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_skips_with_the_reason_without_binaries(tmp_path: Path) -> None:
    res = _pytest_without_binaries(tmp_path, require=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 skipped" in res.stdout and "no PostgreSQL server binaries" in res.stdout, res.stdout


def test_fails_without_binaries_when_required(tmp_path: Path) -> None:
    res = _pytest_without_binaries(tmp_path, require=True)
    assert res.returncode != 0, res.stdout
    assert "1 error" in res.stdout and "EVALKIT_REQUIRE_TEAM_STORE=1" in res.stdout, res.stdout
    assert "no PostgreSQL server binaries" in res.stdout, res.stdout
