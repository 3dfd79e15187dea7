"""pytest plugin: regression-case YAML files become test items.

Registered by the ``pytest11`` entry point (``tracemend_pytest``, which declares the options and imports
nothing of tracemend's) only when the run's regressions folder (the ``regressions`` setting, default
``tests/regressions/``, or ``--regressions DIR`` / the ``tracemend_regressions`` ini option) holds a
tracemend case, or the project has a ``[tool.tracemend]`` table (its keys are checked). Even then it
imports nothing heavy, and collects only the YAML files that declare themselves tracemend cases (a
top-level ``tracemend_case: 1``, see :mod:`tracemend.assertions.discovery`); other YAML there is left
alone. Cases written before that key are still run, with a warning. Each case file is one item: rerun the
entry point with the recorded input and config, apply the checks, then the judge. The entry point is
imported from the tree pytest runs in (the project's import roots: plain ``pytest`` needs no install of the
agent), and what its call records goes to a store of the run's own, never the production store.

Without pytest-xdist, all selected cases are evaluated up front (entry points in order, judge requests
concurrently with bounded concurrency), and each item reports its own result; with xdist, each worker
evaluates its items as they run.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tracemend_pytest import DIRS

from tracemend.errors import MissingExtra, TracemendError

_RESULTS = "tracemend_results"


def _check_settings(config: pytest.Config) -> None:
    """Unknown ``[tool.tracemend]`` keys show in the warnings summary, with a did-you-mean."""
    from tracemend import settings

    for message in settings.take_table_warnings(Path(config.rootpath)):
        config.issue_config_time_warning(pytest.PytestConfigWarning(f"tracemend: {message}"), stacklevel=2)


def _import_from_the_tree(root: Path) -> None:
    """Cases import the project's code from the tree pytest runs in (its pyproject, the ``src/``
    convention, the tree itself), so a case runs without the agent being installed; in a sandbox
    worktree, paths into the user's live checkout (``TRACEMEND_LIVE_CHECKOUT``) are removed."""
    import os
    import sys

    from tracemend.project import import_roots, strip_live_roots

    live = os.environ.get("TRACEMEND_LIVE_CHECKOUT")
    if live:
        strip_live_roots(Path(live), root)
    for folder in reversed(import_roots(root)):
        if str(folder) in sys.path:
            sys.path.remove(str(folder))
        sys.path.insert(0, str(folder))


@contextlib.contextmanager
def case_run_store(root: Path) -> Iterator[Path]:
    """The recorder writes what the cases' calls record into a store of the run's own (``TRACEMEND_RUN_DB``,
    default ``<root>/.tracemend/regression-runs/traces.db``), never the production store, then switches
    back."""
    import os

    import tracemend

    given = os.environ.get("TRACEMEND_RUN_DB")
    path = Path(given) if given else root / ".tracemend" / "regression-runs" / "traces.db"
    tracemend.shutdown()  # what earlier code recorded goes where it was meant to go
    os.environ["TRACEMEND_RUN_DB"] = str(path)
    try:
        yield path
    finally:
        tracemend.shutdown()
        if given is None:
            os.environ.pop("TRACEMEND_RUN_DB", None)


def pytest_configure(config: pytest.Config) -> None:
    _check_settings(config)
    dirs = config.stash.get(DIRS, [])
    if not dirs:
        return
    _import_from_the_tree(Path(config.rootpath))
    if config.getoption("judge_no_cache") and config.getoption("judge_cache_only"):
        raise pytest.UsageError("--judge-no-cache and --judge-cache-only cannot be used together")
    config.addinivalue_line("markers", "regression: a tracemend regression case (YAML)")
    config.addinivalue_line(
        "markers", "judge: a regression case with plain-English assertions (uses the LLM judge)"
    )
    state = _State(config)
    config.stash[_STATE] = state
    config.pluginmanager.register(_Reporter(state), "tracemend-regressions-reporter")


_STATE = pytest.StashKey["_State"]()


class _State:
    """Per-run settings and counters (in the controller, the counters come from the items' reports)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.cases = 0
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.model_calls = 0
        # Failed cases the judge could not decide (its model failed): the run could not finish.
        self.incomplete = 0
        self.cache_hits = 0
        self.cost = 0.0
        self.scripted = False
        self.judge_models: set[str] = set()
        self.flaky: list[str] = []
        self._settings: dict[str, Any] | None = None
        self._cache: Any = None
        self._stats: Any = None
        self._lock = threading.Lock()
        self.prefetched: dict[str, Any] = {}
        self.judge_seconds: float | None = None  # wall time of the up-front concurrent judging

    def settings(self) -> dict[str, Any]:
        if self._settings is None:
            from tracemend import llm, settings

            root = Path(self.config.rootpath)
            opt = self.config.getoption
            mode = (
                "no-cache"
                if opt("judge_no_cache")
                else "cache-only"
                if opt("judge_cache_only")
                else "default"
            )
            cache_path = opt("judge_cache")
            self._settings = {
                "model": opt("judge_model") or llm.resolve_model("judge"),
                "mode": mode,
                "cache_path": Path(cache_path).resolve() if cache_path else None,
                "samples": opt("judge_samples") or settings.get("judge_samples", root=root),
                "miss": opt("judge_cache_miss") or settings.get("judge_cache_miss", root=root),
            }
        return self._settings

    def cache(self) -> Any:
        with self._lock:
            if self._cache is None:
                from tracemend.assertions.cache import VerdictCache

                s = self.settings()
                self._cache = VerdictCache(s["cache_path"], mode=s["mode"])
            return self._cache

    def stats(self) -> Any:
        if self._stats is None:
            from tracemend.assertions.judging import JudgeStats

            self._stats = JudgeStats()
        return self._stats


def _display(config: pytest.Config, path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(config.rootpath).resolve()))
    except ValueError:
        return str(path)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    dirs = parent.config.stash.get(DIRS, [])
    if not dirs or file_path.suffix not in (".yaml", ".yml") or file_path.name.startswith(("_", ".")):
        return None  # names starting with "_" are not cases (e.g. a scripted judge's answers beside them)
    resolved = file_path.resolve()
    if not any(resolved.is_relative_to(d) for d in dirs):
        return None
    from tracemend.assertions.discovery import case_kind

    kind = case_kind(file_path)
    if kind is None:
        return None  # YAML that does not declare itself a tracemend case: not ours
    return RegressionFile.from_parent(parent, path=file_path, legacy=kind == "legacy")


class RegressionFile(pytest.File):
    def __init__(self, *, legacy: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.legacy = legacy

    def collect(self):  # type: ignore[no-untyped-def]
        from tracemend.errors import missing_extra

        if self.legacy:
            from tracemend.assertions.discovery import SCHEMA_KEY, SCHEMA_VERSION

            self.warn(
                pytest.PytestWarning(
                    f"{_display(self.config, self.path)}: a tracemend case written before cases declared "
                    f"themselves; run as before, but add `{SCHEMA_KEY}: {SCHEMA_VERSION}` as its first key "
                    "(python -m tracemend.assertions.discovery does it for a folder)"
                )
            )
        try:
            from tracemend.assertions.case import CaseFileError, load_case

            case = load_case(self.path)
        except ImportError as exc:  # installed without the loop's libraries: say so on each case
            missing = missing_extra(exc, "running tracemend regression cases")
            if missing is None:
                raise
            yield CaseFileErrorItem.from_parent(self, name=self.path.name, error=missing)
            return
        except (CaseFileError, MissingExtra) as exc:
            # One bad file is one failing item with its file and line; the other cases still run.
            yield CaseFileErrorItem.from_parent(self, name=self.path.name, error=exc)
            return
        yield RegressionItem.from_parent(self, name=case.name, case=case)


class CaseFileErrorItem(pytest.Item):
    def __init__(self, *, error: Exception, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error
        self.add_marker("regression")

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        error = excinfo.value
        line = getattr(error, "line", None)
        where = _display(self.config, self.path) + (f":{line}" if line else "")
        if isinstance(error, MissingExtra):
            return f"cannot run the regression case {where}: {error}"
        return f"invalid regression case file {where}: {getattr(error, 'reason', error)}"

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"regression case file {self.path.name}"


class CaseFailed(TracemendError):
    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report


class RegressionItem(pytest.Item):
    def __init__(self, *, case: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.add_marker("regression")
        if case.assertions:
            self.add_marker("judge")
        known = {line.split(":")[0].split("(")[0].strip() for line in self.config.getini("markers")}
        for mark in case.marks:
            if mark not in known:  # marks named in case files are declared, so --strict-markers accepts them
                self.config.addinivalue_line("markers", f"{mark}: used by tracemend regression cases")
            self.add_marker(mark)

    def _state(self) -> _State:
        return self.config.stash[_STATE]

    def _samples(self) -> int:
        return self.case.samples or self._state().settings()["samples"]

    def evaluate(self) -> Any:
        from tracemend.assertions.runner import evaluate_case

        state = self._state()
        with case_run_store(Path(self.config.rootpath)):
            return evaluate_case(
                self.case,
                path=Path(_display(self.config, self.path)),
                model=state.settings()["model"],
                cache=state.cache(),
                samples=self._samples(),
                stats=state.stats(),
            )

    def runtest(self) -> None:
        from tracemend.assertions.runner import format_result

        state = self._state()
        pending = state.prefetched.pop(self.nodeid, None)  # evaluated up front (see _prefetch)
        result = pending.result() if pending is not None else self.evaluate()
        self.user_properties.append(("tracemend_case", result.summary()))
        if result.cache_miss and state.settings()["miss"] == "skip" and not result.setup_error:
            pytest.skip(f"no cached judge verdict (cache-only): {result.cache_miss}")
        if not result.passed:
            raise CaseFailed(format_result(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            return excinfo.value.report
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"regression case: {self.case.name}"


# --- up-front evaluation: entry points in order, judge requests concurrently ---------------------------


class _Prefetched:
    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        self._result, self.error = result, error

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self._result


def _skipped_statically(item: pytest.Item) -> bool:
    # Cases marked skip are not evaluated up front (string skipif conditions are left to pytest).
    if item.get_closest_marker("skip") is not None:
        return True
    return any(any(a is True for a in mark.args) for mark in item.iter_markers("skipif"))


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    config = session.config
    state = config.stash.get(_STATE, None)
    items = [i for i in session.items if isinstance(i, RegressionItem)] if state is not None else []
    is_worker = hasattr(config, "workerinput")
    try:
        if (
            len(items) > 1
            and not is_worker
            and not config.getoption("judge_no_prefetch")
            and not config.option.collectonly
        ):
            _prefetch(state, [i for i in items if not _skipped_statically(i)])
        return (yield)
    finally:
        if state is not None and state._cache is not None:
            state._cache.close()


def _prefetch(state: _State, items: list[RegressionItem]) -> None:
    """Rerun every entry point (in order, in this thread), then judge all outputs concurrently.

    Everything runs in the main thread (one event loop for the judging): no background threads race
    the user's imports, and the items then only report their stored results.
    """
    import asyncio

    from tracemend.assertions.runner import ajudge_case, start_case

    settings = state.settings()
    cache = state.cache()
    stats = state.stats()
    started: list[tuple[RegressionItem, Any]] = []
    with case_run_store(Path(state.config.rootpath)):
        for item in items:
            try:
                started.append((item, start_case(item.case, Path(_display(item.config, item.path)))))
            except BaseException as exc:  # reported by the item itself
                state.prefetched[item.nodeid] = _Prefetched(error=exc)

    async def judge_all() -> list[Any]:
        jobs = [
            ajudge_case(result, model=settings["model"], cache=cache, samples=item._samples(), stats=stats)
            for item, result in started
        ]
        return await asyncio.gather(*jobs, return_exceptions=True)

    import time

    from tracemend.llm import run_sync

    start = time.perf_counter()
    outcomes = run_sync(judge_all)
    state.judge_seconds = time.perf_counter() - start
    for (item, _), outcome in zip(started, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            state.prefetched[item.nodeid] = _Prefetched(error=outcome)
        else:
            state.prefetched[item.nodeid] = _Prefetched(result=outcome)


# --- the summary ---------------------------------------------------------------------------------------


class _Reporter:
    """Counts from each item's report (with xdist, reports arrive from the workers) and the summary."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        summary = dict(report.user_properties or []).get("tracemend_case")
        if summary is None or report.when != "call":
            return
        state = self.state
        state.cases += 1
        if report.passed:
            state.passed += 1
        elif report.skipped:
            state.skipped += 1
        else:
            state.failed += 1
        state.model_calls += summary["model_calls"]
        state.cache_hits += summary["cache_hits"]
        state.cost += summary["cost"]
        if summary.get("incomplete") and not report.passed:
            state.incomplete += 1
        state.scripted = state.scripted or summary["scripted"]
        if summary.get("judge_model"):
            state.judge_models.add(summary["judge_model"])
        if summary["flaky"]:
            state.flaky.append(f"{summary['name']} ({summary['flaky']})")

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # Every failure was a judge that could not answer: nothing was found, the run could not finish
        # (exit 3, which `tracemend test` keeps; 1 is for cases that really fail).
        if self.state.incomplete and session.testsfailed == self.state.incomplete:
            session.exitstatus = 3

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        state = self.state
        if state.cases == 0:
            return
        tr = terminalreporter
        tr.section("tracemend regression cases")
        tr.write_line(
            f"cases: {state.cases} ({state.passed} passed, {state.failed} failed, {state.skipped} skipped)"
        )
        models = ", ".join(sorted(state.judge_models)) or "-"
        label = " [scripted: offline answers, not a real model]" if state.scripted else ""
        tr.write_line(
            f"judge: {state.model_calls} model calls, {state.cache_hits} cache hits, cost ${state.cost:.4f}"
            f" - model {models}{label}"
        )
        if state.incomplete:
            tr.write_line(
                f"could not finish: {state.incomplete} case(s) failed because the judge's model did not answer",
                red=True,
            )
        if state.judge_seconds is not None:
            tr.write_line(f"judged up front, concurrently, in {state.judge_seconds:.2f} s")
        if state.flaky:
            tr.write_line(f"flaky cases ({len(state.flaky)}):", yellow=True)
            for line in state.flaky:
                tr.write_line(f"  {line}", yellow=True)
        else:
            tr.write_line("flaky cases: none")
