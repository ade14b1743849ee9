"""evalkit without litellm (the ``llm`` extra not installed).

Each test runs evalkit in a fresh interpreter whose ``sitecustomize`` puts a meta-path finder in
front that refuses ``litellm`` and its submodules, as if the package were not installed. Everything
that calls no real provider works; a suite naming a provider model stops up front with one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fakes.isolated import REPO, isolated_env

DEMO = REPO / "datasets" / "demo" / "suite.yaml"
NEEDS = "needs litellm, which is not installed: pip install 'evalkit[llm]'"

BLOCKER = '''
"""Test hook: make litellm unimportable, as if it were not installed."""
import sys


class _NoLitellm:
    def find_spec(self, name, path=None, target=None):
        if name == "litellm" or name.startswith("litellm."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, _NoLitellm())
'''
CASES = "".join(json.dumps(c) + "\n" for c in [
    {"id": "a", "input": "hello there", "expected": "hello there"},
    {"id": "b", "input": "good bye", "expected": "good bye"},
    {"id": "c", "input": "see you", "expected": "see you"},
])
MOCK_SUITE = """\
name: mock-judged
dataset: cases.jsonl
target: {model: mock/echo}
scorers:
  - exact_match
  - correctness:
      model: mock/judge-pass
thresholds:
  - exact_match/pass_rate >= 1.0
  - correctness/pass_rate >= 1.0
"""
REAL_JUDGE_SUITE = """\
name: real-judged
dataset: cases.jsonl
target: {model: mock/echo}
scorers:
  - exact_match
  - correctness:
      model: openai/gpt-4o-mini
"""


def _env(ws: Path, *, blocked: bool = True, **extra: str) -> dict[str, str]:
    return isolated_env(ws, hook=BLOCKER if blocked else None, name="_no_litellm") | extra


def _python(ws: Path, code: str, *, blocked: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ws, env=_env(ws, blocked=blocked, **extra),
                          capture_output=True, text=True, timeout=600)


def _evalkit(ws: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalkit.cli.app", *args], cwd=ws, env=_env(ws, **extra),
                          capture_output=True, text=True, timeout=600)


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "litellm" not in proc.stderr.replace(NEEDS, ""), proc.stderr  # no traceback through an import
    return proc


def _run_ids(ws: Path) -> list[str]:
    if not (ws / ".evalkit" / "evalkit.duckdb").exists():
        return []
    return [r["run_id"] for r in json.loads(_ok(_evalkit(ws, "runs", "--json")).stdout)]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "cases.jsonl").write_text(CASES)
    return tmp_path


def test_the_hook_makes_litellm_unimportable(ws: Path) -> None:
    proc = _python(ws, """
        import importlib.util
        try:
            import litellm  # noqa: F401
        except ModuleNotFoundError as exc:
            print("blocked:", exc.name)
        else:
            raise SystemExit("litellm was imported")
        try:
            import litellm.utils  # noqa: F401
        except ModuleNotFoundError:
            print("submodule blocked")
        from evalkit.llm.availability import litellm_available
        print("available:", litellm_available())
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["blocked: litellm", "submodule blocked", "available: False"]
    unblocked = _python(ws, "from evalkit.llm.availability import litellm_available; print(litellm_available())",
                        blocked=False)
    assert unblocked.stdout.strip() == "True", unblocked.stderr  # the test venv has litellm: the hook does the work


def test_the_demo_runs_to_its_gate_verdict_and_its_optional_judges_are_skipped(ws: Path) -> None:
    # README's first command, as it is: MLflow logging (embedded store) and tracing on
    run = _ok(_evalkit(ws, "run", str(DEMO), "--json"))
    out = json.loads(run.stdout)
    assert out["gate"]["status"] == "passed"
    assert out["summary"]["cases"] == 29
    assert {s["name"] for s in out["summary"]["scorers"]} == {"key_facts", "tool_calls", "concise", "latency"}
    assert "optional scorer correctness" in run.stderr and "skipped" in run.stderr
    run_id = out["run_id"]
    _ok(_evalkit(ws, "show", run_id))
    _ok(_evalkit(ws, "report", run_id, "-o", "report.html"))
    assert (ws / "report.html").stat().st_size > 1000
    _ok(_evalkit(ws, "leaderboard"))
    # a provider key in the environment does not make the optional judges errors: they are skipped, saying why
    keyed = _ok(_evalkit(ws, "run", str(DEMO), "--json", "--no-mlflow", "--no-trace", OPENAI_API_KEY="sk-dummy"))
    assert json.loads(keyed.stdout)["gate"]["status"] == "passed"
    assert f"judge model 'openai/gpt-4o-mini' {NEEDS}; skipped" in keyed.stderr


def test_a_suite_with_a_mock_judge_and_the_catalogue_and_cache_commands(ws: Path) -> None:
    (ws / "suite.yaml").write_text(MOCK_SUITE)
    out = json.loads(_ok(_evalkit(ws, "run", "suite.yaml", "--json", "--no-mlflow")).stdout)
    assert out["gate"]["status"] == "passed"
    scorers = {s["name"]: s for s in out["summary"]["scorers"]}
    assert scorers["correctness"]["pass_rate"] == 1.0 and scorers["correctness"]["errors"] == 0
    assert out["summary"]["tokens_total"] > 0 and out["summary"]["cost_usd_total"] == 0  # mock accounting, no cost map
    stats = json.loads(_ok(_evalkit(ws, "cache", "stats", "--json")).stdout)
    assert stats["models"] == {"mock/echo": 3, "mock/judge-pass": 3}
    again = json.loads(_ok(_evalkit(ws, "run", "suite.yaml", "--json", "--no-mlflow")).stdout)
    assert again["gate"]["status"] == "passed"  # served from the cache
    assert "removed 6 cached responses" in _ok(_evalkit(ws, "cache", "clear")).stdout
    _ok(_evalkit(ws, "scorers"))
    _ok(_evalkit(ws, "judges"))
    assert "exact_match" in {r["name"] for r in json.loads(_ok(_evalkit(ws, "scorers", "--json")).stdout)}
    assert "correctness" in {r["name"] for r in json.loads(_ok(_evalkit(ws, "judges", "--json")).stdout)}
    assert json.loads(_ok(_evalkit(ws, "judges", "correctness", "--json")).stdout)["name"] == "correctness"


def test_a_provider_judge_or_target_stops_before_any_case_with_one_line(ws: Path) -> None:
    (ws / "suite.yaml").write_text(MOCK_SUITE)
    _ok(_evalkit(ws, "run", "suite.yaml", "--no-mlflow"))
    before = _run_ids(ws)
    assert len(before) == 1
    (ws / "real.yaml").write_text(REAL_JUDGE_SUITE)
    proc = _evalkit(ws, "run", "real.yaml", OPENAI_API_KEY="sk-dummy")  # the credential check passes
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: real.yaml:6: judge model 'openai/gpt-4o-mini' {NEEDS}"]
    assert "planned" not in proc.stdout
    # a model target, and an OpenAI-compatible endpoint (api_base), go through litellm too
    (ws / "target.yaml").write_text("name: t\ndataset: cases.jsonl\n"
                                    "target: {model: anthropic/claude-3-5-haiku-latest, prompt: '{input}'}\n"
                                    "scorers: [exact_match]\n")
    proc = _evalkit(ws, "run", "target.yaml", ANTHROPIC_API_KEY="sk-dummy")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: target.yaml:3: target model 'anthropic/claude-3-5-haiku-latest' {NEEDS}"]
    (ws / "local.yaml").write_text("name: l\ndataset: cases.jsonl\n"
                                   "target: {model: openai/local, api_base: 'http://127.0.0.1:9/v1'}\n"
                                   "scorers: [exact_match]\n")
    proc = _evalkit(ws, "run", "local.yaml")
    assert proc.returncode == 2 and f"target model 'openai/local' {NEEDS}" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    # EVALKIT_JUDGE_MODEL names the judge model for the built-in judges
    proc = _evalkit(ws, "run", "suite.yaml", EVALKIT_JUDGE_MODEL="gpt-4o", OPENAI_API_KEY="sk-dummy")
    assert proc.returncode == 0, proc.stderr  # the suite's own model: mock/judge-pass wins over the variable
    assert _run_ids(ws) != before
    before = _run_ids(ws)
    (ws / "default.yaml").write_text(MOCK_SUITE.replace("  - correctness:\n      model: mock/judge-pass\n",
                                                        "  - correctness\n"))
    proc = _evalkit(ws, "run", "default.yaml", EVALKIT_JUDGE_MODEL="gpt-4o", OPENAI_API_KEY="sk-dummy")
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: default.yaml:6: judge model 'gpt-4o' {NEEDS}"
    assert _run_ids(ws) == before  # nothing was stored


def test_python_api_targets_and_scorers_are_checked_when_the_run_is_planned(ws: Path) -> None:
    proc = _python(ws, """
        import evalkit
        from evalkit.errors import UserError
        from evalkit.judging import judge_scorer
        from evalkit.targets.base import Target

        async def call(case):
            return case.input_text

        cases = [{"id": "a", "input": "x", "expected": "x"}]
        for target, scorers in [
            (Target(name="t", call=call, models=["openai/gpt-4o-mini"]), ["exact_match"]),
            (lambda q: q, [judge_scorer("correctness", model="openai/gpt-4o-mini")]),  # built outside a suite
            (lambda q: q, [{"correctness": {"model": "openai/gpt-4o-mini"}}]),
        ]:
            try:
                evalkit.evaluate(cases, target=target, scorers=scorers, mlflow=False, tracing=False)
            except UserError as exc:
                print(exc.message)
            else:
                print("ran")
        print(evalkit.evaluate(cases, target=lambda q: q, scorers=["exact_match"], mlflow=False).gate.status)
    """, OPENAI_API_KEY="sk-dummy")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines() == [
        f"target model 'openai/gpt-4o-mini' {NEEDS}",
        f"judge model 'openai/gpt-4o-mini' {NEEDS}",
        f"judge model 'openai/gpt-4o-mini' {NEEDS}",
        "passed",
    ]
    assert len(_run_ids(ws)) == 1  # only the last run was stored


def test_the_pytest_plugin_with_a_mock_judge(ws: Path) -> None:
    (ws / "suite.yaml").write_text(MOCK_SUITE)
    (ws / "pytest.ini").write_text("[pytest]\n")
    (ws / "test_mock_judged.py").write_text(textwrap.dedent('''
        from evalkit.testing import cases


        @cases("suite.yaml")
        def test_case(case, evaluate):
            assert evaluate(case).passed
    '''))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--evalkit-no-mlflow"],
                          cwd=ws, env=_env(ws), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout
    assert len(_run_ids(ws)) == 1


def test_a_mock_judged_run_never_imports_litellm_even_when_installed(ws: Path) -> None:
    (ws / "suite.yaml").write_text(MOCK_SUITE)
    proc = _python(ws, """
        import json, sys
        import evalkit

        run = evalkit.evaluate("suite.yaml", mlflow=False)
        print(json.dumps({"gate": run.gate.status, "litellm": "litellm" in sys.modules}))
    """, blocked=False, OPENAI_API_KEY="sk-dummy")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"gate": "passed", "litellm": False}


def test_in_process_the_facade_says_litellm_is_missing_and_mocks_need_none(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from evalkit.errors import UserError
    from evalkit.llm import availability, facade

    monkeypatch.setattr(facade, "_litellm_mod", None)
    monkeypatch.setitem(sys.modules, "litellm", None)  # `import litellm` now fails, as if not installed
    assert availability.litellm_available() is False
    assert availability.missing_litellm_hint("mock/echo") is None
    assert availability.missing_litellm_hint("gpt-4o", "judge model") == f"judge model 'gpt-4o' {NEEDS}"
    with pytest.raises(UserError, match=r"model 'openai/gpt-4o-mini' needs litellm"):
        facade._litellm("openai/gpt-4o-mini")  # the last line of defence, should a call get this far
    facade.warm_up(["openai/gpt-4o-mini", "mock/echo"])  # nothing to warm: the plan said so already
    assert facade.supports_json_schema.__wrapped__("openai/gpt-4o-mini") is False
    assert facade.missing_credentials("openai/gpt-4o-mini") == []
    comp = asyncio.run(facade.complete("mock/echo", [{"role": "user", "content": "two words"}], cache=False))
    assert (comp.text, comp.input_tokens, comp.output_tokens, comp.cost_usd) == ("two words", 2, 2, 0.0)
