"""Leak verdicts: call a function many times and decide whether it leaks.

:func:`check` follows what CPython's ``regrtest -R`` learned (warm-up calls
first, then several measured runs, a leak only when growth is sustained) and
chooses the number of runs adaptively::

    report = leakscope.check(lambda: handle_request(fake_request))
    if report.leaked:
        print(report)            # ranked culprits, what holds them, where they were allocated
    report.raise_if_leaked()     # LeakError (an AssertionError) with the same explanation

Each measured run calls the function a number of times (doubling from run to
run), collects garbage and measures every signal: per-type object counts,
the lengths of module/class containers (which see dicts of strings that the
collector does not track), allocated memory blocks (which see strings, bytes
and numbers), resident memory, cyclic garbage left behind while ``gc`` is
disabled and ``gc.garbage``.  A signal leaks when it grew in each of the last
three runs at a per-call rate that did not fall off; a cache that fills and
then plateaus stops growing and is not reported.  Runs continue until every
signal has settled, or a steady growth has been seen over at least ~1,000
calls (or the time budget is spent).
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from leakscope._format import format_rate
from leakscope._heap import object_type_name, rss_bytes
from leakscope._interpreter import InterpreterState, frozen, preserved
from leakscope.engine.calls import (
    Runner,
    Stopped,
    as_sync,
    call_name,
    error_text,
    type_names,
    warm_up,
)
from leakscope.engine.explain import explain
from leakscope.engine.model import Culprit, LeakReport, PerCall, Run
from leakscope.engine.signals import (
    CONFIRM,
    Assessment,
    Measured,
    assess,
    changes,
    settled,
    take_census,
)

__all__ = ["Outcome", "check", "run_check"]

# -- tunables of the adaptive verdict ------------------------------------------------------
_MIN_RUNS = 5  # measured runs before any verdict
_MAX_RUNS = 14
_MIN_CALLS = 1024  # measured calls wanted before a leak verdict, when the budget allows
_BUDGET = 2.0  # seconds of measured calls spent at most when no timeout is given
_FIRST_RUN_SECONDS = 0.004  # the first measured run aims at this duration
_MAX_FIRST_RUN = 32


def _positive_int(value: object, what: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum} or None, not {value!r:.40}")
    return value


@dataclass
class Outcome:
    report: LeakReport
    result: Any = None
    exc: BaseException | None = None


class _Readings:
    """Process-wide readings taken after a full collection: blocks, RSS, gc.garbage, census."""

    __slots__ = ("blocks", "census", "garbage", "rss")

    def __init__(self) -> None:
        self.blocks = sys.getallocatedblocks()
        self.rss = rss_bytes()
        self.garbage = len(gc.garbage)
        self.census = take_census()


def _measured_run(
    runner: Runner, n: int, index: int, deadline: float | None, base: _Readings
) -> tuple[Measured, _Readings]:
    """One measured run of ``n`` calls: the calls, a collection, and the growth since ``base``."""
    done, seconds = runner.run(n, f"measured run {index},", deadline)
    gc_was_enabled = gc.isenabled()
    collected = gc.collect()
    after = _Readings()
    rss = None if after.rss is None or base.rss is None else after.rss - base.rss
    measured = Measured(
        run=Run(
            done,
            seconds,
            after.census.objects - base.census.objects,
            after.blocks - base.blocks,
            rss,
            collected,
        ),
        types=changes(base.census.types, after.census.types),
        containers=changes(base.census.containers, after.census.containers),
        garbage=0 if gc_was_enabled else collected,
        gc_garbage=after.garbage - base.garbage,
    )
    return measured, after


def _first_run_calls(runs: int | None, per_call_s: float) -> int:
    if runs is None:
        first = int(_FIRST_RUN_SECONDS / per_call_s) if per_call_s > 0 else _MAX_FIRST_RUN
        return max(1, min(_MAX_FIRST_RUN, first))
    return 1 if per_call_s * 2 ** (runs - 1) > _BUDGET else max(1, min(_MAX_FIRST_RUN, 8))


def _adaptive_stop(
    measured: list[Measured], assessment: Assessment, spent: float, n: int, notes: list[str]
) -> bool:
    """Whether an adaptive check has seen enough (or spent its budget)."""
    k = len(measured)
    calls = sum(m.run.calls for m in measured)
    if k >= _MIN_RUNS:
        if assessment.leaked and calls >= _MIN_CALLS:
            return True
        if not assessment.leaked and not assessment.unsure:
            return True
    if k >= _MAX_RUNS:
        return True
    estimate = spent / max(1, calls) * n * 2
    if k >= _MIN_RUNS and spent + estimate > _BUDGET:
        if assessment.leaked and calls < _MIN_CALLS:
            notes.append(
                f"steady growth seen over {calls:,} calls only (time budget spent); "
                "a cache bigger than that would look the same: pass runs= or timeout= "
                "to measure longer"
            )
        return True
    return False


@dataclass
class _Runs:
    """The measured runs of one check and the assessment of the last one."""

    measured: list[Measured]
    assessment: Assessment
    spent: float
    container_types: dict[str, str]
    notes: list[str]


def _measure_runs(
    runner: Runner, *, n: int, runs: int | None, deadline: float | None, timeout: float | None
) -> _Runs:
    """Measured runs, doubling the calls each time, until the verdict is clear."""
    measured: list[Measured] = []
    notes: list[str] = []
    spent = 0.0
    assessment = Assessment()
    # Everything alive after the warm-up is frozen for the measured runs: each collection
    # and census then looks only at the objects made since, not the whole process (most
    # of a check's time in a big process).  Blocks, RSS and gc.garbage are read right
    # after a full collection, which also empties the free lists, so consecutive readings
    # compare like with like.
    with frozen():
        gc.collect()
        base = _Readings()
        while True:
            m, base = _measured_run(runner, n, len(measured) + 1, deadline, base)
            measured.append(m)
            spent += m.run.seconds
            assessment = assess(measured)
            if deadline is not None and time.perf_counter() > deadline:
                if runs is None or len(measured) < runs:
                    notes.append(
                        f"timed out after {timeout} s; the verdict uses the runs completed so far"
                    )
                break
            if runs is not None:
                if len(measured) >= runs:
                    break
            elif _adaptive_stop(measured, assessment, spent, n, notes):
                break
            n *= 2
    return _Runs(measured, assessment, spent, base.census.container_types, notes)


def _without_ignored(
    culprits: tuple[Culprit, ...], ignored: frozenset[str], notes: list[str]
) -> tuple[Culprit, ...]:
    """The culprits whose main type is not in ``ignored`` (a note lists the others)."""
    kept = tuple(c for c in culprits if not c.types or c.types[0] not in ignored)
    if len(kept) < len(culprits):
        notes.append(
            "ignored (ignore_types): "
            + ", ".join(
                f"{c.types[0]} +{format_rate(c.per_call)} {c.unit}/call"
                for c in culprits
                if c not in kept
            )
        )
    return kept


def _measure(
    runner: Runner,
    *,
    warmup: int | None,
    runs: int | None,
    timeout: float | None,
    trace: bool,
    state: InterpreterState,
    name: str,
    ignored: frozenset[str] = frozenset(),
) -> LeakReport:
    started = time.perf_counter()
    deadline = None if timeout is None else started + timeout
    warm_calls, per_call_s = warm_up(runner, warmup, deadline)
    done = _measure_runs(
        runner, n=_first_run_calls(runs, per_call_s), runs=runs, deadline=deadline, timeout=timeout
    )
    measured, assessment, notes = done.measured, done.assessment, done.notes
    culprits: tuple[Culprit, ...] = ()
    bounded: tuple[str, ...] = ()
    per_call_bytes: float | None = None
    if assessment.leaked:
        explained = explain(
            runner.run,
            assessment,
            measured,
            done.container_types,
            trace=trace,
            state=state,
            calls_hint=measured[-1].run.calls,
            seconds_per_call=done.spent / max(1, sum(m.run.calls for m in measured)),
        )
        culprits, per_call_bytes = explained.culprits, explained.bytes_per_call
        bounded = explained.bounded
        notes.extend(explained.notes)
    # Growth into a cache's declared bound is not a leak, however long it would go on.
    leaked = assessment.leaked and (bool(culprits) or not bounded)
    if leaked and ignored and culprits:
        culprits = _without_ignored(culprits, ignored, notes)
        leaked = bool(culprits)
    tail = measured[-min(CONFIRM, len(measured)) :]
    tail_calls = sum(m.run.calls for m in tail) or 1
    per_call = PerCall(
        objects=sum(m.run.objects for m in tail) / tail_calls,
        blocks=sum(m.run.blocks for m in tail) / tail_calls,
        bytes=per_call_bytes,
    )
    return LeakReport(
        function=name,
        leaked=leaked,
        per_call=per_call,
        culprits=culprits,
        runs=tuple(m.run for m in measured),
        warmup=warm_calls,
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
        settled=settled(measured, assessment),
        bounded=bounded,
    )


def run_check(
    func: Callable[[], Any],
    *,
    warmup: int | None = None,
    runs: int | None = None,
    trace: bool = True,
    timeout: float | None = None,
    keep_result: bool = False,
    ignore_types: Iterable[str | type] = (),
) -> Outcome:
    """:func:`check`, also handing back the last result or the exception ``func`` raised."""
    if not callable(func):
        raise TypeError(
            f"check() needs a callable taking no arguments, not {object_type_name(func)}"
        )
    warmup = _positive_int(warmup, "warmup", 1)
    runs = _positive_int(runs, "runs", 2)
    if not isinstance(trace, bool):
        raise TypeError(f"trace must be True or False, not {trace!r:.40}")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ValueError(
            f"timeout must be a positive number of seconds or None, not {timeout!r:.40}"
        )
    ignored = type_names(ignore_types)
    name = call_name(func)
    runner = Runner(as_sync(func), keep_result)
    started = time.perf_counter()
    try:
        with preserved() as state:
            report = _measure(
                runner,
                warmup=warmup,
                runs=runs,
                timeout=None if timeout is None else float(timeout),
                trace=trace,
                state=state,
                name=name,
                ignored=ignored,
            )
    except Stopped as stopped:
        exc = stopped.exc
        report = LeakReport(
            function=name,
            leaked=False,
            per_call=PerCall(0.0, 0.0),
            warmup=0,
            seconds=time.perf_counter() - started,
            error=error_text(exc, stopped.phase),
        )
        del stopped
        return Outcome(report, exc=exc)
    result, runner.result = runner.result, None
    return Outcome(report, result=result)


def check(
    func: Callable[[], Any],
    *,
    warmup: int | None = None,
    runs: int | None = None,
    trace: bool = True,
    timeout: float | None = None,
    ignore_types: Iterable[str | type] = (),
) -> LeakReport:
    """Call ``func`` repeatedly and decide whether it leaks; return a :class:`LeakReport`.

    ``func`` takes no arguments (pass ``functools.partial(f, x)`` or a lambda);
    an async function runs to completion in a fresh event loop per call.
    ``warmup`` is the number of warm-up calls and ``runs`` the number of
    measured runs (calls double from run to run); by default both are chosen
    adaptively.  ``trace=True`` finds allocation sites with ``tracemalloc``
    (started and stopped again if it was off).  ``timeout`` bounds the time in
    seconds: the verdict then uses the runs completed so far.  ``ignore_types``
    names types whose growth is expected (types, or qualified names such as
    ``"mypkg.Session"``): a culprit whose main type is one of them is left out
    of the verdict and of the culprits (a note says what was ignored), so the
    report says ``leaked=False`` when nothing else grows.

    When ``func`` raises, the report carries ``error`` and no verdict; the
    exception is not re-raised (``@no_leaks`` re-raises it).  Interpreter
    state (gc flags and thresholds, tracemalloc, warnings filters) is restored
    exactly either way.

    >>> cache = []
    >>> check(lambda: cache.append(object())).leaked
    True
    """
    outcome = run_check(
        func, warmup=warmup, runs=runs, trace=trace, timeout=timeout, ignore_types=ignore_types
    )
    outcome.exc = None
    return outcome.report
