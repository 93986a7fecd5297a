"""WSGI middleware that finds which route of a live web service leaks, and what it retains.

Wrap any WSGI application::

    from leakscope.wsgi import LeakMiddleware
    app = LeakMiddleware(app)          # measures what 1% of wall time allows (LEAKSCOPE_BUDGET)
    app.status()                       # this worker's state: routes, growth, timeline

An unmeasured request takes no lock: a counter, a dict entry while it is in flight, a
clock read and its route's count (about 1 us).  Requests are measured while the time
spent measuring stays under ``budget`` (every request of a quiet service, a few per
second of a busy one), and only while no other request is in flight.  On a measured
request the young generations are collected before the application runs; when
the response is *closed*, the objects the request created that are still alive
and reachable from nothing the server still holds (its frames, the environ) are
what the request retained.  Module and class containers (``CACHE = {}``) that the
request grew count too, by the type of the value added last, since the collector
does not track a dict of strings.  What was retained is attributed to the route
(``environ["leakscope.route"]``, else ``route(environ)``, both read when the response
starts, else ``"GET /items/{id}"``).  A route is ``leaking`` when what it retains stays
positive over several samples after its first (warm-up) samples, and the objects it
retained, followed by weak reference where their type allows, mostly stay alive (a
cache with a bound drops them).  Plain dicts, lists and tuples cannot be followed: a
bounded cache of those (``functools.lru_cache`` returning dicts) that keeps replacing
entries looks like a leak to the per-request measure, so such a route waits for a
second heap census, which shows whether its type grows.

Every ``interval`` seconds (sooner for the first points) a request also takes a census of
the whole heap for the timeline.  Samples and censuses are skipped while over budget.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import inspect
import itertools
import logging
import math
import os
import re
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import Any

from leakscope._env import DEFAULT_REQUEST_SAMPLE, sample_rate
from leakscope._env import budget as budget_fraction
from leakscope._heap import (
    MODULE_DICT,
    PYTHON_VERSION,
    TYPE_DICT,
    SampleRef,
    is_own_name,
    rss_bytes,
    tracked_census,
    type_name,
)
from leakscope._roots import CONTAINER_BASES, root_containers

__all__ = ["LeakMiddleware"]

logger = logging.getLogger("leakscope")

StartResponse = Callable[..., Any]
WSGIApplication = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_WARMUP_SAMPLES = 3  # first samples of a route: caches being filled, not counted
_WINDOW = 8  # recent samples per route that decide "leaking"
_MIN_SAMPLES = 4  # samples after warm-up needed before a route can be called leaking
_MAX_ROUTES = 256
_TOP_TYPES = 10
_TIMELINE_TYPES = 8
_TIMELINE_GROWING = 5
_TIMELINE_ROUTES = 5
_PUBLISH_EVERY = 2.0
_INITIAL_CREDIT = 0.02  # seconds of measuring allowed before the budget has accrued any
_MAX_CREDIT = 0.25  # seconds: the most measuring a burst after a quiet spell can get
_MAX_WALK = 50_000
_MAX_OLD_FANOUT = 256
_FOLLOWED = 64
_MIN_EXPECTED = 32  # retained objects the heap census must see before it can contradict
_MAX_CONTAINERS = 2000
_GROWABLE = tuple(b for b in CONTAINER_BASES if b is not frozenset)
_CO_OPTIMIZED = inspect.CO_OPTIMIZED
_REFS_PER_SAMPLE = 4
_WEAKREF_OFFSET = type.__dict__["__weakrefoffset__"]
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
    r"|(?=[^/]*\d)[0-9a-fA-F]{8,}|(?=[^/]*\d)[A-Za-z0-9_\-.~%=+]{20,}|[^/]{48,})$"
)
_SIMPLE_BYTES = (str, bytes, bytearray, int, float)
_UNMATCHED = "<unmatched>"
_OTHER = "<other>"


def route_template(method: str, path: str) -> str:
    """``"GET /items/{id}"`` for ``GET /items/42``: ids, uuids, hex and long tokens become ``{id}``."""
    method = method.upper() if method.upper() in _METHODS else "OTHER"
    parts = path.split("/")[:16]
    return f"{method} " + "/".join(map(_segment, parts))[:200]


def _segment(part: str) -> str:
    if part.isdigit() or (len(part) >= 8 and _ID_SEGMENT.match(part)):
        return "{id}"
    return part


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, not {value!r:.40}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value!r:.40}")
    return float(value)


class _Sample:
    """What one sampled request retained."""

    __slots__ = ("blocks", "bytes", "containers", "objects", "refs", "types")

    def __init__(
        self, objects: int, nbytes: int, types: dict[str, int], refs: list[SampleRef]
    ) -> None:
        self.objects = objects
        self.bytes = nbytes
        self.blocks = 0
        self.types = types
        self.refs = refs
        self.containers: dict[str, int] = {}


class _Route:
    """Per-route counts and the recent samples."""

    __slots__ = ("recent", "refs", "requests", "sampled")

    def __init__(self) -> None:
        self.requests = 0
        self.sampled = 0
        # Lists, not deques: the census leaves out plain containers that leakscope's
        # objects hold, and a deque would break that chain.
        self.recent: list[_Sample] = []
        # Retained objects followed over later samples: a cache with a bound drops them.
        self.refs: list[SampleRef] = []

    def add(self, sample: _Sample) -> None:
        self.sampled += 1
        refs, sample.refs = sample.refs, []
        if self.sampled <= _WARMUP_SAMPLES:
            return
        self.recent.append(sample)
        del self.recent[:-_WINDOW]
        for ref in refs:
            ref.sample = self.sampled
        self.refs.extend(refs)
        del self.refs[:-_FOLLOWED]

    def retained(self) -> tuple[float, float]:
        """Objects and bytes retained per request over the recent samples."""
        n = len(self.recent)
        if not n:
            return 0.0, 0.0
        return sum(s.objects for s in self.recent) / n, sum(s.bytes for s in self.recent) / n

    def _still_alive(self) -> bool | None:
        """Whether most retained objects followed since older samples are still alive.

        None when too few could be followed (dicts, lists and tuples take no weak reference).
        """
        followed = [r for r in self.refs if r.sample < self.sampled - 1]
        if len(followed) < _MIN_SAMPLES:
            return None
        return sum(r() is not None for r in followed) * 2 >= len(followed)

    def to_dict(self, name: str, heap: _Heap | None = None) -> dict[str, Any]:
        """The route's row of ``status()["routes"]``.

        ``leaking`` is decided on objects only: the blocks a request leaves also
        count what the server still holds at ``close()`` (header strings, the body),
        which differs from route to route, so they are reported, not judged.  When
        two heap censuses say the retained type did not grow by a quarter of what the
        route's requests between them would have retained, something dropped them (a
        bounded cache): not a leak.  Retained objects that cannot be followed (dicts,
        lists) and grew no module container wait for that second census.
        """
        recent = list(self.recent)
        n = len(recent)
        objects_per_request, bytes_per_request = self.retained()
        types: dict[str, int] = {}
        for s in recent:
            for t, c in s.types.items():
                types[t] = types.get(t, 0) + c
        top = sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))[:_TOP_TYPES]
        grown: dict[str, int] = {}
        for s in recent:
            for key, c in s.containers.items():
                grown[key] = grown.get(key, 0) + c
        objects = sorted(s.objects for s in recent)
        blocks = sorted(s.blocks for s in recent)
        leaking = (
            n >= _MIN_SAMPLES and objects[n // 2] >= 1 and sum(o > 0 for o in objects) * 4 >= n * 3
        )
        alive = self._still_alive() if leaking else None
        if alive is False:
            leaking = False
        elif leaking and alive is None and heap is None and not grown:
            leaking = False  # not yet known: replaced entries of a bounded cache look the same
        if leaking and heap is not None and top and not grown:
            kind, count = top[0]
            requests = heap.requests_after.get(name, 0) - heap.requests_before.get(name, 0)
            expected = count / n * requests
            grew = heap.types_after.get(kind, 0) - heap.types_before.get(kind, 0)
            if expected >= _MIN_EXPECTED and grew * 4 < expected:
                leaking = False
        return {
            "route": name,
            "requests": self.requests,
            "sampled": self.sampled,
            "retained_objects_per_request": objects_per_request,
            "retained_bytes_per_request": bytes_per_request,
            "retained_blocks_per_request": sum(blocks) / n if n else 0.0,
            "top_types": [{"type": t, "per_request": c / n} for t, c in top if c > 0],
            "containers": [
                {"container": key, "per_request": c / n}
                for key, c in sorted(grown.items(), key=lambda kv: (-kv[1], kv[0]))[:_TOP_TYPES]
            ],
            "leaking": leaking,
        }


class _Heap:
    """Two heap censuses (the first and the latest) and each route's requests at each."""

    __slots__ = ("requests_after", "requests_before", "types_after", "types_before")

    def __init__(
        self,
        types_before: dict[str, int],
        types_after: dict[str, int],
        requests_before: dict[str, int],
        requests_after: dict[str, int],
    ) -> None:
        self.types_before = types_before
        self.types_after = types_after
        self.requests_before = requests_before
        self.requests_after = requests_after


class _Response:
    """The application's response iterable; measures the sampled request when closed."""

    __slots__ = ("__weakref__", "_closed", "_inner", "_request")

    def __init__(self, inner: Iterable[bytes], request: _Request) -> None:
        self._inner: Iterable[bytes] | None = inner
        self._request: _Request | None = request
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        inner = self._inner
        return iter(inner if inner is not None else ())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        inner, self._inner = self._inner, None
        request, self._request = self._request, None
        close = getattr(inner, "close", None)
        del inner
        try:
            if close is not None:
                close()
        finally:
            close = None  # nothing of the response stays alive while measuring
            if request is not None:
                request.finish()

    def __del__(self) -> None:
        # A server that never closed the response: the request ended all the same.  No
        # lock here (a collection may run this while the lock is held); a dict's pop is
        # atomic.
        request, self._request = self._request, None
        if request is not None and not self._closed:
            request.environ = request.start_response_fn = None
            request.middleware._active.pop(request.number, None)


class _Request:
    """A sampled request in flight: its environ (until it finishes) and the sample's start."""

    __slots__ = (
        "blocks",
        "collections",
        "containers",
        "environ",
        "middleware",
        "number",
        "route",
        "sampled",
        "start_response_fn",
    )

    def __init__(
        self,
        middleware: LeakMiddleware,
        number: int,
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> None:
        self.middleware = middleware
        self.number = number
        self.environ: dict[str, Any] | None = environ
        self.start_response_fn: StartResponse | None = start_response
        self.route: str | None = None  # named when the response starts
        self.sampled = False
        self.blocks = 0
        self.collections = (0, 0)
        self.containers: list[int] = []

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        self.route = self.middleware._route_of(self.environ, status)
        fn = self.start_response_fn
        assert fn is not None
        if exc_info is None:
            return fn(status, headers)
        return fn(status, headers, exc_info)

    def finish(self) -> None:
        mw = self.middleware
        try:
            mw._finish(self)
        except Exception:
            logger.exception("leakscope: measuring a request failed (the request was served)")
        finally:
            self.environ = None
            self.start_response_fn = None


class LeakMiddleware:
    """A WSGI middleware that measures what each route of the wrapped application retains.

    ``sample``: the largest fraction of requests measured (default env ``LEAKSCOPE_SAMPLE``,
    else 1: as many as the budget allows); ``budget``: the largest fraction of wall time spent
    measuring (default env ``LEAKSCOPE_BUDGET``, else 0.01; 1: no limit); ``interval``: seconds
    between timeline points (heap censuses); ``history``: timeline points kept;
    ``directory``: where this worker publishes its state (default env ``LEAKSCOPE_DIR``;
    none: no publishing); ``route``: a function naming a request's route.

    >>> app = LeakMiddleware(wsgi_app, budget=0.02)
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        sample: float | None = None,
        budget: float | None = None,
        interval: float = 10.0,
        history: int = 360,
        directory: str | os.PathLike[str] | None = None,
        route: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI application (callable), not {type(app).__name__}")
        if sample is None:
            sample = sample_rate(DEFAULT_REQUEST_SAMPLE)
        if budget is None:
            budget = budget_fraction()
        rate = _positive("sample", sample)
        if rate > 1:
            raise ValueError(f"sample must be in (0, 1], not {sample!r:.40}")
        self._budget = _positive("budget", budget)
        if self._budget > 1:
            raise ValueError(f"budget must be in (0, 1], not {budget!r:.40}")
        self._interval = _positive("interval", interval)
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ValueError(f"history must be a positive integer, not {history!r:.40}")
        if route is not None and not callable(route):
            raise TypeError(f"route must be callable, not {type(route).__name__}")
        if directory is None:
            directory = os.environ.get("LEAKSCOPE_DIR") or None
        self.app = app
        self.sample = rate
        self.history = history
        self.directory: str | None = None if directory is None else os.fspath(directory)
        self._route_fn = route
        self._every = max(1, round(1 / rate))
        self._lock = threading.Lock()
        self._measure_lock = threading.Lock()
        self._reset()
        _instances[next(_created)] = self

    # -- state -----------------------------------------------------------------------------

    def _reset(self) -> None:
        """Start afresh: a new process (after fork) or a new middleware."""
        self._pid = os.getpid()
        self._started = time.time()
        self._clock0 = time.monotonic()
        # The request path takes no lock: requests are numbered by an atomic counter, and
        # those in flight are keys of a dict (its setitem and pop are atomic).
        self._numbers = itertools.count()
        self._active: dict[int, None] = {}
        self._last_start = -1  # the number of the request that started last
        self._next_sample = self._every - 1  # the first request number that may be sampled
        self._sample_after = 0.0  # time.monotonic() before which the budget allows no sample
        self._sampled = 0
        self._skipped_busy = 0
        self._skipped_budget = 0
        self._skipped_noisy = 0
        self._measured = 0.0  # seconds spent measuring
        self._largest = 0.0  # the longest single measurement: the most the budget can overshoot
        self._credit = _INITIAL_CREDIT
        self._credit_at = self._clock0
        self._census_cost = 0.0
        self._routes: dict[str, _Route] = {}
        self._timeline: list[dict[str, Any]] = []  # a list: see _Route.recent
        self._baseline: dict[str, Any] | None = None
        self._latest: dict[str, Any] | None = None
        self._latest_types: dict[str, int] = {}
        self._baseline_types: dict[str, int] = {}
        self._baseline_requests: dict[str, int] = {}
        self._latest_requests: dict[str, int] = {}
        self._next_point = self._clock0
        self._next_publish = self._clock0
        self._next_due = self._clock0  # when a census or publishing is next due
        self._route_error_logged = False
        self._containers = _Containers()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._measure_lock = threading.Lock()
        self._reset()

    # -- the request path ------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        number = next(self._numbers)
        self._last_start = number
        active = self._active
        active[number] = None
        if number >= self._next_sample and len(active) == 1:
            # Due, and no other request in flight: measured if the budget allows.
            request = None
            try:
                request = self._begin_sample(number, environ, start_response)
            except Exception:
                logger.exception("leakscope: could not start measuring a request")
            if request is not None:
                return self._serve_sampled(request)
        route = None

        def naming(status: str, headers: Any, exc_info: Any = None) -> Any:
            nonlocal route
            route = self._route_of(environ, status)
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, naming)
        finally:
            active.pop(number, None)
            self._record(route or self._route_of(environ, ""), None)

    def _serve_sampled(self, request: _Request) -> Iterable[bytes]:
        environ = request.environ
        assert environ is not None
        try:
            result = self.app(environ, request.start_response)
        except BaseException:
            # Not measured: the traceback being raised still holds the request's objects.
            request.sampled = False
            request.finish()
            raise
        return _Response(result, request)

    def _begin_sample(
        self, number: int, environ: dict[str, Any], start_response: StartResponse
    ) -> _Request | None:
        now = time.monotonic()
        if now < self._sample_after:
            return None
        with self._lock:
            if number < self._next_sample:
                return None  # taken meanwhile by another thread
            self._next_sample = number + self._every
            self._accrue(now)
            if self._credit <= 0 and self._budget < 1:
                self._pause(now)
                return None
        request = _Request(self, number, environ, start_response)
        t0 = time.perf_counter()
        # Read before collecting: what leakscope makes here (the lengths, the container
        # list on the first scan) is then old, not young like what the request makes.
        request.containers = self._containers.lengths()
        gc.collect(1)  # gen 0 and 1 empty: what the request creates is young
        request.sampled = True
        request.collections = _older_collections()
        request.blocks = sys.getallocatedblocks()
        with self._lock:
            self._spend(time.perf_counter() - t0)
        return request

    def _accrue(self, now: float) -> None:
        self._credit = min(_MAX_CREDIT, self._credit + (now - self._credit_at) * self._budget)
        self._credit_at = now

    def _spend(self, seconds: float) -> None:
        self._measured += seconds
        self._largest = max(self._largest, seconds)
        self._credit -= seconds
        if self._credit <= 0 and self._budget < 1:
            self._pause(self._credit_at)

    def _pause(self, now: float) -> None:
        """No sample until the credit, accruing since ``now``, is positive again."""
        if now >= self._sample_after:
            self._skipped_budget += 1
        self._sample_after = now - self._credit / self._budget

    def _route_of(self, environ: dict[str, Any] | None, status: str) -> str:
        """The route of a request, named when its response starts (the application, and its
        request object, are still at work: a route function can read them) or when it ends.
        """
        try:
            name = None if environ is None else environ.get("leakscope.route")
            if type(name) is str and name:
                return name[:200]
            if environ is None:
                return _OTHER
            if self._route_fn is not None:
                try:
                    name = self._route_fn(environ)
                except Exception:
                    name = None
                    if not self._route_error_logged:
                        self._route_error_logged = True
                        logger.exception("leakscope: the route function raised; using the path")
                if type(name) is str and name:
                    return name[:200]
            if type(status) is str and status[:3] == "404":
                return _UNMATCHED
            method = environ.get("REQUEST_METHOD")
            path = environ.get("PATH_INFO")
            return route_template(
                method if isinstance(method, str) else "",
                path if isinstance(path, str) else "",
            )[:200]
        except Exception:
            logger.exception("leakscope: could not name a request's route")
            return _OTHER

    def _finish(self, request: _Request) -> None:
        """A sampled request ended: measure it, then record it."""
        sample = None
        try:
            if request.sampled:
                sample = self._measure(request)
        except Exception:
            logger.exception("leakscope: measuring a request failed (the request was served)")
        finally:
            self._active.pop(request.number, None)
        self._record(request.route or self._route_of(request.environ, ""), sample)

    def _record(self, name: str, sample: _Sample | None) -> None:
        """Count an ended request under its route; take a census or publish when due."""
        try:
            with self._lock:
                entry = self._routes.get(name)
                if entry is None:
                    if len(self._routes) >= _MAX_ROUTES:
                        name = _OTHER
                        entry = self._routes.get(name)
                    if entry is None:
                        entry = self._routes[name] = _Route()
                entry.requests += 1
                if sample is not None:
                    self._sampled += 1
                    entry.add(sample)
            now = time.monotonic()
            if now < self._next_due:
                return
            with self._lock:
                point_due = now >= self._next_point and not self._active
                publish_due = self.directory is not None and now >= self._next_publish
                if publish_due:
                    self._next_publish = now + _PUBLISH_EVERY
                self._reschedule()
            if point_due:
                self._timeline_point(now)
            if publish_due:
                self._publish()
        except Exception:
            logger.exception("leakscope: recording a request failed (the request was served)")

    def _measure(self, request: _Request) -> _Sample | None:
        t0 = time.perf_counter()
        try:
            busy = len(self._active) != 1 or self._last_start != request.number
            if busy:
                with self._lock:
                    self._skipped_busy += 1
                return None
            if _older_collections() != request.collections:
                # The collector moved some of the request's objects to the oldest generation.
                with self._lock:
                    self._skipped_noisy += 1
                return None
            gc.collect(0)
            blocks = sys.getallocatedblocks()
            young = gc.get_objects(generation=1)
            try:
                sample = _retained(young, request.environ, sys._getframe(1))
            finally:
                del young
            sample.blocks = blocks - request.blocks
            self._containers.grown(request.containers, sample)
            return sample
        finally:
            with self._lock:
                self._spend(time.perf_counter() - t0)

    # -- timeline, publishing ----------------------------------------------------------------

    def _reschedule(self) -> None:
        """When the request path next needs to look at the clock (under the lock)."""
        due = self._next_point
        if self.directory is not None:
            due = min(due, self._next_publish)
        self._next_due = due

    def _timeline_point(self, now: float) -> None:
        with self._lock:
            self._accrue(now)
            if self._credit < self._census_cost and self._budget < 1:
                self._skipped_budget += 1
                self._next_point = now + self._interval / 4
                self._reschedule()
                return
            # The first points come sooner (after 1/8, 1/4, 1/2 of the interval): a second
            # census is what tells a bounded cache of dicts from a leak.
            self._next_point = now + self._interval * min(1.0, 2.0 ** (len(self._timeline) - 3))
            self._reschedule()
        if not self._measure_lock.acquire(blocking=False):
            return
        t0 = time.perf_counter()
        try:
            counts, total = tracked_census()
            # Every container until the second census (1/8 of the interval later): then
            # only those that changed since the first, the ones requests grow.
            self._containers.rescan(every=not self._timeline)
            previous = self._latest_types  # replaced, never changed in place: no lock needed
            growing = [(name, n - previous.get(name, 0)) for name, n in counts.items()]
            point: dict[str, Any] = {
                "time": time.time(),
                "rss": rss_bytes(),
                "blocks": sys.getallocatedblocks(),
                "objects": total,
                "types": dict(
                    sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:_TIMELINE_TYPES]
                ),
                # The types that grew most since the previous point (none at the first).
                "growing": dict(
                    sorted(
                        ((name, d) for name, d in growing if d > 0 and previous),
                        key=lambda kv: (-kv[1], kv[0]),
                    )[:_TIMELINE_GROWING]
                ),
            }
            del growing
            with self._lock:
                retained = [
                    (name, *entry.retained())
                    for name, entry in self._routes.items()
                    if entry.recent
                ]
                retained.sort(key=lambda r: (-r[1], r[0]))
                # What the routes that retain most retained per request, lately.
                point["routes"] = {
                    name: {"objects": objects, "bytes": nbytes}
                    for name, objects, nbytes in retained[:_TIMELINE_ROUTES]
                }
                requests = {name: entry.requests for name, entry in self._routes.items()}
                if self._baseline is None:
                    self._baseline = point
                    self._baseline_types = counts
                    self._baseline_requests = requests
                self._latest = point
                self._latest_types = counts
                self._latest_requests = requests
                self._timeline.append(point)
                del self._timeline[: -self.history]
        finally:
            self._measure_lock.release()
            cost = time.perf_counter() - t0
            with self._lock:
                self._census_cost = cost
                self._spend(cost)

    def _publish(self) -> None:
        from leakscope.web.workers import publish

        directory = self.directory
        if directory is None:
            return
        t0 = time.perf_counter()
        try:
            publish(directory, self.status())
        except Exception:
            logger.exception("leakscope: could not publish the worker state to %s", directory)
        finally:
            with self._lock:
                self._spend(time.perf_counter() - t0)

    def status(self) -> dict[str, Any]:
        """This worker's state: requests, memory, growth since the first census, routes, timeline."""
        if os.getpid() != self._pid:
            self._after_fork()
        rss = rss_bytes()
        blocks = sys.getallocatedblocks()
        with self._lock:
            baseline, latest = self._baseline, self._latest
            heap = None
            if baseline is not None and latest is not baseline:
                heap = _Heap(
                    self._baseline_types,
                    self._latest_types,
                    self._baseline_requests,
                    self._latest_requests,
                )
            routes = [entry.to_dict(name, heap) for name, entry in self._routes.items()]
            growth_types: list[dict[str, Any]] = []
            if baseline is not None:
                before, after = self._baseline_types, self._latest_types
                deltas = [
                    (name, after.get(name, 0) - before.get(name, 0))
                    for name in before.keys() | after.keys()
                ]
                deltas.sort(key=lambda nd: (-abs(nd[1]), nd[0]))
                growth_types = [{"type": n, "delta": d} for n, d in deltas[:_TOP_TYPES] if d]
            state: dict[str, Any] = {
                "pid": self._pid,
                "started": self._started,
                "updated": time.time(),
                "python": PYTHON_VERSION,
                "requests": _given(self._numbers) or self._last_start + 1,  # started
                "sampled": self._sampled,
                "alive": True,
                "rss": rss,
                "blocks": blocks,
                "objects": None if latest is None else latest["objects"],
                "growth": {
                    "rss": None
                    if baseline is None or rss is None or baseline["rss"] is None
                    else rss - baseline["rss"],
                    "blocks": 0 if baseline is None else blocks - baseline["blocks"],
                    "objects": None
                    if baseline is None or latest is None
                    else latest["objects"] - baseline["objects"],
                    "types": growth_types,
                },
                "routes": routes,
                "timeline": [dict(p, types=dict(p["types"])) for p in self._timeline],
                "overhead": {
                    "budget": self._budget,
                    "sample": self.sample,
                    "measured_seconds": self._measured,
                    "largest_seconds": self._largest,
                    "wall_seconds": time.monotonic() - self._clock0,
                    "skipped_budget": self._skipped_budget,
                    "skipped_busy": self._skipped_busy,
                    "skipped_noisy": self._skipped_noisy,
                },
            }
        state["routes"].sort(
            key=lambda r: (not r["leaking"], -r["retained_objects_per_request"], r["route"])
        )
        return state

    def workers(self) -> list[dict[str, Any]]:
        """Every worker's state: from the directory when there is one, else ``[self.status()]``."""
        own = self.status()
        if self.directory is None:
            return [own]
        from leakscope.web.workers import read_workers

        try:
            others = [w for w in read_workers(self.directory) if w.get("pid") != own["pid"]]
        except Exception:
            logger.exception("leakscope: could not read the workers' states")
            others = []
        return sorted([own, *others], key=lambda w: int(w.get("pid", 0)))

    def publish(self) -> None:
        """Publish this worker's state to the directory now (no-op without a directory)."""
        self._publish()


def _given(counter: itertools.count[int]) -> int | None:
    """How many numbers ``counter`` (from 0, step 1) has given, read from its repr.

    ``count(42)``: the next number, which the counter keeps to itself otherwise; reading it
    takes no lock and consumes nothing, where the request path's own record of the last
    number may lag behind by the requests starting in other threads right now.
    """
    text = repr(counter)
    try:
        return int(text[text.index("(") + 1 : -1])
    except ValueError:
        return None  # an interpreter that writes it otherwise


def _older_collections() -> tuple[int, int]:
    stats = gc.get_stats()
    return stats[1]["collections"], stats[2]["collections"]


class _Containers:
    """The module and class containers (where caches and registries live), by weak reference.

    A request that stores into ``CACHE = {}`` at module level leaves objects the
    collector may not track (a dict of strings and numbers); the container's length
    grows instead.  Their list comes from the snapshot's container scan, refreshed at
    each timeline census; a sampled request reads their lengths before and after.
    From the second heap census on, only the containers whose length has changed since
    the first scan are read: most (``__all__``, registries filled at import) never
    change, and that census comes early (see ``LeakMiddleware._timeline_point``).
    The containers of one module or class are read together, at C speed.
    """

    __slots__ = ("entries", "first", "groups", "scanned")

    def __init__(self) -> None:
        self.entries: list[tuple[weakref.ref[Any], str, bool, Callable[[Any], int], str]] = []
        # (holder, its namespace descriptor, names, length function): runs of ``entries``.
        self.groups: list[tuple[weakref.ref[Any], Any, list[str], Callable[[Any], int]]] = []
        self.first: dict[str, int] = {}  # every container's length at the first scan
        self.scanned = False

    def rescan(self, every: bool = False) -> None:
        """Refresh the list: every container on the first scan or when ``every``, else only
        those whose length changed since the first scan."""
        entries: list[tuple[weakref.ref[Any], str, bool, Callable[[Any], int], str]] = []
        lengths, _ = root_containers()
        if not self.scanned:
            self.first, self.scanned, every = lengths, True, True
        for key, n in lengths.items():
            if "__defaults__" in key or len(entries) >= _MAX_CONTAINERS:
                continue
            if not every and self.first.get(key) == n:
                continue
            modname, _, rest = key.partition(":")
            name, _, attr = rest.partition(".")
            module = sys.modules.get(modname)
            try:
                holder = module if not attr else MODULE_DICT.__get__(module).get(name)
                value = (TYPE_DICT if attr else MODULE_DICT).__get__(holder).get(attr or name)
                base = next(b for b in _GROWABLE if issubclass(type(value), b))
                length: Callable[[Any], int] = base.__len__  # type: ignore[attr-defined]
                ref = (
                    entries[-1][0] if entries and entries[-1][0]() is holder else SampleRef(holder)
                )
                entries.append((ref, attr or name, bool(attr), length, key))
            except Exception:
                continue
        groups: list[tuple[weakref.ref[Any], Any, list[str], Callable[[Any], int]]] = []
        for ref, name, is_class, length, _ in entries:
            if groups and groups[-1][0] is ref and groups[-1][3] is length:
                groups[-1][2].append(name)
            else:
                # The slot descriptor, not its bound __get__: a method-wrapper per group
                # would be counted by the heap census as the application's objects.
                namespace = TYPE_DICT if is_class else MODULE_DICT
                groups.append((ref, namespace, [name], length))
        self.entries, self.groups = entries, groups

    def lengths(self) -> list[int]:
        """Each entry's length, -1 where it cannot be read (gone, or no longer a container)."""
        if not self.scanned:
            self.rescan()
        out: list[int] = []
        for ref, namespace, names, length in self.groups:
            try:
                get = namespace.__get__(ref()).get
                out += list(map(length, map(get, names)))
            except Exception:
                out += map(
                    _length_or_minus_one,
                    itertools.repeat(ref),
                    itertools.repeat(namespace),
                    names,
                    itertools.repeat(length),
                )
        return out

    def grown(self, before: list[int], sample: _Sample) -> None:
        """Add to ``sample`` what the containers that grew since ``before`` now end with."""
        after = self.lengths()
        if not before or len(before) != len(after):
            return  # rescanned meanwhile
        for (ref, name, is_class, _, key), old, new in zip(
            self.entries, before, after, strict=True
        ):
            if old < 0 or new <= old:
                continue
            try:
                namespace = (TYPE_DICT if is_class else MODULE_DICT).__get__(ref())
                value = _last(namespace.get(name))
            except Exception:
                continue
            if len(sample.containers) < _TOP_TYPES:
                sample.containers[key] = new - old
            if value is _NOTHING or gc.is_tracked(value):
                continue  # tracked values were counted as the request's young objects
            tp = type_name(type(value))
            sample.types[tp] = sample.types.get(tp, 0) + new - old
            sample.objects += new - old
            with contextlib.suppress(Exception):
                sample.bytes += sys.getsizeof(value) * (new - old)
            del value


_NOTHING = object()


def _length_or_minus_one(
    ref: weakref.ref[Any],
    namespace: Any,
    name: str,
    length: Callable[[Any], int],
) -> int:
    try:
        return length(namespace.__get__(ref()).get(name))
    except Exception:
        return -1


def _last(container: object) -> object:
    """The value added last to a dict, list or deque (``_NOTHING`` for others); no user code."""
    tp = type(container)
    if issubclass(tp, dict):
        return next(reversed(dict.values(container)), _NOTHING)  # type: ignore[arg-type]
    for base in (list, deque):
        if issubclass(tp, base) and base.__len__(container):  # type: ignore[arg-type]
            return base.__getitem__(container, -1)  # type: ignore[call-overload,index]
    return _NOTHING


def _retained(young: list[Any], environ: dict[str, Any] | None, frame: FrameType | None) -> _Sample:
    """The young objects that nothing in flight holds: what the request retained.

    Objects reachable from the environ, from the locals of the frames still running
    (the server's, which hold the response and the request until after ``close()``) and
    from the thread's context variables (their mapping is rebuilt whenever one is set,
    as frameworks do per request) are in flight; leakscope's own objects are left out.
    """
    ids = set(map(id, young))
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(contextvars.copy_context(), 0)]
    if environ is not None:
        stack.append((environ, 0))
    f = frame
    while f is not None:
        # Function frames only: a module frame's locals are its globals, where leaks live.
        if f.f_code.co_flags & _CO_OPTIMIZED:
            stack.extend((value, 1) for value in f.f_locals.values())
        f = f.f_back
    del f
    steps = 0
    referents: list[Any] = []
    while stack and steps < _MAX_WALK:
        obj, depth = stack.pop()
        oid = id(obj)
        if oid in seen or type(obj) is FrameType:
            continue
        young_obj = oid in ids
        if not young_obj and depth > 2:
            continue  # may still be reached nearer a root
        seen.add(oid)
        steps += 1
        referents = gc.get_referents(obj)
        if not young_obj and len(referents) > _MAX_OLD_FANOUT:
            # Old objects followed are the server's own near the roots (its response,
            # its worker), never a big container: a cache holding new objects is the leak.
            continue
        stack.extend(zip(referents, itertools.repeat(depth + 1)))
    del stack, referents
    types: dict[type, int] = {}
    sizes: dict[type, int] = {}
    for obj in young:
        if id(obj) in seen:
            continue
        tp = type(obj)
        if tp is FrameType:
            continue
        types[tp] = types.get(tp, 0) + 1
        try:
            size = sys.getsizeof(obj)
            for ref in gc.get_referents(obj):
                if type(ref) in _SIMPLE_BYTES and sys.getrefcount(ref) <= 4:
                    size += sys.getsizeof(ref)
            sizes[tp] = sizes.get(tp, 0) + size
        except Exception:
            pass
    named: dict[str, int] = {}
    own: set[type] = set()
    objects = nbytes = 0
    for tp, n in types.items():
        name = type_name(tp)
        if is_own_name(name):
            own.add(tp)
            continue
        named[name] = named.get(name, 0) + n
        objects += n
        nbytes += sizes.get(tp, 0)
    refs: list[SampleRef] = []
    for obj in young:
        if len(refs) >= _REFS_PER_SAMPLE:
            break
        tp = type(obj)
        if id(obj) in seen or tp in own or not _WEAKREF_OFFSET.__get__(tp):
            continue
        try:
            refs.append(SampleRef(obj))
        except TypeError:
            continue
    del obj
    top = dict(sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))[:_TOP_TYPES])
    return _Sample(objects, nbytes, top, refs)


# Every middleware of this process in creation order, reset in a child process after
# fork (gunicorn --preload creates the middleware in the master).
_instances: weakref.WeakValueDictionary[int, LeakMiddleware] = weakref.WeakValueDictionary()
_created = itertools.count()


def _reset_after_fork() -> None:
    for middleware in list(_instances.values()):
        with contextlib.suppress(Exception):  # never break a fork
            middleware._after_fork()


def instances() -> list[LeakMiddleware]:
    """The live middlewares of this process, oldest first (for the gunicorn hooks, Prometheus)."""
    return list(_instances.values())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
