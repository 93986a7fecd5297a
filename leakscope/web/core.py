"""The framework-neutral core of the web adapters: one :class:`Monitor` per application.

An adapter (WSGI, ASGI, Django, Celery) reports each request's start and end with its
route name; the monitor decides which requests are measured, measures them, keeps the
route table and the timeline, publishes the worker's state and answers ``status()``::

    monitor = Monitor(budget=0.01)
    number = monitor.request_started()          # in flight from now (no lock taken)
    sampling = monitor.try_sample(number)        # a Sampling when this one is measured
    ...                                          # the application runs
    monitor.request_ended(number, "GET /items/{id}", sampling, roots=[environ])
    monitor.status()                             # routes, growth, timeline, overhead

A request is measured only while no other request is in flight, while the time spent
measuring stays under the budget, and at most every ``1/sample`` requests.
``request_abandoned(number)`` ends a request that will never be recorded (a response
dropped unclosed).  Every monitor of the process is in :func:`monitors`; after a fork
each one starts afresh (see :mod:`leakscope.web.forks`).
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from leakscope._env import DEFAULT_REQUEST_SAMPLE, sample_rate
from leakscope._env import budget as budget_fraction
from leakscope._heap import rss_bytes
from leakscope.web.budget import INITIAL_CREDIT, MAX_CREDIT, Budget, positive
from leakscope.web.forks import Registry, stale
from leakscope.web.publishing import Publisher
from leakscope.web.sampler import Mark, Sampler
from leakscope.web.status import worker_state
from leakscope.web.table import RouteTable, Sample, given
from leakscope.web.timeline import Timeline

__all__ = ["Monitor", "Sampling", "after_fork", "monitors"]

logger = logging.getLogger("leakscope")

RESERVE = INITIAL_CREDIT
"""Seconds of credit a heap census must leave for samples: samples go first (a new worker's
first credit goes to its first samples, not to a census of its heap)."""

_registry: Registry[Monitor] = Registry()


def monitors() -> list[Monitor]:
    """Every live monitor of this process, oldest first (gunicorn hooks, Prometheus)."""
    return _registry.instances()


def after_fork() -> None:
    """In a forked child: every monitor created before the fork starts afresh (never raises)."""
    _registry.reset_stale()


class Sampling:
    """A measured request in flight: its number, what the sampler saw and started before it
    ran (a frozen heap, maybe a tracemalloc window) and when it started."""

    __slots__ = ("mark", "number", "started")

    def __init__(self, number: int, mark: Mark) -> None:
        self.number = number
        self.mark = mark
        self.started = time.perf_counter()


class Monitor:
    """Measures what each route of one application retains (see the module docstring).

    ``sample``: the largest fraction of requests measured (default env ``LEAKSCOPE_SAMPLE``,
    else 1); ``budget``: the largest fraction of wall time spent measuring (env
    ``LEAKSCOPE_BUDGET``, else 0.01; 1: no limit); ``interval``: seconds between timeline
    points; ``history``: points kept; ``directory``: where the worker publishes its state
    (env ``LEAKSCOPE_DIR``; none: no publishing); ``clock``: seconds, for tests.

    >>> monitor = Monitor(budget=1.0)
    >>> n = monitor.request_started()
    >>> monitor.request_ended(n, "GET /", monitor.try_sample(n))
    >>> monitor.status()["sampled"]
    1
    """

    def __init__(
        self,
        *,
        sample: float | None = None,
        budget: float | None = None,
        interval: float = 10.0,
        history: int = 360,
        directory: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        rate = positive("sample", sample_rate(DEFAULT_REQUEST_SAMPLE) if sample is None else sample)
        if rate > 1:
            raise ValueError(f"sample must be in (0, 1], not {sample!r:.40}")
        self.budget = Budget(budget_fraction() if budget is None else budget, clock=clock)
        interval = positive("interval", interval)
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ValueError(f"history must be a positive integer, not {history!r:.40}")
        if directory is None:
            directory = os.environ.get("LEAKSCOPE_DIR") or None
        self.sample = rate
        self.history = history
        self.clock = clock
        self.timeline = Timeline(interval, history, clock=clock)
        self.publisher = Publisher(directory, clock=clock)
        self._every = max(1, round(1 / rate))
        self.warnings: list[str] = []  # shown in the status and the dashboard (kept across forks)
        self._reset()
        _registry.add(self)

    @property
    def directory(self) -> str | None:
        """Where this worker publishes its state (None: nowhere)."""
        return self.publisher.directory

    @property
    def pid(self) -> int:
        """The process this monitor's state belongs to."""
        return self._pid

    def _reset(self) -> None:
        """Start afresh: a new process (after fork) or a new monitor."""
        self._lock = threading.Lock()
        self._measure_lock = threading.Lock()
        self._pid = os.getpid()
        self._started = time.time()
        # The request path takes no lock: requests are numbered by an atomic counter, and
        # those in flight are keys of a dict (its setitem and pop are atomic).
        self._numbers = itertools.count()
        self._active: dict[int, None] = {}
        self._last_start = -1  # the number of the request that started last
        self._next_sample = self._every - 1  # the first request number that may be sampled
        self._skipped_busy = 0
        self._sampling: Sampling | None = None  # the measurement in flight, if any
        self._want_sites = False  # a route retains objects whose allocation line is unknown
        self.budget.reset()
        self.timeline.reset()
        self.publisher.reset()
        self.table = RouteTable()
        self.sampler = Sampler()
        self._next_due = self.clock()  # when a census or publishing is next due

    def after_fork(self) -> None:
        """Start afresh in a forked child: new locks, no requests, no timeline."""
        self._reset()

    def warn(self, text: str) -> None:
        """Show ``text`` in this worker's status (``"warnings"``) and the dashboard, once."""
        if text not in self.warnings:
            self.warnings.append(text)

    # -- the request path ------------------------------------------------------------------

    def request_started(self) -> int:
        """A request starts: its number; it is in flight until ended or abandoned."""
        number = next(self._numbers)
        self._last_start = number
        self._active[number] = None
        if self._sampling is not None:
            self._cancel_sampling()  # overlapping a measured request: that sample is void
        return number

    def start(self) -> tuple[int, Sampling | None]:
        """``request_started()`` and ``try_sample()`` in one call (the request path's)."""
        number = next(self._numbers)
        self._last_start = number
        active = self._active
        active[number] = None
        if self._sampling is not None:
            self._cancel_sampling()  # overlapping a measured request: that sample is void
        if number < self._next_sample or len(active) != 1:
            return number, None
        return number, self.try_sample(number)

    def in_flight(self) -> int:
        """Requests in flight now."""
        return len(self._active)

    def try_sample(self, number: int) -> Sampling | None:
        """Start measuring request ``number`` when due, alone in flight and within budget."""
        if number < self._next_sample or len(self._active) != 1:
            return None
        try:
            now = self.clock()
            if self.budget.paused(now):
                return None
            with self._lock:
                if number < self._next_sample:
                    return None  # taken meanwhile by another thread
                self._next_sample = number + self._every
            if not self.budget.open(now):
                return None
            t0 = time.perf_counter()
            # Allocation lines (a tracemalloc window) on every other sample while a route
            # retains objects whose line is not known yet.
            sites = self._want_sites and self.table.sampled % 2 == 0
            sampling = Sampling(number, self.sampler.begin(sites=sites))
            self._sampling = sampling
            self.budget.spend(time.perf_counter() - t0)
            if len(self._active) != 1:
                self._cancel_sampling()  # another request started meanwhile
                return None
            return sampling
        except Exception:
            logger.exception("leakscope: could not start measuring a request")
            self._cancel_sampling()
            return None

    def _cancel_sampling(self) -> None:
        """End the measurement in flight without taking it (unfreeze, stop tracing)."""
        sampling, self._sampling = self._sampling, None
        if sampling is not None:
            try:
                self.sampler.cancel(sampling.mark)
            except Exception:
                logger.exception("leakscope: could not end a measurement")

    def request_ended(
        self,
        number: int,
        route: str,
        sampling: Sampling | None = None,
        roots: Iterable[object] = (),
        frame: FrameType | None = None,
        *,
        measure: bool = True,
    ) -> None:
        """Request ``number`` ended: measure it (when sampled), count it under ``route``.

        ``roots``: what the server still holds of the request (the environ, the ASGI
        scope); ``frame``: the innermost frame still running (default: the caller's);
        ``measure=False``: count it, but do not measure it (it raised: the traceback still
        holds its objects).  Never raises.
        """
        if sampling is None:  # the request path of an unmeasured request: one call
            self._active.pop(number, None)
            self._record(route, None)
            return
        sample = None
        try:
            if measure:
                sample = self._measure(sampling, roots, frame or sys._getframe(1))
        except Exception:
            logger.exception("leakscope: measuring a request failed (the request was served)")
        finally:
            if self._sampling is sampling:
                self._cancel_sampling()
            else:
                self.sampler.cancel(sampling.mark)  # idempotent
            self._active.pop(number, None)
        self._record(route, sample)

    def request_abandoned(self, number: int) -> None:
        """Request ``number`` will never end properly: no longer in flight, not counted.

        Takes no lock and touches no interpreter state (a collection may run it, from a
        finalizer): a measurement it leaves open is ended when the next request starts.
        """
        self._active.pop(number, None)

    def _measure(
        self, sampling: Sampling, roots: Iterable[object], frame: FrameType | None
    ) -> Sample | None:
        t0 = time.perf_counter()
        try:
            if (
                len(self._active) != 1
                or self._last_start != sampling.number
                or self._sampling is not sampling
            ):
                with self._lock:
                    self._skipped_busy += 1
                return None
            traced = sampling.mark.tracing
            sample = self.sampler.measure(sampling.mark, roots, frame)
            if traced:  # the whole request ran under tracemalloc: charged in full
                t0 = min(t0, sampling.started)
            return sample
        finally:
            self.budget.spend(time.perf_counter() - t0)

    def _record(self, name: str, sample: Sample | None) -> None:
        """Count an ended request under its route; take a census or publish when due."""
        try:
            if sample is None and self.table.count(name):
                forming = False
            else:
                with self._lock:
                    forming = self.table.record(name, sample)
                    if sample is not None:
                        self._want_sites = self.table.wants_sites()
            now = self.clock()
            if forming and self.publisher.directory is not None:
                with self._lock:
                    self.publisher.hurry(now)
                    self._reschedule()
            if now < self._next_due:
                return
            with self._lock:
                point_due = not self._active and self.timeline.due(now)
                publish_due = self.publisher.due(now)
                self._reschedule()
            if point_due:
                self._timeline_point(now)
            if publish_due:
                self.publish()
        except Exception:
            logger.exception("leakscope: recording a request failed (the request was served)")

    def _reschedule(self) -> None:
        """When the request path next needs to look at the clock (under the lock)."""
        due = self.timeline.next_at
        if self.publisher.directory is not None:
            due = min(due, self.publisher.next_at)
        self._next_due = due

    # -- timeline, publishing ----------------------------------------------------------------

    def _timeline_point(self, now: float) -> None:
        """A point is due: a heap census when the budget has that much to spare (samples go
        first), else a light point (memory and routes, no census)."""
        if self.budget.affords(min(self.timeline.estimated_cost() + RESERVE, MAX_CREDIT), now):
            self.take_point()
        elif self.budget.open(now):
            self.take_light_point()
        else:
            with self._lock:
                self.timeline.postpone(now)
                self._reschedule()

    def take_light_point(self) -> None:
        """A timeline point without a heap census: RSS, blocks, what the routes retain; and a
        cheap look at the known containers (one that started growing becomes watched)."""
        t0 = time.perf_counter()
        try:
            self.sampler.refresh()
            with self._lock:
                self.timeline.light(self.table)
        finally:
            self.budget.spend(time.perf_counter() - t0)

    def take_point(self) -> bool:
        """Take a timeline point (a heap census) now, whatever the schedule and budget.

        False when another census is running.  The time it takes is charged to the budget.
        """
        if not self._measure_lock.acquire(blocking=False):
            return False
        t0 = time.perf_counter()
        try:
            counts, _, point = self.timeline.census()
            # New modules and classes: their containers are watched from now on.
            self.sampler.rescan()
            with self._lock:
                self.timeline.add(counts, point, self.table)
        finally:
            self._measure_lock.release()
            cost = time.perf_counter() - t0
            self.timeline.cost = cost
            self.budget.spend(cost)
        return True

    def publish(self) -> None:
        """Publish this worker's state to the directory now (no-op without a directory)."""
        if self.publisher.directory is None:
            return
        t0 = time.perf_counter()
        try:
            self.publisher.publish(self.status())
        finally:
            self.budget.spend(time.perf_counter() - t0)

    # -- status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """This worker's state: requests, memory, growth since the first census, routes, timeline."""
        if stale(self):
            self.after_fork()
        sampling = self._sampling
        if sampling is not None and sampling.number not in self._active:
            self._cancel_sampling()  # its response was dropped unclosed: unfreeze now
        rss = rss_bytes()
        blocks = sys.getallocatedblocks()
        with self._lock:
            timeline = self.timeline
            latest = timeline.latest
            overhead = self.budget.overhead()
            overhead.update(
                sample=self.sample,
                skipped_busy=self._skipped_busy,
                skipped_noisy=self.sampler.skipped_noisy,
            )
            state = worker_state(
                pid=self._pid,
                started=self._started,
                # Started: read from the counter itself, where the request path's record of
                # the last number may lag behind the requests other threads start now.
                requests=given(self._numbers),
                sampled=self.table.sampled,
                rss=rss,
                blocks=blocks,
                objects=None if latest is None else latest["objects"],
                growth=timeline.growth(rss, blocks),
                routes=self.table.rows(timeline.window()),
                timeline=timeline.copy_points(),
                overhead=overhead,
            )
        if self.warnings:
            state["warnings"] = list(self.warnings)
        return state

    def workers(self) -> list[dict[str, Any]]:
        """Every worker's state: from the directory when there is one, else ``[self.status()]``."""
        return self.publisher.workers(self.status())
