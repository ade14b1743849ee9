"""Statement parameters written in as SQL literals (evalkit/store/literals.py)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import duckdb
import pytest

from evalkit.store.literals import _Unsupported, inline, literal
from tests.fakes.isolated import imported_by

VALUES: list[Any] = [
    None, True, False, 0, -7, 2**62, 2**70, 0.1, -1e-300, 1.7976931348623157e308, float("inf"), float("-inf"),
    "", "plain", "it's", "''", "a\\'; DROP TABLE t; --", "é ☃ 漢字 🙂", "line\nbreak\ttab", "? $1 $name -- /* */",
    datetime(2026, 12, 3, 15, 0, 0, 123456, tzinfo=UTC), datetime(2026, 12, 3, 15, 0, 0),
    datetime(2026, 12, 3, 15, 0, tzinfo=timezone(timedelta(hours=-5))), date(2026, 12, 3),
    ["a", "b's"], [], [1, 2, 3],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_literal_reads_back_as_the_bound_value(value: Any) -> None:
    con = duckdb.connect()
    sql, params = inline("SELECT ?", [value])
    assert params is None and sql == "SELECT " + literal(value)
    got = con.execute(sql).fetchone()[0]  # type: ignore[index]
    if isinstance(value, datetime) and value.tzinfo is not None:
        assert got == value  # the same instant (DuckDB answers in its own time zone)
    else:
        assert got == value and type(got) is type(value)


def test_nan_reads_back_as_nan() -> None:
    sql, params = inline("SELECT ?", [float("nan")])
    assert params is None
    assert math.isnan(duckdb.connect().execute(sql).fetchone()[0])  # type: ignore[index]


def test_text_cannot_leave_its_literal() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (a VARCHAR)")
    hostile = "x'); DROP TABLE t; SELECT ('"
    con.execute(*inline("INSERT INTO t VALUES (?)", [hostile]))
    assert con.execute("SELECT a FROM t").fetchall() == [(hostile,)]


def test_placeholders_in_quotes_and_comments_are_left_alone() -> None:
    sql, params = inline("SELECT '?', \"a?\" -- ?\n, ? /* ? $x */", ["v"])
    assert params is None
    assert sql == "SELECT '?', \"a?\" -- ?\n, 'v' /* ? $x */"


def test_dollar_quoted_text_is_left_alone() -> None:
    assert inline("SELECT $$it's $run ?$$, $run", {"run": "r1"}) == ("SELECT $$it's $run ?$$, 'r1'", None)


def test_named_and_numbered_placeholders() -> None:
    assert inline("SELECT $run, $run", {"run": "r1"}) == ("SELECT 'r1', 'r1'", None)
    assert inline("SELECT $2, $1", ["a", "b"]) == ("SELECT 'b', 'a'", None)


@pytest.mark.parametrize(("sql", "params"), [
    ("SELECT ?", [b"bytes"]),  # a type DuckDB binds itself
    ("SELECT ?", [{"k": 1}]),
    ("SELECT ?", [("a", "b")]),
    ("SELECT ?", ["nul\x00inside"]),  # DuckDB's parser ends a literal at NUL
    ("SELECT ?", ["\udcff"]),  # not valid Unicode
    ("SELECT ?, ?", ["one"]),  # too few parameters: DuckDB says so
    ("SELECT ?", ["one", "two"]),  # too many
    ("SELECT $missing", {"run": "r"}),
    ("SELECT ?1", ["a"]),
])
def test_what_this_module_does_not_write_is_left_to_duckdb(sql: str, params: Any) -> None:
    assert inline(sql, params) == (sql, params)


def test_no_parameters_leave_the_statement_as_it_is() -> None:
    assert inline("SELECT 1", None) == ("SELECT 1", None)
    assert inline("SELECT 1", []) == ("SELECT 1", [])


def test_an_unsupported_value_is_refused_by_literal() -> None:
    with pytest.raises(_Unsupported):
        literal(object())


def test_store_queries_and_bulk_inserts_import_no_pandas_or_pyarrow(tmp_path: Any) -> None:
    # DuckDB's client imports both (and NumPy) to bind a Python value or to look at an object it is
    # asked to register (0.6 s and ~85 MB per process).
    code = (
        "import polars as pl\n"
        "from datetime import UTC, datetime\n"
        "from evalkit.store.db import open_store\n"
        f"st = open_store({str(tmp_path / 's.duckdb')!r})\n"
        "st.create_run({'run_id': 'r1', 'suite': 's', 'status': 'running', 'started_at': datetime.now(UTC)})\n"
        "assert st.execute('SELECT suite FROM runs WHERE run_id = ?', ['r1']) == [('s',)]\n"
        "assert st.frame('SELECT run_id FROM runs WHERE suite = $s', {'s': 's'}, large=True).height == 1\n"
        "assert st.query('SELECT count(*) AS n FROM runs WHERE run_id = ? AND suite = ?', ['r1', 's']) == [{'n': 1}]\n"
        "st.insert_frame('runs', pl.DataFrame({'run_id': ['r2'], 'suite': ['s'], 'status': ['running']}))\n"
        "assert st.execute('SELECT count(*) FROM runs')[0][0] == 2\n"
        "st.close()\n"
    )
    assert imported_by(code, ("pandas", "pyarrow"))[1] == []
