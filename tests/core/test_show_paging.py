"""``evalkit show`` on a run of a few hundred cases: pages, footer totals from SQL, --failed, --all,
--json with a limit, and case ids printed whole."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

import evalkit
from evalkit.schema import Case
from evalkit.store import reads
from evalkit.store.db import Store
from tests.core.helpers import run_main

LONG_ID = "a-very-long-case-id-" + "0123456789" * 4  # 60 characters
N_CASES = 301  # case-0000 … case-0299, and LONG_ID


def target(question: str) -> str:
    if question.startswith("boom"):
        raise ValueError(f"cannot handle {question}")
    return question


def multiple_of_five_fails(case: Case, output: str) -> bool:
    return not case.id.startswith("case-") or int(case.id.removeprefix("case-")) % 5 != 0


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A stored run: every 37th case errors, every 5th fails a score, exact_match is n/a without ``expected``
    (every 3rd case has one, and passes it); LONG_ID passes."""
    store = tmp_path_factory.mktemp("show") / "s.duckdb"
    cases = [Case(id=f"case-{i:04d}", input=("boom " if i % 37 == 0 else "q ") + str(i),
                  expected=(("q " + str(i)) if i % 3 == 0 else None)) for i in range(300)]
    cases.append(Case(id=LONG_ID, input="long"))
    res = evalkit.evaluate(cases, target=target, scorers=[multiple_of_five_fails, "exact_match"], store=store,
                           mlflow=False, cache=False, tracing=False, max_error_rate=1.0)
    return store, res.run_id


@pytest.fixture
def show(run: tuple[Path, str], capsys: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``evalkit show RUN ARGS`` in process on a 200-column console: (exit code, stdout)."""
    store, run_id = run
    monkeypatch.setenv("EVALKIT_STORE", str(store))
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str, run_arg: str | None = None) -> tuple[int, str]:
        code, out, err = run_main(["show", run_arg or run_id, *args], capsys, monkeypatch)
        return code, out + err

    return invoke


@pytest.fixture(scope="module")
def expected(run: tuple[Path, str]) -> list[dict[str, Any]]:
    """Every case as the unpaged read returns it (failures first)."""
    store, run_id = run
    with Store(store, read_only=True) as st:
        return reads.cases_with_scores(st, run_id)


def table_ids(out: str) -> list[str]:
    """The case ids of a table's rows, in order."""
    ids = []
    for line in out.splitlines():
        cell = line.split("│")[1].strip() if line.startswith("│") else ""
        if cell:
            ids.append(cell)
    return ids


def footer(out: str) -> str:
    return out.rstrip("\n").splitlines()[-1]


def test_the_run_under_test_has_failures_errors_and_not_applicable(expected: list[dict[str, Any]]) -> None:
    failed = [c for c in expected if c["failed"]]
    assert len(expected) == N_CASES
    assert {c["outcome"] for c in failed} == {"completed", "errored"}
    assert any(s["outcome"] == "not_applicable" for c in expected if not c["failed"] for s in c["scores"])
    assert 0 < len(failed) < N_CASES - 100


def test_case_page_matches_the_unpaged_read(run: tuple[Path, str], expected: list[dict[str, Any]]) -> None:
    store, run_id = run
    n_failed = sum(c["failed"] for c in expected)
    with Store(store, read_only=True) as st:
        rows, total, failed_total = reads.case_page(st, run_id, limit=None)
        assert (rows, total, failed_total) == (expected, N_CASES, n_failed)
        assert reads.case_page(st, run_id, failed_only=True, limit=None)[0] == [c for c in expected if c["failed"]]
        page, total, failed_total = reads.case_page(st, run_id, limit=10, offset=n_failed - 5)
        assert page == expected[n_failed - 5:n_failed + 5] and (total, failed_total) == (N_CASES, n_failed)
        assert reads.case_page(st, run_id, limit=10, offset=N_CASES) == ([], N_CASES, n_failed)
        assert reads.case_counts(st, run_id) == (N_CASES, n_failed)
        with pytest.raises(ValueError):
            reads.case_page(st, run_id, offset=-1)


def test_default_shows_50_failures_first_with_a_footer(show: Any, run: tuple[Path, str],
                                                      expected: list[dict[str, Any]]) -> None:
    run_id = run[1]
    n_failed = sum(c["failed"] for c in expected)
    code, out = show(run_arg=run_id[:15])  # a prefix: the footer names the whole id
    assert code == 0, out
    assert table_ids(out) == [c["case_id"] for c in expected[:50]]
    assert footer(out) == (f"showing 1–50 of {N_CASES} cases ({n_failed} failed); "
                           f"next: evalkit show {run_id} --offset 50")


def test_following_next_pages_covers_every_case_once(show: Any, expected: list[dict[str, Any]]) -> None:
    seen: list[str] = []
    args = ["--limit", "40"]
    pages = 0
    while True:
        code, out = show(*args)
        assert code == 0, out
        seen += table_ids(out)
        pages += 1
        m = re.search(r"; next: (.*)$", footer(out))
        if m is None:
            break
        cmd = shlex.split(m.group(1))
        assert cmd[:2] == ["evalkit", "show"] and "--limit" in cmd
        args = cmd[3:]
    assert pages == 8  # 301 cases, 40 a page
    assert seen == [c["case_id"] for c in expected]  # each exactly once, failures first
    assert footer(out) == f"showing 281–301 of {N_CASES} cases ({sum(c['failed'] for c in expected)} failed)"


def test_json_offset_pages_partition_the_run(show: Any, expected: list[dict[str, Any]]) -> None:
    keys: list[tuple[str, int]] = []
    for offset in range(0, N_CASES + 60, 60):
        code, out = show("--json", "--limit", "60", "--offset", str(offset))
        assert code == 0, out
        data = json.loads(out)
        assert (data["total"], data["offset"], data["limit"]) == (N_CASES, offset, 60)
        assert len(data["cases"]) == min(60, max(0, N_CASES - offset))
        keys += [(c["case_id"], c["repeat"]) for c in data["cases"]]
    assert len(keys) == len(set(keys)) == N_CASES
    assert keys == [(c["case_id"], c["repeat"]) for c in expected]


def test_failed_counts_and_pages(show: Any, run: tuple[Path, str], expected: list[dict[str, Any]]) -> None:
    failed = [c for c in expected if c["failed"]]
    code, out = show("--failed", "--limit", "20")
    assert code == 0, out
    assert table_ids(out) == [c["case_id"] for c in failed[:20]]
    assert footer(out) == (f"showing 1–20 of {len(failed)} failed cases (of {N_CASES}); "
                           f"next: evalkit show {run[1]} --failed --limit 20 --offset 20")
    data = json.loads(show("--failed", "--json", "--all")[1])
    assert data["cases"] == json.loads(json.dumps(failed, default=str))
    assert data["failed_total"] == len(failed) and all(c["failed"] for c in data["cases"])
    assert not any(c["failed"] for c in json.loads(show("--json", "--offset", str(len(failed)))[1])["cases"])


def test_all_prints_every_case_without_next(show: Any, expected: list[dict[str, Any]]) -> None:
    code, out = show("--all")
    assert code == 0, out
    assert table_ids(out) == [c["case_id"] for c in expected]
    assert footer(out) == f"showing 1–301 of {N_CASES} cases ({sum(c['failed'] for c in expected)} failed)"
    code, out = show("--all", "--limit", "5")
    assert code == 2 and "--all" in out


def test_json_honours_the_limit(show: Any, expected: list[dict[str, Any]]) -> None:
    default = json.loads(show("--json")[1])
    assert len(default["cases"]) == 50 and default["limit"] == 50
    assert [c["case_id"] for c in default["cases"]] == [c["case_id"] for c in expected[:50]]
    small = json.loads(show("--json", "--limit", "7", "--offset", "3")[1])
    assert [c["case_id"] for c in small["cases"]] == [c["case_id"] for c in expected[3:10]]
    assert small["cases"][0]["scores"] and "input" in small["cases"][0]
    assert len(json.loads(show("--json", "--all")[1])["cases"]) == N_CASES


def test_past_the_end_says_so(show: Any, expected: list[dict[str, Any]]) -> None:
    code, out = show("--offset", "1000")
    assert code == 0, out
    n_failed = sum(c["failed"] for c in expected)
    assert footer(out) == f"no cases at offset 1,000; the run has {N_CASES} cases ({n_failed} failed)"
    assert show("--limit", "0")[0] == 2 and show("--offset", "-1")[0] == 2


@pytest.mark.parametrize("columns", ["200", "80", "40"])
def test_a_60_character_case_id_is_printed_whole(show: Any, monkeypatch: pytest.MonkeyPatch, columns: str,
                                                expected: list[dict[str, Any]]) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    offset = next(i for i, c in enumerate(expected) if c["case_id"] == LONG_ID)
    code, out = show("--offset", str(offset - 2), "--limit", "5")
    assert code == 0, out
    assert len(LONG_ID) == 60
    row = next(line for line in out.splitlines() if LONG_ID in line)  # whole, on one line
    assert row.startswith(f"│ {LONG_ID} │")
    assert LONG_ID in table_ids(out)
    assert all("…" not in i for i in table_ids(out))
    for name in ("multiple_of_five_fails", "exact_match"):  # the other columns are still there
        assert name in out or name[:8] in out
