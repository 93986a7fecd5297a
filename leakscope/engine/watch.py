"""Decorators: ``@no_leaks`` for tests, ``@watch`` for production code.

``@no_leaks`` turns a call into a leak check::

    @leakscope.no_leaks
    def test_handler():
        handle(fake_request())        # called repeatedly; LeakError if it leaks

``@watch`` observes real calls and never repeats them::

    @leakscope.watch(sample=0.01)
    def handle(request): ...

    handle.leakscope_report()         # the LeakReport so far

A watched function is measured on a sample of its calls (every ``1/sample``-th
call, counted without locks or clocks, so an unsampled call costs well under a
microsecond).  Around a sampled call leakscope reads the allocated blocks and the
types of the young objects that survive it; at checkpoints (sampled calls 2, 4,
8, ... then every 128th) it takes a census of the whole heap.  When the heap
grows steadily across checkpoints, in types this function's calls leave behind,
the function is reported: one WARNING on the ``leakscope`` logger with the
explanation, and ``leakscope_report()`` returns a leaked report.  Checkpoints
collect garbage and count every object: they cost what :func:`leakscope.snapshot`
costs, once per checkpoint.
"""

from __future__ import annotations

import functools
import gc
import inspect
import itertools
import logging
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, TypeVar, overload

from leakscope._env import sample_rate
from leakscope._heap import SampleRef, census, type_name
from leakscope.engine.calls import call_name
from leakscope.engine.check import run_check
from leakscope.engine.explain import culprits_from_growth
from leakscope.engine.model import LeakReport, PerCall, Run
from leakscope.engine.signals import Assessment, Census, Measured, assess, changes, take_census

__all__ = ["no_leaks", "watch"]

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger("leakscope")

_FIRST_CHECKPOINTS = (2, 4, 8, 16, 32, 64, 128)
_CHECKPOINT_EVERY = 128
_MIN_INTERVALS = 5
_KEEP_INTERVALS = 8
_MAX_YOUNG_TYPES = 256
_REFS_PER_SAMPLE = 8
_MAX_REFS = 512
_WEAKREF_OFFSET = type.__dict__["__weakrefoffset__"]


# -- @no_leaks ----------------------------------------------------------------------------


@overload
def no_leaks(func: F) -> F: ...


@overload
def no_leaks(
    func: None = None,
    *,
    warmup: int | None = None,
    runs: int | None = None,
    trace: bool = True,
    timeout: float | None = None,
) -> Callable[[F], F]: ...


def no_leaks(
    func: Callable[..., Any] | None = None,
    *,
    warmup: int | None = None,
    runs: int | None = None,
    trace: bool = True,
    timeout: float | None = None,
) -> Any:
    """Check every call of the decorated function for leaks.

    Calling the decorated function with arguments runs :func:`leakscope.check`
    on ``func(*args, **kwargs)`` and raises :class:`~leakscope.LeakError` when it
    leaks; otherwise it returns the result of the last call.  If the function
    raises, the exception propagates unchanged.  Works on plain functions and
    methods; an async function becomes a plain function that runs each call
    in a fresh event loop (``TypeError`` if a loop is already running).

    >>> @no_leaks(runs=3)
    ... def pure(x):
    ...     return x * 2
    >>> pure(21)
    42
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(f):
            raise TypeError(f"no_leaks() decorates a callable, not {type(f).__name__}")

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outcome = run_check(
                functools.partial(f, *args, **kwargs),
                warmup=warmup,
                runs=runs,
                trace=trace,
                timeout=timeout,
                keep_result=True,
            )
            if outcome.exc is not None:
                exc, outcome.exc = outcome.exc, None
                try:
                    raise exc
                finally:
                    del exc
            outcome.report.raise_if_leaked()
            return outcome.result

        return wrapper

    if func is not None:
        return decorate(func)
    return decorate


# -- @watch -------------------------------------------------------------------------------


def _check_sample(sample: float | None) -> float:
    if sample is None:
        return sample_rate()
    if isinstance(sample, bool) or not isinstance(sample, (int, float)) or not 0 < sample <= 1:
        raise ValueError(f"sample must be a number in (0, 1], not {sample!r:.40}")
    return float(sample)


class _Watch:
    """Per-function accumulated observations of a watched function (thread-safe)."""

    def __init__(self, name: str, every: int, log: bool) -> None:
        self.name = name
        self.every = every
        self.log = log
        self.lock = threading.Lock()
        self.checkpoint_lock = threading.Lock()
        self.samples = 0
        self.blocks = 0
        self.young: Counter[str] = Counter()
        # Weak references to a few young survivors per sample: still alive at a later
        # checkpoint means this function's calls retain that type.
        self.refs: deque[SampleRef] = deque(maxlen=_MAX_REFS)
        self.base: Census | None = None
        self.base_blocks = 0
        self.base_samples = 0
        self.intervals: list[Measured] = []
        self.assessment = Assessment()
        self.logged = False
        self.started = time.monotonic()

    def observe(self, blocks: int, young: list[object], result: object) -> None:
        counts = census(young)
        refs: list[SampleRef] = []
        for o in young:
            if len(refs) >= _REFS_PER_SAMPLE:
                break
            tp = type(o)
            if o is result or not _WEAKREF_OFFSET.__get__(tp):
                continue
            name = type_name(tp)
            if "." not in name:  # builtins: too common to tell whose they are
                continue
            try:
                ref = SampleRef(o)
            except TypeError:
                continue
            ref.name = name
            refs.append(ref)
        with self.lock:
            self.samples += 1
            self.blocks += blocks
            for name, n in counts.items():
                if name in self.young or len(self.young) < _MAX_YOUNG_TYPES:
                    self.young[name] += n
            samples = self.samples
            for ref in refs:
                ref.sample = samples
            self.refs.extend(refs)
        del refs
        if samples in _FIRST_CHECKPOINTS or (
            samples > _FIRST_CHECKPOINTS[-1] and samples % _CHECKPOINT_EVERY == 0
        ):
            self.checkpoint()

    def checkpoint(self) -> None:
        if not self.checkpoint_lock.acquire(blocking=False):
            return  # another thread is taking one
        try:
            gc.collect()
            blocks = sys.getallocatedblocks()
            current = take_census()
            with self.lock:
                samples = self.samples
            if self.base is not None:
                calls = max(1, (samples - self.base_samples) * self.every)
                self.intervals.append(
                    Measured(
                        run=Run(
                            calls,
                            0.0,
                            current.objects - self.base.objects,
                            blocks - self.base_blocks,
                            None,
                            0,
                        ),
                        types=changes(self.base.types, current.types),
                        containers=changes(self.base.containers, current.containers),
                        garbage=0,
                        gc_garbage=0,
                    )
                )
                del self.intervals[:-_KEEP_INTERVALS]
            self.base, self.base_blocks, self.base_samples = current, blocks, samples
            if len(self.intervals) >= _MIN_INTERVALS:
                self.assessment = self._attributed(assess(self.intervals))
            if self.assessment.leaked and not self.logged:
                self.logged = True
                if self.log:
                    logger.warning("%s", self.report())
        finally:
            self.checkpoint_lock.release()

    def _attributed(self, found: Assessment) -> Assessment:
        """Keep the growth this function's calls account for."""
        with self.lock:
            young = dict(self.young)
            mean_blocks = self.blocks / self.samples if self.samples else 0.0
            current = self.samples
            alive: Counter[str] = Counter()
            followed: Counter[str] = Counter()
            for ref in self.refs:
                if ref.sample < current:  # the newest sample's objects may not be released yet
                    followed[ref.name] += 1
                    alive[ref.name] += ref() is not None
        if any(followed[name] for name in found.leaking_types):
            types = {
                name: rate
                for name, rate in found.leaking_types.items()
                if followed[name] and alive[name] * 2 >= followed[name]
            }
        else:
            types = {name: rate for name, rate in found.leaking_types.items() if young.get(name)}
        if found.leaking_types and not types:
            return Assessment()
        if not types and mean_blocks < 0.5:
            return Assessment()
        return Assessment(
            leaking_types=types or found.leaking_types,
            leaking_containers=found.leaking_containers,
            blocks=found.blocks,
        )

    def report(self) -> LeakReport:
        """The :class:`LeakReport` so far (culprit types and containers; no paths or sites)."""
        intervals = list(self.intervals)
        assessment = self.assessment
        tail = intervals[-3:]
        calls = sum(m.run.calls for m in tail) or 1
        container_types = dict(self.base.container_types) if self.base is not None else {}
        with self.lock:
            samples = self.samples
            mean_blocks = self.blocks / samples if samples else 0.0
        notes = [
            f"watched {samples * self.every:,} calls (about), sampled {samples:,}, "
            f"over {time.monotonic() - self.started:.0f} s"
        ]
        return LeakReport(
            function=self.name,
            leaked=assessment.leaked,
            per_call=PerCall(
                objects=sum(m.run.objects for m in tail) / calls if assessment.leaked else 0.0,
                blocks=mean_blocks,
            ),
            culprits=culprits_from_growth(assessment, container_types) if assessment.leaked else (),
            runs=tuple(m.run for m in intervals),
            notes=tuple(notes),
        )


def _observe(state: _Watch, blocks: int, result: object) -> None:
    blocks = sys.getallocatedblocks() - blocks
    young = gc.get_objects(generation=0)
    try:
        state.observe(blocks, young, result)
    finally:
        del young


@overload
def watch(func: F) -> F: ...


@overload
def watch(
    func: None = None, *, sample: float | None = None, log: bool = True
) -> Callable[[F], F]: ...


def watch(
    func: Callable[..., Any] | None = None, *, sample: float | None = None, log: bool = True
) -> Any:
    """Observe a function in production and report it when it keeps growing.

    ``sample`` is the fraction of calls measured (default ``LEAKSCOPE_SAMPLE``
    or 0.01); sampling is every ``round(1/sample)``-th call.  With ``log=True``
    a leak is logged once as a WARNING on the ``leakscope`` logger.  The
    wrapper has ``leakscope_report()``, returning the current
    :class:`~leakscope.LeakReport`.  Works on plain and async functions.
    """
    rate = _check_sample(sample)
    if not isinstance(log, bool):
        raise TypeError(f"log must be True or False, not {log!r:.40}")
    every = max(1, round(1 / rate))

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(f):
            raise TypeError(f"watch() decorates a callable, not {type(f).__name__}")
        state = _Watch(call_name(f), every, log)
        counter = itertools.count(1)
        tick = counter.__next__

        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                if tick() % every:
                    return await f(*args, **kwargs)
                gc.collect(0)
                blocks = sys.getallocatedblocks()
                result = None
                try:
                    result = await f(*args, **kwargs)
                    return result
                finally:
                    _observe(state, blocks, result)

            async_wrapper.leakscope_report = state.report  # type: ignore[attr-defined]
            return async_wrapper

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if tick() % every:
                return f(*args, **kwargs)
            gc.collect(0)
            blocks = sys.getallocatedblocks()
            result = None
            try:
                result = f(*args, **kwargs)
                return result
            finally:
                _observe(state, blocks, result)

        wrapper.leakscope_report = state.report  # type: ignore[attr-defined]
        return wrapper

    if func is not None:
        return decorate(func)
    return decorate
