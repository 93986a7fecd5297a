"""The leakscope pytest plugin (registered through the ``pytest11`` entry point).

Three ways to check tests for leaks::

    def test_handler(leakscope):                  # the fixture
        leakscope.check(lambda: handle(request))  # LeakError (an assertion failure) on a leak

    @pytest.mark.no_leaks                          # the marker: the test body runs repeatedly
    def test_parse(parser):                        # with the same fixture values
        parser.parse("x = 1")

    pytest --leakscope                             # every test (opt out: @pytest.mark.leakscope_skip)

A checked test runs once as usual (a failure or skip is reported as usual and
gets no verdict); the marker and the fixture then call :func:`leakscope.check`
on its body.  Under ``--leakscope`` the real run is the first observation of
:mod:`leakscope.engine.screen` (the heap frozen around it, so the reading after
it is cheap); only the tests it cannot pass are run again, and only its
suspects get the full check.  Verdicts travel in ``item.user_properties`` (so
they reach the ``pytest-xdist`` controller), a table at the end of the session
counts them and ``--leakscope-report=PATH`` writes every verdict as JSON.

The module is only the pytest side: options, markers, the fixture and the
hooks.  It imports pytest and :mod:`leakscope.errors` when pytest loads it;
everything else only when a test is checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from leakscope.errors import LeakError

if TYPE_CHECKING:
    from leakscope.engine.model import LeakReport
    from leakscope.engine.screen import Observation, Screening

__all__ = ["LeakscopeFixture", "Mode", "Verdict"]

Verdict = Literal["leaked", "clean", "error", "not checked"]
Mode = Literal["suite", "marker", "fixture"]

REPORT_FORMAT = "leakscope.pytest_report"
_PROPERTY = "leakscope"  # the user_properties key carrying a verdict (a JSON string)
_MARKER_ARGS = frozenset({"warmup", "runs", "ignore_types"})
# Fixtures whose buffers fill with every repeated call; drained between calls.
_CAPTURE_FIXTURES = ("capsys", "capsysbinary", "capfd", "capfdbinary", "capteesys")
# Tests using these run pytest or leakscope themselves: the suite-wide mode leaves them alone.
_SELF_CHECKING_FIXTURES = {
    "leakscope": "it uses the leakscope fixture (it checks its own code)",
    "pytester": "it uses pytester (it runs pytest itself)",
    "testdir": "it uses testdir (it runs pytest itself)",
}
# Running these again would report again: the screen reads their real run only.
_REPORTING_FIXTURES = {
    "subtests": "it uses the subtests fixture (running it again would report its subtests "
    "again) and its real run grew",
}


# -- options and settings -----------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("leakscope", "leak checks (leakscope)")
    group.addoption(
        "--leakscope",
        action="store_true",
        default=None,
        dest="leakscope",
        help="check every test for leaks (opt a test out with @pytest.mark.leakscope_skip). "
        "Ini: leakscope = true",
    )
    group.addoption(
        "--no-leakscope",
        action="store_false",
        dest="leakscope",
        help="do not check every test, whatever the ini file says",
    )
    group.addoption(
        "--leakscope-runs",
        type=int,
        default=None,
        metavar="N",
        help="measured runs per leak check (default: adaptive). Ini: leakscope_runs",
    )
    group.addoption(
        "--leakscope-warmup",
        type=int,
        default=None,
        metavar="N",
        help="warm-up calls per leak check (default: adaptive). Ini: leakscope_warmup",
    )
    group.addoption(
        "--leakscope-report",
        default=None,
        metavar="PATH",
        help="write every leak verdict to PATH as JSON. Ini: leakscope_report",
    )
    parser.addini("leakscope", "check every test for leaks", type="bool", default=False)
    parser.addini("leakscope_runs", "measured runs per leak check (default: adaptive)", default="")
    parser.addini(
        "leakscope_warmup", "warm-up calls per leak check (default: adaptive)", default=""
    )
    parser.addini("leakscope_report", "write every leak verdict to this path as JSON", default="")


class _Settings:
    """The plugin's configuration: command line first, then the ini file."""

    __slots__ = ("report_path", "runs", "suite", "warmup")

    def __init__(
        self, suite: bool, warmup: int | None, runs: int | None, report_path: Path | None
    ) -> None:
        self.suite = suite
        self.warmup = warmup
        self.runs = runs
        self.report_path = report_path

    @property
    def screen(self) -> bool:
        """Whether ``--leakscope`` screens tests (``--leakscope-runs/-warmup`` force the check)."""
        return self.runs is None and self.warmup is None


def _int_setting(config: pytest.Config, name: str, minimum: int) -> int | None:
    value: Any = config.getoption(name)
    source = "--" + name.replace("_", "-")
    if value is None:
        raw = str(config.getini(name)).strip()
        if not raw:
            return None
        source = f"ini option {name}"
        try:
            value = int(raw)
        except ValueError:
            raise pytest.UsageError(f"{source} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise pytest.UsageError(f"{source} must be at least {minimum}, not {value}")
    return int(value)


def _read_settings(config: pytest.Config) -> _Settings:
    suite = config.getoption("leakscope")
    if suite is None:
        suite = bool(config.getini("leakscope"))
    path = config.getoption("leakscope_report") or str(config.getini("leakscope_report")).strip()
    return _Settings(
        suite=bool(suite),
        warmup=_int_setting(config, "leakscope_warmup", 1),
        runs=_int_setting(config, "leakscope_runs", 2),
        report_path=(config.invocation_params.dir / path) if path else None,
    )


_SETTINGS = pytest.StashKey[_Settings]()
_BASELINE = pytest.StashKey[Any]()  # the session's screen Baseline, made on first use
_PLUGIN_NAME = "leakscope-verdicts"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "no_leaks(warmup=None, runs=None, ignore_types=()): run the test body repeatedly "
        "(fixtures set up once) and fail the test when it leaks (leakscope)",
    )
    config.addinivalue_line(
        "markers", "leakscope_skip: do not check this test for leaks under --leakscope"
    )
    settings = _read_settings(config)
    config.stash[_SETTINGS] = settings
    config.pluginmanager.register(_Verdicts(config, settings), _PLUGIN_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.pluginmanager.get_plugin(_PLUGIN_NAME)
    if plugin is not None:
        config.pluginmanager.unregister(plugin, _PLUGIN_NAME)


# -- the fixture --------------------------------------------------------------------------


class LeakscopeFixture:
    """What the ``leakscope`` fixture gives a test: leakscope's checks, failing like assertions.

    >>> def test_handler(leakscope):
    ...     leakscope.check(lambda: handle(fake_request()))
    ...     leakscope.assert_collected(session)

    ``check`` raises :class:`~leakscope.LeakError` (an ``AssertionError``) on a
    leak and re-raises what the function raised; ``snapshot``, ``track``,
    ``assert_collected`` and ``find_cycles`` are leakscope's own functions.
    """

    def __init__(self, node: pytest.Item, warmup: int | None, runs: int | None) -> None:
        self._node = node
        self._warmup = warmup
        self._runs = runs

    def check(
        self,
        func: Callable[[], Any],
        *,
        warmup: int | None = None,
        runs: int | None = None,
        trace: bool = True,
        timeout: float | None = None,
        ignore_types: Sequence[str | type] = (),
    ) -> LeakReport:
        """:func:`leakscope.check` that fails the test on a leak; returns the report otherwise.

        ``warmup`` and ``runs`` default to ``--leakscope-warmup``/``--leakscope-runs``;
        ``ignore_types`` names types whose growth is expected (qualified names or types).
        """
        __tracebackhide__ = True
        from leakscope.engine.check import run_check

        outcome = run_check(
            func,
            warmup=self._warmup if warmup is None else warmup,
            runs=self._runs if runs is None else runs,
            trace=trace,
            timeout=timeout,
            ignore_types=ignore_types,
        )
        report, exc = outcome.report, outcome.exc
        outcome.exc = None
        if exc is not None:
            _record(self._node, _entry(self._node, "fixture", "error", report=report))
            try:
                raise exc
            finally:
                del exc
        leaked = report.leaked
        _record(
            self._node,
            _entry(self._node, "fixture", "leaked" if leaked else "clean", report=report),
        )
        if leaked:
            raise LeakError(report.format(), report)
        return report

    @property
    def snapshot(self) -> Callable[..., Any]:
        """:func:`leakscope.snapshot`."""
        from leakscope._snapshot import snapshot

        return snapshot

    @property
    def track(self) -> Callable[..., Any]:
        """:func:`leakscope.track`."""
        from leakscope._snapshot import track

        return track

    @property
    def assert_collected(self) -> Callable[..., None]:
        """:func:`leakscope.assert_collected` (the test's own variables do not count)."""
        # Handed out as is: a wrapper's frame would hold the object as one more reference.
        from leakscope.retention import assert_collected

        return assert_collected

    @property
    def find_cycles(self) -> Callable[..., Any]:
        """:func:`leakscope.find_cycles`."""
        from leakscope.cycles import find_cycles

        return find_cycles

    def __repr__(self) -> str:
        return f"<leakscope fixture for {self._node.nodeid}>"


@pytest.fixture
def leakscope(request: pytest.FixtureRequest) -> LeakscopeFixture:
    """leakscope's checks for this test: ``leakscope.check(func)``, ``snapshot()``, ``track()``,
    ``assert_collected(obj)``, ``find_cycles()``; a leak fails the test with its explanation."""
    settings = request.config.stash[_SETTINGS]
    return LeakscopeFixture(request.node, settings.warmup, settings.runs)


# -- checking a test ----------------------------------------------------------------------


class _Plan:
    """How to check one test: ``mode`` is ``marker`` or ``suite``; ``screen`` for the screen."""

    __slots__ = ("ignore_types", "mode", "rerun", "runs", "screen", "warmup")

    def __init__(
        self,
        mode: Mode,
        warmup: int | None,
        runs: int | None,
        ignore_types: frozenset[str],
        *,
        screen: bool = False,
        rerun: str | None = None,
    ) -> None:
        self.mode = mode
        self.warmup = warmup
        self.runs = runs
        self.ignore_types = ignore_types
        self.screen = screen
        self.rerun = rerun  # why the test may not be run again (None: it may)


def _marker_plan(item: pytest.Item, settings: _Settings) -> _Plan | None:
    marker = item.get_closest_marker("no_leaks")
    if marker is None:
        return None
    if marker.args:
        raise TypeError(
            "@pytest.mark.no_leaks takes keyword arguments only (warmup=, runs=, ignore_types=)"
        )
    unknown = set(marker.kwargs) - _MARKER_ARGS
    if unknown:
        raise TypeError(
            f"@pytest.mark.no_leaks got unknown argument(s) {', '.join(sorted(unknown))}; "
            "it takes warmup=, runs= and ignore_types="
        )
    warmup = marker.kwargs.get("warmup", settings.warmup)
    runs = marker.kwargs.get("runs", settings.runs)
    for name, value, minimum in (("warmup", warmup, 1), ("runs", runs, 2)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < minimum
        ):
            raise ValueError(
                f"@pytest.mark.no_leaks({name}=...) must be an integer >= {minimum}, not {value!r}"
            )
    from leakscope.engine.calls import type_names

    return _Plan("marker", warmup, runs, type_names(marker.kwargs.get("ignore_types", ())))


def _suite_plan(item: pytest.Item, settings: _Settings) -> _Plan | str | None:
    """The plan under ``--leakscope``, a reason the test is not checked, or None."""
    if not settings.suite:
        return None
    if item.get_closest_marker("leakscope_skip") is not None:
        return "marked leakscope_skip"
    if not isinstance(item, pytest.Function):
        return f"not a Python test function ({type(item).__name__})"
    if item.get_closest_marker("xfail") is not None:
        return "marked xfail"
    for name, reason in _SELF_CHECKING_FIXTURES.items():
        if name in item.fixturenames:
            return reason
    rerun = next((r for n, r in _REPORTING_FIXTURES.items() if n in item.fixturenames), None)
    return _Plan(
        "suite", settings.warmup, settings.runs, frozenset(), screen=settings.screen, rerun=rerun
    )


def _failed_inside(item: pytest.Item) -> bool:
    """True when a unittest test failed, errored or skipped (unittest records, not raises)."""
    return bool(getattr(item, "_excinfo", None))


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    __tracebackhide__ = True
    settings = item.config.stash.get(_SETTINGS, None)
    if settings is None or not (settings.suite or item.get_closest_marker("no_leaks")):
        return (yield)  # the plugin is off for this test: nothing else runs
    plan = _marker_plan(item, settings) or _suite_plan(item, settings)
    if not isinstance(plan, _Plan):
        result = yield
        if isinstance(plan, str):
            _record(item, _entry(item, "suite", "not checked", reason=plan))
        return result
    return (yield from _checked_call(item, plan))


def _checked_call(item: pytest.Item, plan: _Plan) -> Generator[None, object, object]:
    """The real run, observed by the screen when it screens, then the check."""
    __tracebackhide__ = True
    rewind = _Rewind(item)
    call = _repeatable(item, rewind)  # made now: nothing made after the freeze but the test's
    observation: Observation | None = None
    if plan.screen:
        from leakscope.engine.screen import Baseline, Observation

        observation = Observation.begin(item.config.stash.setdefault(_BASELINE, Baseline()))
    started = time.perf_counter()
    try:
        result = yield  # the ordinary run: its failure or skip is reported as usual, no verdict
    except BaseException:
        if observation is not None:
            observation.close()
        raise
    seconds = time.perf_counter() - started
    try:
        if observation is not None:
            observation.end(seconds)
        if not _failed_inside(item):
            _check(item, plan, _Attempt(call, observation, started, seconds))
    finally:
        if observation is not None:
            observation.close()
    return result


class _Attempt:
    """One test's check in the making: its body to run again, its screen, its timing."""

    __slots__ = ("call", "observation", "run_seconds", "started")

    def __init__(
        self,
        call: Callable[[], None],
        observation: Observation | None,
        started: float,
        seconds: float,
    ) -> None:
        self.call = call
        self.observation = observation
        self.started = started
        self.run_seconds = seconds

    def cost(self) -> float:
        """The seconds leakscope added to the test so far (its real run left out)."""
        return max(0.0, time.perf_counter() - self.started - self.run_seconds)


def _check(item: pytest.Item, plan: _Plan, attempt: _Attempt) -> None:
    __tracebackhide__ = True
    call, attempt.call = attempt.call, _no_call
    try:
        report: LeakReport | None = None
        failure, screening = None, None
        if attempt.observation is not None:
            failure, screening = _screen(attempt.observation, call, plan)
            attempt.observation.close()  # unfreeze before the full check, which freezes itself
            if screening is not None and not screening.suspect:
                _record(item, _entry(item, plan.mode, "clean", screen=screening, attempt=attempt))
                return
        if failure is None and screening is not None and plan.rerun is not None:
            _record(
                item,
                _entry(
                    item,
                    plan.mode,
                    "not checked",
                    reason=plan.rerun,
                    screen=screening,
                    attempt=attempt,
                ),
            )
            return
        if failure is None:
            report = _full_check(call, plan)
    except (pytest.fail.Exception, pytest.skip.Exception) as exc:
        # pytest.fail()/skip() are BaseExceptions: check() and the screen let them through.
        report = None
        failure = f"{type(exc).__name__}: {str(exc)[:300]} (raised when run again)"
    finally:
        del call
    _conclude(item, plan, attempt, report=report, failure=failure, screening=screening)


def _no_call() -> None:
    """What an attempt holds once its test body was handed on (held no longer)."""


def _screen(
    observation: Observation, call: Callable[[], None], plan: _Plan
) -> tuple[str | None, Screening | None]:
    """Screen the test: (why a re-run failed or None, the screen's verdict or None)."""
    from leakscope.engine.calls import Stopped, error_text

    if plan.rerun is not None and not observation.first_clean:
        return None, observation.screening("suspect", "its real run grew")
    try:
        return None, observation.screen(call)
    except Stopped as stopped:
        try:
            return error_text(stopped.exc, stopped.phase), None
        finally:
            del stopped


def _full_check(call: Callable[[], None], plan: _Plan) -> LeakReport:
    from leakscope.engine.check import check

    return check(call, warmup=plan.warmup, runs=plan.runs, ignore_types=plan.ignore_types)


def _conclude(
    item: pytest.Item,
    plan: _Plan,
    attempt: _Attempt,
    *,
    report: LeakReport | None,
    failure: str | None,
    screening: Screening | None,
) -> None:
    """Record the verdict; fail the test on a leak (or on an unrepeatable marked test)."""
    __tracebackhide__ = True
    if report is not None and report.error is not None:
        failure = report.error
    if failure is not None or report is None:
        _record(item, _entry(item, plan.mode, "error", reason=failure, attempt=attempt))
        if plan.mode == "marker":
            pytest.fail(
                f"leakscope: no leak verdict: the test does not pass when run again: {failure}\n"
                "@pytest.mark.no_leaks runs the test body repeatedly with the same fixture "
                "values; make it repeatable or remove the marker",
                pytrace=False,
            )
        return
    leaked = report.leaked
    verdict: Verdict = "leaked" if leaked else "clean"
    _record(
        item, _entry(item, plan.mode, verdict, report=report, screen=screening, attempt=attempt)
    )
    if leaked:
        raise LeakError(report.format(), report)


def _repeatable(item: pytest.Item, rewind: _Rewind) -> Callable[[], None]:
    """A callable running the test body again, with pytest's per-test buffers emptied first."""
    import unittest

    instance = getattr(item, "instance", None)
    # unittest: debug() runs setUp, the test, tearDown and cleanups, raising errors.
    # Others: runtest() goes through pytest_pyfunc_call, where async plugins run it.
    body: Callable[[], object] = (
        instance.debug if isinstance(instance, unittest.TestCase) else item.runtest
    )

    def call() -> None:
        rewind()
        body()

    # check() names the function it measured: make that the test.
    call.__module__ = getattr(getattr(item, "module", None), "__name__", "test")
    call.__qualname__ = item.nodeid.split("::", 1)[-1].replace("::", ".")
    return call


class _Rewind:
    """Puts pytest's per-test state back as it was before the test body ran.

    Between the repeated runs of a test body, the captured output, the captured
    log records, the recorded warnings and the test body's own ``monkeypatch``
    changes are emptied/undone, so that each run starts where the first one
    did: they are pytest's growth, not the test's.
    """

    def __init__(self, item: pytest.Item) -> None:
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        self.capman: Any = item.config.pluginmanager.getplugin("capturemanager")
        self.capture = [funcargs[n] for n in _CAPTURE_FIXTURES if n in funcargs]
        self.recwarn: Any = funcargs.get("recwarn")
        mp: Any = funcargs.get("monkeypatch")
        self.monkeypatch = mp
        self.marks = (len(mp._setattr), len(mp._setitem)) if self._rewindable(mp) else None
        try:
            from _pytest.logging import LogCaptureHandler

            self.log_handler_type: type | None = LogCaptureHandler
        except ImportError:  # pragma: no cover - pytest internals moved
            self.log_handler_type = None

    @staticmethod
    def _rewindable(mp: object) -> bool:
        return isinstance(getattr(mp, "_setattr", None), list) and isinstance(
            getattr(mp, "_setitem", None), list
        )

    def __call__(self) -> None:
        self._drain_output()
        self._drain_warnings()
        self._undo_monkeypatch()

    def _drain_output(self) -> None:
        import logging

        capman = self.capman
        if capman is not None and capman.is_globally_capturing():
            capman.read_global_capture()
        for fixture in self.capture:
            fixture.readouterr()
        if self.log_handler_type is not None:
            for handler in logging.getLogger().handlers:
                if isinstance(handler, self.log_handler_type):
                    _empty_log_handler(handler)

    def _drain_warnings(self) -> None:
        import warnings

        # warnings.catch_warnings(record=True) records through list.append: empty that list.
        owner = getattr(getattr(warnings, "_showwarnmsg_impl", None), "__self__", None)
        if type(owner) is list:
            owner.clear()
        if self.recwarn is not None:
            self.recwarn.clear()
        # Forget which warnings were already shown ("default" action): each run warns afresh.
        mutated = getattr(warnings, "_filters_mutated", None)
        if callable(mutated):
            mutated()

    def _undo_monkeypatch(self) -> None:
        if self.marks is None:
            return
        mp = self.monkeypatch
        n_attr, n_item = self.marks
        if len(mp._setattr) > n_attr or len(mp._setitem) > n_item:
            body = pytest.MonkeyPatch()
            body._setattr = mp._setattr[n_attr:]
            body._setitem = mp._setitem[n_item:]
            del mp._setattr[n_attr:], mp._setitem[n_item:]
            body.undo()


def _empty_log_handler(handler: Any) -> None:
    """Empty a pytest log-capturing handler in place (``caplog.records`` stays the same list)."""
    import io

    records = handler.records
    if type(records) is list and records:
        records.clear()
    stream = handler.stream
    if isinstance(stream, io.StringIO) and stream.tell():
        stream.seek(0)
        stream.truncate()


# -- verdicts: recording, summary, JSON ---------------------------------------------------


def _entry(
    item: pytest.Item,
    mode: Mode,
    verdict: Verdict,
    *,
    report: LeakReport | None = None,
    reason: str | None = None,
    screen: Screening | None = None,
    attempt: _Attempt | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"nodeid": item.nodeid, "mode": mode, "verdict": verdict}
    if reason is not None:
        entry["reason"] = reason
    if screen is not None:
        entry["screen"] = screen.to_dict()
    if report is not None:
        entry["summary"] = _one_line(report) if verdict == "leaked" else ""
        if verdict == "leaked":
            entry["explanation"] = report.format()
        entry["report"] = report.to_dict()
    if attempt is not None:
        entry["seconds"] = round(attempt.run_seconds, 6)  # the real run
        entry["cost"] = round(attempt.cost(), 6)  # what leakscope added to it
    return entry


def _record(item: pytest.Item, entry: dict[str, Any]) -> None:
    import json

    # user_properties travel with the test reports, to the xdist controller too.
    item.user_properties.append((_PROPERTY, json.dumps(entry, sort_keys=True)))


def _one_line(report: LeakReport) -> str:
    """The main culprit in one line: what grows, by how much, what holds it, where from."""
    if not report.culprits:
        return f"{report.per_call}"
    c = report.culprits[0]
    what = ", ".join(c.types[:2]) or c.kind
    text = f"{what} +{c.per_call:.3g} {c.unit}/call"
    if c.holders:
        text += f", held by {c.holders[0].description}"
    if c.allocated_at:
        text += f", allocated at {c.allocated_at[0]}"
    if len(report.culprits) > 1:
        text += f" (+{len(report.culprits) - 1} more)"
    return text


def _summary(verdicts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The counts of the verdict table and of the JSON report's ``summary``."""
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[str(v.get("verdict"))] = counts.get(str(v.get("verdict")), 0) + 1
    screens = [v["screen"] for v in verdicts if isinstance(v.get("screen"), dict)]
    return {
        "checked": counts.get("leaked", 0) + counts.get("clean", 0),
        "leaked": counts.get("leaked", 0),
        "clean": counts.get("clean", 0),
        "errors": counts.get("error", 0),
        "not_checked": counts.get("not checked", 0),
        "screened": len(screens),
        "rerun": sum(1 for s in screens if s.get("calls")),
        "rerun_calls": sum(int(s.get("calls") or 0) for s in screens),
        "suspects": sum(1 for s in screens if s.get("suspect")),
        "fully_checked": sum(1 for v in verdicts if isinstance(v.get("report"), dict)),
        "seconds_added": round(sum(float(v.get("cost") or 0.0) for v in verdicts), 3),
    }


_TABLE = (
    ("screened", "screened"),
    ("re-run", "rerun"),
    ("suspects", "suspects"),
    ("fully checked", "fully_checked"),
    ("flagged", "leaked"),
    ("not checked", "not_checked"),
)


def _table(summary: dict[str, Any]) -> list[str]:
    """The verdict table printed at the end of a ``--leakscope`` session."""
    heads = [head for head, _ in _TABLE] + ["time added"]
    cells = [str(summary[key]) for _, key in _TABLE] + [f"{summary['seconds_added']:.2f} s"]
    widths = [max(len(h), len(c)) for h, c in zip(heads, cells, strict=True)]
    return [
        "  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True)),
        "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)),
    ]


class _Verdicts:
    """The per-run plugin object: gathers verdicts from test reports, prints and writes them.

    Test reports reach it on the ``pytest-xdist`` controller too, carrying the
    workers' verdicts in their ``user_properties``.
    """

    def __init__(self, config: pytest.Config, settings: _Settings) -> None:
        self.config = config
        self.settings = settings
        self.verdicts: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key != _PROPERTY or not isinstance(value, str):
                continue
            import json

            try:
                entry = json.loads(value)
            except ValueError:
                continue
            if isinstance(entry, dict):
                self.verdicts.append(entry)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        self._leaks(terminalreporter)
        self._errors(terminalreporter)
        if self.settings.suite and not _is_worker(self.config):
            terminalreporter.write_sep("-", "leakscope")
            for line in _table(_summary(self.verdicts)):
                terminalreporter.write_line(line)
        if self.settings.report_path is not None and not _is_worker(self.config):
            terminalreporter.write_line(
                f"leakscope: verdicts written to {self.settings.report_path}"
            )

    def _leaks(self, terminalreporter: Any) -> None:
        leaked = [v for v in self.verdicts if v.get("verdict") == "leaked"]
        if leaked:
            s = "s" if len(leaked) != 1 else ""
            terminalreporter.write_sep("=", f"leakscope: {len(leaked)} leaking test{s}", red=True)
            for v in leaked:
                terminalreporter.write_line(f"LEAK {v['nodeid']} - {v.get('summary', '')}")

    def _errors(self, terminalreporter: Any) -> None:
        errors = [
            v for v in self.verdicts if v.get("verdict") == "error" and v.get("mode") == "suite"
        ]
        if not errors:
            return
        verbose = self.config.get_verbosity() > 0
        s = "s" if len(errors) != 1 else ""
        terminalreporter.write_line(
            f"leakscope: {len(errors)} test{s} not checked: they do not pass when run again"
            + ("" if verbose else " (-v lists them)")
        )
        if verbose:
            for v in errors:
                reason = str(v.get("reason", "")).splitlines()
                terminalreporter.write_line(f"  {v['nodeid']}: {reason[0] if reason else ''}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        # Before the terminal summary; only the xdist controller (or a plain run) writes.
        if self.settings.report_path is not None and not _is_worker(self.config):
            _write_report(self.settings.report_path, self.verdicts)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _write_report(path: Path, verdicts: Sequence[dict[str, Any]]) -> None:
    import json

    from leakscope._files import atomic_write

    document = {
        "format": REPORT_FORMAT,
        "version": 1,
        "summary": _summary(verdicts),
        "tests": list(verdicts),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
