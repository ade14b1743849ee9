"""evalkit as a pytest plugin: eval suites as test modules, one evalkit run per session.

- ``@evalkit.cases("suite.yaml")`` parametrises a test over a suite's (or dataset's) cases;
- the ``evaluate`` fixture scores a case with the suite's scorers through evalkit's runner;
- at the end of the session the plugin writes one run to the store (merging xdist shards),
  prints its summary, logs it to MLflow and applies the suites' thresholds as a gate.

Registered through the ``pytest11`` entry point. Until a test uses ``@evalkit.cases`` or the
``evaluate`` fixture it does nothing: no evalkit module is imported and no file is touched.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from evalkit.pipeline.finished import FinishedRun
    from evalkit.schema import Case
    from evalkit.testing.cases import CaseSource
    from evalkit.testing.evaluator import Evaluator
    from evalkit.testing.finish import Session
    from evalkit.testing.recorder import Recorder



def _leave_evalkit_unrewritten() -> None:
    """Take evalkit off pytest's list of packages whose asserts it rewrites on import.

    pytest marks every top-level package of a plugin's distribution, so each evalkit module the
    run imports (~120) was parsed and rewritten, then compiled again: ~1.5 s a session wherever
    bytecode is not cached (``PYTHONDONTWRITEBYTECODE``, read-only installs, a first run). evalkit
    fails tests with explicit ``AssertionError`` messages, so rewriting its modules buys nothing;
    test files and conftests are rewritten as before. (pytest keeps the list in a private set: if
    that ever changes, nothing happens here.)
    """
    for finder in sys.meta_path:
        must = getattr(finder, "_must_rewrite", None)
        if type(finder).__name__ == "AssertionRewritingHook" and isinstance(must, set) and "evalkit" in must:
            must.discard("evalkit")
            cache = getattr(finder, "_marked_for_rewrite_cache", None)
            if isinstance(cache, dict):
                cache.clear()


_leave_evalkit_unrewritten()

class _State:
    """Per-session evalkit state; everything heavy is created on first use."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started_at = datetime.now(UTC)
        winput: dict[str, Any] | None = getattr(config, "workerinput", None)
        self.worker_id: str | None = winput.get("workerid") if winput else None
        self.run_id: str | None = winput.get("evalkit_run_id") if winput else None
        self.shard_dir: str | None = winput.get("evalkit_shard_dir") if winput else None
        self.workers = int(winput.get("evalkit_workers", 1)) if winput else 1
        self.recorder: Recorder | None = None
        self.sources: dict[str, CaseSource] = {}
        self.outcome: FinishedRun | None = None
        self.error: str | None = None
        self.shard_errors: list[str] = []
        self.planned: dict[tuple[str, int], Case] = {}
        self.item_keys: dict[str, tuple[str, int]] = {}
        self.skipped: set[tuple[str, int]] = set()

    def explicit(self) -> dict[str, Any]:
        """The plugin's options as run settings (None: not given; env and suite defaults then apply)."""
        baseline = self.config.getoption("evalkit_baseline")
        return {
            "repeats": self.config.getoption("evalkit_repeat"),
            "baseline": baseline, "fail_on_regression": True if baseline else None,
            "mlflow": False if self.config.getoption("evalkit_no_mlflow") else None,
            "tracing": False if self.config.getoption("evalkit_no_trace") else None,
            "mlflow_traces": self.config.getoption("evalkit_mlflow_traces"),
            "min_judge_agreement": self.config.getoption("evalkit_min_judge_agreement"),
        }

    def repeats(self, source: CaseSource) -> int:
        """Repeats of a source's cases: --evalkit-repeat, else $EVALKIT_REPEAT, else the suite's defaults."""
        from evalkit.pipeline.settings import resolve_settings

        defaults = source.suite.defaults.model_dump() if source.suite is not None else None
        return resolve_settings({"repeats": self.config.getoption("evalkit_repeat")}, defaults)[0].repeats

    def new_run_id(self) -> str:
        if self.run_id is None:
            from evalkit.provenance import new_run_id

            self.run_id = new_run_id()
        return self.run_id

    def store_path(self) -> Path:
        """The store file (absolute: tests may change directory), or a team store's URL as given."""
        from evalkit.store.db import default_store_path
        from evalkit.store.lake import is_store_url

        opt = self.config.getoption("evalkit_store")
        path = Path(opt) if opt else default_store_path()
        return path if is_store_url(path) else path.resolve()

    def session(self, interrupted: bool) -> Session:
        from evalkit.testing.finish import Session

        return Session(store_path=self.store_path(), explicit=self.explicit(), interrupted=interrupted,
                       started_at=self.started_at, workers=self.workers, planned=self.planned, skipped=self.skipped)

    def get_recorder(self) -> Recorder:
        if self.recorder is None:
            from evalkit.testing import shards
            from evalkit.testing.recorder import Recorder

            run_id = self.new_run_id()
            if self.worker_id is not None and self.shard_dir is not None:
                Path(self.shard_dir).mkdir(parents=True, exist_ok=True)
                path = shards.shard_path(self.shard_dir, self.worker_id)
            else:
                path = self.store_path()
            from evalkit.pipeline.settings import resolve_settings

            tracing = resolve_settings({"tracing": self.explicit()["tracing"]})[0].tracing
            self.recorder = Recorder(run_id, path, tracing=tracing)
        return self.recorder


_STATE = pytest.StashKey[_State]()
_states: list[_State] = []  # for hooks that get no config (pytest_runtest_logreport)
_EVALUATOR = pytest.StashKey["Evaluator"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("evalkit", "evalkit eval runs")
    group.addoption("--evalkit-store", default=None, metavar="PATH",
                    help="DuckDB store the session's eval run goes to [default: $EVALKIT_STORE or "
                         ".evalkit/evalkit.duckdb].")
    group.addoption("--evalkit-no-mlflow", action="store_true", default=False,
                    help="Do not log the session's eval run to MLflow.")
    group.addoption("--evalkit-repeat", type=int, default=None, metavar="K",
                    help="Run every @evalkit.cases case K times (test ids get a -r<k> suffix) [default: "
                         "$EVALKIT_REPEAT, else the suite's defaults.repeats, else 1].")
    group.addoption("--evalkit-baseline", default=None, metavar="RUN",
                    help="Compare the run with a baseline (run id, 'last', 'best'); a significant "
                         "regression fails the session.")
    group.addoption("--evalkit-no-trace", action="store_true", default=False,
                    help="Do not record OpenTelemetry spans for evaluated cases.")
    group.addoption("--evalkit-mlflow-traces", default=None, metavar="MODE",
                    help="Per-case MLflow traces: all, all:CAP, failed, failed:CAP, sample:N or none "
                         "[default: $EVALKIT_MLFLOW_TRACES, else all:1000].")
    group.addoption("--evalkit-min-judge-agreement", type=float, default=None, metavar="KAPPA",
                    help="Fail unless every LLM judge is calibrated (`evalkit calibrate`) with at least this "
                         "agreement with humans [default: $EVALKIT_MIN_JUDGE_AGREEMENT, else not required].")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "evalkit_cases(source): one test per case of an evalkit suite or dataset")
    config.addinivalue_line("markers", "evalkit_repeat(k): the repeat index of an evalkit case item")
    if (config.getoption("evalkit_repeat") or 1) < 1:
        raise pytest.UsageError("--evalkit-repeat must be at least 1")
    if config.getoption("evalkit_mlflow_traces") is not None:
        from evalkit.errors import UserError
        from evalkit.tracking.mlflow_traces import parse_mode

        try:
            parse_mode(config.getoption("evalkit_mlflow_traces"), flag="--evalkit-mlflow-traces")
        except UserError as exc:
            raise pytest.UsageError(exc.message) from None
    config.stash[_STATE] = state = _State(config)
    _states.append(state)


def pytest_unconfigure(config: pytest.Config) -> None:
    _wait_for_traces(None)
    state = config.stash.get(_STATE, None)
    if state in _states:
        _states.remove(state)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: tell each worker the run id and where to put its shard."""
    from evalkit.testing import shards

    state = node.config.stash[_STATE]
    run_id = state.new_run_id()
    node.workerinput["evalkit_run_id"] = run_id
    node.workerinput["evalkit_shard_dir"] = str(shards.shard_dir(run_id))
    state.workers = int(getattr(node.config.option, "numprocesses", 0) or 1)
    node.workerinput["evalkit_workers"] = state.workers


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: a worker that could not write its shard says so in its output."""
    err = getattr(node, "workeroutput", {}).get("evalkit_error")
    if err:
        state = node.config.stash[_STATE]
        state.shard_errors.append(f"worker {node.workerinput.get('workerid', '?')}: {err}")


def _bases(config: pytest.Config, path: Path | None) -> list[Path]:
    bases = [config.rootpath]
    if path is not None:
        bases.append(path.parent)
    bases.append(Path.cwd())
    return bases


def _source(config: pytest.Config, mark: pytest.Mark, path: Path | None) -> CaseSource:
    from evalkit.errors import UserError
    from evalkit.testing.cases import load_source

    spec = mark.args[0] if mark.args else mark.kwargs.get("source")
    try:
        return load_source(spec, _bases(config, path))
    except UserError as exc:
        pytest.fail(f"@evalkit.cases({spec!r}): {exc.format()}", pytrace=False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    mark = metafunc.definition.get_closest_marker("evalkit_cases")
    if mark is None:
        return
    from evalkit.testing.cases import params

    state = metafunc.config.stash[_STATE]
    src = _source(metafunc.config, mark, metafunc.definition.path)
    state.sources[metafunc.definition.nodeid] = src
    metafunc.parametrize(mark.kwargs.get("argname", "case"), params(src, state.repeats(src)))


def _case_of(state: _State, item: pytest.Item) -> tuple[Case | None, int, CaseSource | None]:
    mark = item.get_closest_marker("evalkit_cases")
    if mark is None:
        return None, 0, None
    key = f"{item.parent.nodeid}::{getattr(item, 'originalname', item.name)}" if item.parent else item.nodeid
    src = state.sources.get(key) or _source(item.config, mark, getattr(item, "path", None))
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get(mark.kwargs.get("argname", "case")) if callspec is not None else None
    rep = item.get_closest_marker("evalkit_repeat")
    return case, int(rep.args[0]) if rep is not None else 0, src


@pytest.fixture
def evaluate(request: pytest.FixtureRequest) -> Iterator[Evaluator]:
    """Score a case inside the test: ``result = evaluate(case, output)`` or ``evaluate(case)``.

    Uses the suite's scorers (or ``scorers=``); the result goes into the session's evalkit run.
    ``result.assert_passed()`` fails with each failing scorer, its value against the threshold,
    the rationale, and the trace to look at. In async tests use ``await evaluate.aio(...)``.
    """
    from evalkit.testing.evaluator import Evaluator

    state = request.config.stash[_STATE]
    item = request.node
    case, repeat, src = _case_of(state, item)
    ev = Evaluator(state.get_recorder(), item.nodeid, case, repeat, src)
    item.stash[_EVALUATOR] = ev
    ev.enter(item)
    try:
        yield ev
    finally:
        ev.exit()
        del item.stash[_EVALUATOR]  # the call report has been made; keep nothing per item


def pytest_collection_finish(session: pytest.Session) -> None:
    """The run's plan: every selected case item that uses the ``evaluate`` fixture (one ledger entry each)."""
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    for item in session.items:
        if "evaluate" not in getattr(item, "fixturenames", ()) or item.get_closest_marker("evalkit_cases") is None:
            continue
        case, repeat, _ = _case_of(state, item)
        if case is not None:
            state.planned[(case.id, repeat)] = case
            state.item_keys[item.nodeid] = (case.id, repeat)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A case item pytest skipped is not part of the run (like a deselected one)."""
    if not report.skipped:
        return
    for state in _states:
        key = state.item_keys.get(report.nodeid)
        if key is not None and (state.recorder is None or key not in state.recorder.results):
            state.skipped.add(key)


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """A case test that failed before calling ``evaluate``, or never called it, is an errored case."""
    if call.when != "call":
        return
    ev = item.stash.get(_EVALUATOR, None)
    if ev is None or ev.called:
        return
    if call.excinfo is None:
        ev.record_error("the test never called evaluate()")
        return
    if call.excinfo.errisinstance((pytest.skip.Exception, pytest.xfail.Exception)):
        return
    text = str(call.excinfo.value).strip().splitlines()
    ev.record_error(f"test failed: {call.excinfo.typename}: {text[0]}" if text else f"test failed: {call.excinfo.typename}")


def _status(session: pytest.Session, exitstatus: int) -> str:
    if exitstatus == pytest.ExitCode.INTERRUPTED or session.shouldfail or session.shouldstop:
        return "interrupted"
    return "completed"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    is_worker = state.worker_id is not None
    if state.recorder is None and (is_worker or state.run_id is None):
        return  # evalkit was not used in this process
    from evalkit.errors import UserError
    from evalkit.testing import finish, shards

    try:
        info = state.session(_status(session, exitstatus) == "interrupted")
        if is_worker:
            assert state.recorder is not None
            finish.finish_worker(state.recorder, info)
            return
        if state.recorder is not None:
            state.outcome = finish.finish_single(state.recorder, info)
        else:
            assert state.run_id is not None
            state.outcome = finish.finish_controller(state.run_id, shards.shard_dir(state.run_id), info)
    except UserError as exc:
        state.error = exc.format()
    except Exception as exc:  # never an INTERNALERROR for the results of a session that ran
        state.error = f"{type(exc).__name__}: {exc}"
    if is_worker:
        if state.error is not None:  # sent to the controller with the worker's results
            session.config.workeroutput["evalkit_error"] = state.error  # type: ignore[attr-defined]
        return
    if state.shard_errors:
        state.error = "; ".join(filter(None, [state.error, *state.shard_errors]))
    failed_gate = state.outcome is not None and not state.outcome.gate.passed
    if (failed_gate or state.error) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or (state.outcome is None and state.error is None):
        return
    tr = terminalreporter
    tr.write_sep("=", "evalkit")
    if state.outcome is not None:
        from evalkit.testing.finish import render

        table, lines = render(state.outcome, tr._tw.fullwidth, tr.hasmarkup)
        tr.write(table)
        for text, style in lines:
            tr.write_line(text, **style)
    if state.error is not None:
        tr.write_line(f"evalkit: the run could not be fully recorded: {state.error}", red=True, bold=True)
    _wait_for_traces(tr)


def _wait_for_traces(tr: Any) -> None:
    """Wait for background MLflow trace logging before pytest exits; failures are warnings."""
    import sys

    mod = sys.modules.get("evalkit.tracking.mlflow_traces")
    if mod is None or not mod.pending():
        return

    def say(text: str, **style: bool) -> None:
        if tr is not None:
            tr.write_line(text, **style)
        else:
            sys.stderr.write(text + "\n")

    for msg in mod.wait_pending(say):
        say(f"warning: {msg}", yellow=True)
