"""The cheap pass of ``pytest --leakscope``: which tests need the full leak check.

A test's real run is its first observation.  The heap is frozen just before it
(:func:`leakscope._interpreter.frozen`), so the reading after it (a collection, a
census of the tracked objects made since, allocated blocks, bytes in use by
``malloc``) costs what the test made, not what the whole session holds.  The
readings become :class:`~leakscope.engine.signals.Measured` runs, and
:func:`~leakscope.engine.signals.assess` judges them exactly as it judges the full
check's runs:

- every signal below its floor: the test is clean, and it is not run again;
- still growing: the test body runs again (with the heap still frozen), only while
  the readings stay unsure and only within a budget that shrinks as the test gets
  slower, so a test whose first run only filled caches costs one more run;
- growing steadily run after run (or still unsure when the budget is spent): a
  suspect, which gets the full :func:`leakscope.check` (the verdict and its
  explanation).

Tests so cheap that 32 calls cost under a millisecond get one batch
of calls even when their first run grew nothing: a leak of one small untracked
object per call (an ``int`` kept in a list) only shows over many calls.

>>> kept = []
>>> def body():
...     kept.append([])
>>> observation = Observation.begin()  # freezes the heap (None when the host froze it)
>>> body()  # the real run
>>> observation.end(seconds=0.0001)
>>> observation.screen(body).suspect  # re-runs while unsure
True
>>> observation.close()  # unfreezes
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Literal

from leakscope._heap import tracked_census
from leakscope._interpreter import frozen, host_froze_objects, preserved
from leakscope.engine.calls import Runner
from leakscope.engine.model import Run
from leakscope.engine.signals import CONFIRM, Measured, assess, changes
from leakscope.memory import read_mallinfo2

__all__ = ["Baseline", "Observation", "Reading", "ScreenOutcome", "Screening", "take_reading"]

ScreenOutcome = Literal["clean", "suspect"]

RUN_SECONDS = 0.002  # a re-run batch starts at this duration (1 call for tests slower than this)
MAX_BATCH = 16  # calls in the first re-run batches at most ...
MAX_ESCALATED = 256  # ... doubling while the growth stays steady, up to this
SUSPECT_CALLS = 256  # calls of steady growth that make a fast test a suspect
CHEAP_SECONDS = 0.001  # tests whose 2 * MAX_BATCH calls cost less get such batches regardless
BUDGET_SECONDS = 0.03  # re-run time per test at least ...
BUDGET_FACTOR = 2.0  # ... or this many times the real run;
STEADY_SECONDS = 0.15  # while the growth stays steady, at least this ...
STEADY_FACTOR = 3.0  # ... or this many times the real run (a full check costs more)
MIN_RERUNS = 2  # a growing test gets at least this many re-runs, however slow
BASELINE_TESTS = 32  # first observations the hook's own share is learnt from ...
BASELINE_MIN = 8  # ... and how many before it is left out


@dataclass(frozen=True, slots=True)
class Reading:
    """What one reading sees, taken right after a collection with the heap frozen.

    ``types`` counts the tracked objects made since the freeze, by qualified type
    name; ``blocks`` is :func:`sys.getallocatedblocks`, ``malloc`` the bytes in use
    by glibc's malloc (``None`` elsewhere), ``garbage`` the length of ``gc.garbage``.

    >>> take_reading()[0].blocks > 0
    True
    """

    types: dict[str, int]
    objects: int
    blocks: int
    malloc: int | None
    garbage: int


def take_reading() -> tuple[Reading, int]:
    """Collect, then read; returns the reading and the number of objects collected."""
    collected = gc.collect()
    types, objects = tracked_census()
    info = read_mallinfo2()
    malloc = None if info is None else info.in_use_bytes + info.mmap_bytes
    return Reading(types, objects, sys.getallocatedblocks(), malloc, len(gc.garbage)), collected


def _measured(
    before: Reading, after: Reading, *, calls: int, seconds: float, collected: int, gc_on: bool
) -> Measured:
    """The growth from ``before`` to ``after`` as a run the verdict rule reads.

    ``Run.rss`` carries the bytes in use by malloc here (more exact than pages).
    """
    grown = None if before.malloc is None or after.malloc is None else after.malloc - before.malloc
    run = Run(
        calls, seconds, after.objects - before.objects, after.blocks - before.blocks, grown, 0
    )
    return Measured(
        run=run,
        types=changes(before.types, after.types),
        containers={},
        garbage=0 if gc_on else collected,
        gc_garbage=after.garbage - before.garbage,
    )


@dataclass(frozen=True)
class Screening:
    """What the screen decided about one test, and what it cost.

    ``calls`` counts the re-run calls (the real run is not one of them) and
    ``seconds`` the time the screen added: readings and re-runs.  ``objects``,
    ``blocks`` and ``bytes`` are the growth in each measured run, the real run
    first (``bytes`` items are ``None`` where malloc cannot be read).
    """

    outcome: ScreenOutcome
    reason: str
    calls: int
    seconds: float
    objects: tuple[int, ...]
    blocks: tuple[int, ...]
    bytes: tuple[int | None, ...]

    @property
    def suspect(self) -> bool:
        return self.outcome == "suspect"

    def to_dict(self) -> dict[str, Any]:
        return {
            "suspect": self.suspect,
            "reason": self.reason,
            "calls": self.calls,
            "seconds": round(self.seconds, 6),
            "objects": list(self.objects),
            "blocks": list(self.blocks),
            "bytes": list(self.bytes),
        }


class Baseline:
    """What the reading after every real run sees that is the harness's, not the test's.

    The reading is taken inside a hook: the hook caller's own objects made since the
    freeze (pytest's argument list for the next hook, an iterator) are alive then,
    the same for every test.  The smallest per-type count among the first
    observations seen (and the median of their blocks, never below 0) is taken as
    that share and left out of each first observation.

    >>> baseline = Baseline()
    >>> for _ in range(4):
    ...     baseline.learn({"list": 1, "dict": 2}, 15)
    ...     baseline.learn({"list": 1}, 17)
    >>> baseline.types, baseline.blocks
    ({'list': 1}, 15)
    """

    def __init__(self) -> None:
        self.first = _Share()  # in the reading after the real run
        self.rerun = _Share()  # in the reading after a slow test's first re-run
        self.own_blocks: int | None = None  # what a re-run's own records keep

    @property
    def types(self) -> dict[str, int]:
        return self.first.types

    @property
    def blocks(self) -> int:
        return self.first.blocks

    def learn(self, types: dict[str, int], blocks: int) -> None:
        """Learn from one first observation (its raw growth)."""
        self.first.learn(types, blocks)

    def calibrate(self) -> None:
        """Measure once what a re-run's own records keep (blocks), with no call between."""
        if self.own_blocks is not None:
            return
        kept: list[Measured] = []
        grown = []
        before, _ = take_reading()
        for _ in range(5):
            after, _ = take_reading()
            m = _measured(before, after, calls=1, seconds=1e-6, collected=0, gc_on=True)
            kept.append(_replace_blocks(m, m.run.blocks))
            grown.append(after.blocks - before.blocks)
            before = after
        kept.clear()
        self.own_blocks = max(0, sorted(grown)[len(grown) // 2])

    def without_own(self, measured: Measured) -> Measured:
        """``measured`` without the blocks a re-run's own records keep."""
        return _replace_blocks(measured, measured.run.blocks - (self.own_blocks or 0))

    def remove(self, measured: Measured) -> Measured:
        """``measured`` (a first observation) without the harness's share."""
        return self.first.remove(measured)


class _Share:
    """The share of a reading that is the same in every test: learnt, then left out."""

    def __init__(self) -> None:
        self.types: dict[str, int] = {}
        self.blocks = 0
        self._seen = 0
        self._blocks: list[int] = []

    def learn(self, types: dict[str, int], blocks: int) -> None:
        if self._seen == 0:
            self.types = {name: n for name, n in types.items() if n > 0}
        else:
            self.types = {
                name: min(n, types.get(name, 0))
                for name, n in self.types.items()
                if types.get(name, 0) > 0
            }
        self._seen += 1
        if len(self._blocks) < BASELINE_TESTS:
            self._blocks.append(blocks)
            ordered = sorted(self._blocks)
            self.blocks = max(0, ordered[(len(ordered) - 1) // 2])

    def remove(self, measured: Measured) -> Measured:
        """``measured`` without the share (unchanged while too few were seen)."""
        if self._seen < BASELINE_MIN:
            return measured
        types = {
            name: n - self.types.get(name, 0)
            for name, n in measured.types.items()
            if n - self.types.get(name, 0)
        }
        return _replace_blocks(measured, measured.run.blocks - self.blocks, types)


RATIO = 0.6  # a re-run growing less than this share of the real run's growth: that was a fill


def _growth(measured: Measured) -> int:
    """A run's growth in tracked objects and blocks, for comparing two runs."""
    return max(0, sum(measured.types.values())) + max(0, measured.run.blocks)


def _replace_blocks(
    measured: Measured, blocks: int, types: dict[str, int] | None = None
) -> Measured:
    run = measured.run
    return Measured(
        run=Run(run.calls, run.seconds, run.objects, blocks, run.rss, run.garbage),
        types=measured.types if types is None else types,
        containers=measured.containers,
        garbage=measured.garbage,
        gc_garbage=measured.gc_garbage,
    )


class _Plan:
    """How one test's re-runs go: the batch size, the budget, what makes a suspect."""

    def __init__(self, per_call: float) -> None:
        self.cheap = per_call * 2 * MAX_BATCH <= CHEAP_SECONDS
        self.n = (
            2 * MAX_BATCH if self.cheap else max(1, min(MAX_BATCH, int(RUN_SECONDS / per_call)))
        )
        self.budget = max(BUDGET_SECONDS, BUDGET_FACTOR * per_call)
        self.steady_budget = max(STEADY_SECONDS, STEADY_FACTOR * per_call)
        # The same budgets in re-runs, from the real run's duration (a slow test's count).
        self.reruns = max(MIN_RERUNS, int(self.budget / (per_call * self.n)))
        self.steady_reruns = max(MIN_RERUNS + 1, int(self.steady_budget / (per_call * self.n)))


class Observation:
    """One test's screen: the heap frozen from before its real run until :meth:`close`.

    Made by :meth:`begin`, which returns None when the heap cannot be frozen
    (the host froze objects itself: unfreezing would undo that).
    """

    def __init__(self, stack: ExitStack, baseline: Baseline) -> None:
        self._stack = stack
        self._baseline = baseline
        self._before: Reading | None = None
        self._measured: list[Measured] = []
        self._judged = 0  # the runs from this index on are judged together
        self._spent = 0.0
        self._first_seconds = 0.0
        self._gc_on = gc.isenabled()

    @classmethod
    def begin(cls, baseline: Baseline | None = None) -> Observation | None:
        """Freeze the heap and take the reading before the real run."""
        if host_froze_objects():
            return None
        started = time.perf_counter()
        stack = ExitStack()
        stack.enter_context(frozen())
        observation = cls(stack, Baseline() if baseline is None else baseline)
        observation._before, _ = take_reading()
        observation._spent = time.perf_counter() - started
        return observation

    def end(self, seconds: float) -> None:
        """Take the reading after the real run, which took ``seconds``."""
        started = time.perf_counter()
        before = self._before
        if before is not None:
            after, collected = take_reading()
            first = _measured(
                before, after, calls=1, seconds=seconds, collected=collected, gc_on=self._gc_on
            )
            self._measured.append(self._baseline.remove(first))
            self._baseline.learn(first.types, first.run.blocks)
            self._before = after
        self._first_seconds = seconds
        self._spent += time.perf_counter() - started

    @property
    def first_clean(self) -> bool:
        """Whether the real run alone grew nothing (every signal under its floor).

        Also when it kept no memory at all (blocks and malloc'd bytes did not grow): new
        objects then replaced older ones (a setUp resetting a global cache), whose
        release the census of new objects cannot see.
        """
        assessment = assess(self._measured)
        if not assessment.leaked and not assessment.unsure:
            return True
        run = self._measured[0].run if self._measured else None
        return run is not None and run.blocks <= 0 and (run.rss is None or run.rss <= 0)

    def screen(self, call: Callable[[], object]) -> Screening:
        """Re-run ``call`` only while the readings need it; the verdict on the whole.

        ``call`` raising stops the screen: a :class:`~leakscope.engine.calls.Stopped`
        carries the exception (BaseExceptions such as ``pytest.fail`` pass through).
        """
        started = time.perf_counter()
        runner = Runner(call, keep_result=False)
        try:
            with preserved():
                outcome, reason = self._rerun(runner, _Plan(max(self._first_seconds, 1e-7)))
        finally:
            self._spent += time.perf_counter() - started
        return self.screening(outcome, reason, runner.count)

    def _rerun(self, runner: Runner, plan: _Plan) -> tuple[ScreenOutcome, str]:
        self._baseline.calibrate()
        # Read again: what the caller made since the real run's reading (the callable,
        # the runner, saved interpreter state) is not the test's growth.
        self._before, _ = take_reading()
        started = time.perf_counter()
        reruns = 0
        while True:
            judged = self._measured[self._judged :]
            assessment = assess(judged)
            calls = sum(m.run.calls for m in judged)
            steady = assessment.leaked and len(judged) >= CONFIRM
            if steady and calls >= SUSPECT_CALLS:
                return "suspect", f"steady growth over {calls} calls in {len(judged)} runs"
            clean = not assessment.leaked and not assessment.unsure
            if reruns == 0 and not plan.cheap and self.first_clean:
                return "clean", "the real run grew nothing"
            if clean and (reruns or not plan.cheap):
                if reruns == 0:
                    return "clean", "the real run grew nothing"
                return "clean", f"no growth in re-run {reruns}"
            spent = time.perf_counter() - started
            budget, most = (
                (plan.steady_budget, plan.steady_reruns) if steady else (plan.budget, plan.reruns)
            )
            if reruns >= MIN_RERUNS and (spent >= budget or reruns >= most):
                if steady:
                    return "suspect", f"steady growth over {calls} calls (budget spent)"
                return "clean", f"no steady growth in {reruns} re-runs (budget spent)"
            del judged  # a list the next reading would count as the test's
            if reruns == 0 and plan.n > 1:
                # Batches are judged among themselves: per-call rates of one call and of
                # a batch do not compare.  One call first, unmeasured: the re-run path's
                # own first-time costs are not the test's.
                runner.run(1, "a re-run (leakscope's screen)", None)
                self._before, _ = take_reading()
                self._judged = len(self._measured)
            elif assessment.leaked and plan.n > 1:
                plan.n = min(plan.n * 2, MAX_ESCALATED)
            self._observe(runner, plan.n)
            reruns += 1

    def _observe(self, runner: Runner, n: int) -> None:
        before = self._before
        if before is None:  # pragma: no cover - end() always reads first
            before, _ = take_reading()
        _, seconds = runner.run(n, "a re-run (leakscope's screen)", None)
        after, collected = take_reading()
        measured = _measured(
            before, after, calls=n, seconds=seconds, collected=collected, gc_on=gc.isenabled()
        )
        measured = self._baseline.without_own(measured)
        if n == 1 and len(self._measured) == 1:
            # A slow test's first re-run: the re-run path's own first-time share goes.
            share = self._baseline.rerun
            raw = measured
            measured = share.remove(raw)
            share.learn(raw.types, raw.run.blocks)
            if _growth(measured) < RATIO * _growth(self._measured[0]):
                self._judged = 1  # the real run filled caches: judge the re-runs alone
        self._measured.append(measured)
        self._before = after

    def screening(self, outcome: ScreenOutcome, reason: str, calls: int = 0) -> Screening:
        """The screen's verdict as decided by the caller, with the readings so far."""
        runs = [m.run for m in self._measured]
        return Screening(
            outcome=outcome,
            reason=reason,
            calls=calls,
            seconds=self._spent,
            objects=tuple(sum(m.types.values()) for m in self._measured),
            blocks=tuple(r.blocks for r in runs),
            bytes=tuple(r.rss for r in runs),
        )

    @property
    def seconds(self) -> float:
        """The time the screen has added so far (readings and re-runs)."""
        return self._spent

    def close(self) -> None:
        """Unfreeze the heap (the collector then catches up at its own pace)."""
        self._measured.clear()
        self._before = None
        self._stack.close()
