"""Team store URLs: parsed, checked and redacted before any connection (no PostgreSQL needed)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from evalkit.errors import StoreError, UserError
from evalkit.store import lake
from evalkit.store.db import TEAM_ANCHOR, Store, local_anchor
from tests.conftest import evalkit_cli


def test_a_url_is_parsed_into_libpq_parts() -> None:
    url = lake.parse_url("ducklake+postgresql://ana:p%40ss@db.internal:6543/evals?data_path=/mnt/lake")
    assert (url.host, url.port, url.dbname, url.user, url.password, url.data_path) == (
        "db.internal", 6543, "evals", "ana", "p@ss", "/mnt/lake")
    assert url.conninfo() == "dbname='evals' host='db.internal' port='6543' user='ana' password='p@ss'"
    assert "p@ss" not in url.label and "p%40ss" not in url.label


def test_a_path_that_collapsed_the_slashes_is_still_the_url() -> None:
    """``--store`` arrives as a Path, which turns ``://`` into ``:/``."""
    text = "ducklake+postgresql://ana@db/evals?data_path=/mnt/lake"
    assert lake.is_store_url(Path(text))
    assert lake.parse_url(Path(text)) == lake.parse_url(text)
    assert local_anchor(Path(text)) == TEAM_ANCHOR and local_anchor("x/e.duckdb") == Path("x/e.duckdb")


@pytest.mark.parametrize(("text", "says"), [
    ("ducklake+postgresql:///evals", "needs a host and a database name"),
    ("ducklake+postgresql://db", "needs a host and a database name"),
    ("ducklake+postgresql://db/evals?datapath=/x", "unknown parameter 'datapath'"),
    ("ducklake+postgresql://db:port/evals", "the port is not a number"),
    ("postgresql://ana:hunter2@db/evals", "starts with ducklake+postgresql://"),
    ("s3://bucket/evalkit.duckdb", "starts with ducklake+postgresql://"),
])
def test_bad_urls_say_what_is_wrong_without_the_password(text: str, says: str) -> None:
    with pytest.raises(UserError) as err:
        Store(text)
    assert says in str(err.value)
    assert "hunter2" not in str(err.value)


def test_a_missing_extension_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lake.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"evalkit\[team\]"):
        lake.extension_files()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_catalog_is_one_line_without_the_password() -> None:
    url = f"ducklake+postgresql://ana:hunter2@127.0.0.1:{_closed_port()}/evals?data_path=/tmp/x"
    with pytest.raises(StoreError) as err:
        Store(url, read_only=True)
    text = str(err.value)
    assert "cannot reach the team store's catalog" in text and "\n" not in text
    assert "hunter2" not in text and "[REDACTED]" in text


def test_the_cli_says_so_in_one_line_and_exits_3(tmp_path: Path) -> None:
    url = f"ducklake+postgresql://ana:hunter2@127.0.0.1:{_closed_port()}/evals"
    r = evalkit_cli(tmp_path, "runs", "--store", url)
    assert r.returncode == 3, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "hunter2" not in r.stderr + r.stdout
    r = evalkit_cli(tmp_path, "runs", "--store", "postgresql://ana:hunter2@db/evals")
    assert r.returncode == 2 and "ducklake+postgresql://" in r.stderr and "hunter2" not in r.stderr


def test_conflicts_are_retried_and_other_errors_are_not() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("TransactionContext Error: Failed to commit DuckLake transaction. Transaction conflict")
        return "done"
    assert lake.retrying(flaky, label="x", wait_s=5) == "done" and len(calls) == 3

    def crowded() -> str:  # DuckLake retried the commit itself and gave up: many writers committing at once
        calls.append(1)
        if len(calls) < 5:
            raise RuntimeError("TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\n"
                               "Exceeded the maximum retry count of 10 set by the ducklake_max_retry_count setting.")
        return "done"
    assert lake.retrying(crowded, label="x", wait_s=5) == "done" and len(calls) == 5

    def broken() -> None:
        raise RuntimeError("Catalog Error: no such table")
    with pytest.raises(RuntimeError, match="no such table"):
        lake.retrying(broken, label="x", wait_s=5)

    def always() -> None:
        raise RuntimeError("Transaction conflict")
    with pytest.raises(StoreError, match="kept conflicting"):
        lake.retrying(always, label="x", wait_s=0.05)
