"""WSGI middleware that finds which route of a live web service leaks, and what it retains.

Wrap any WSGI application::

    from leakscope.wsgi import LeakMiddleware
    app = LeakMiddleware(app)          # measures what 1% of wall time allows (LEAKSCOPE_BUDGET)
    app.status()                       # this worker's state: routes, growth, timeline

This module is the WSGI glue only: it names each request's route
(:class:`~leakscope.web.naming.RouteNamer`: ``environ["leakscope.route"]``, else
``route(environ)``, both read when the response starts, else ``"GET /items/{id}"``) and
reports its start and end to a :class:`~leakscope.web.core.Monitor`, which decides what
is measured and keeps the state.  A measured request ends when its response is
*closed*: the server then holds nothing of it but its frames and the environ.  An
unmeasured request takes no lock: a counter, a dict entry while it is in flight, a
clock read and its route's count (about 1 us).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from leakscope.web.core import Monitor, Sampling
from leakscope.web.forks import Registry
from leakscope.web.naming import RouteFunction, RouteNamer, route_template

__all__ = ["LeakMiddleware", "instances", "route_template"]

logger = logging.getLogger("leakscope")

StartResponse = Callable[..., Any]
WSGIApplication = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Response:
    """The application's response iterable; ends the sampled request when closed."""

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
        # lock here (a collection may run this while the lock is held).
        request, self._request = self._request, None
        if request is not None and not self._closed:
            request.environ = request.start_response_fn = request.sampling = None
            request.middleware.monitor.request_abandoned(request.number)


class _Request:
    """A sampled request in flight: its environ (until it finishes) and its sampling."""

    __slots__ = (
        "environ",
        "measure",
        "middleware",
        "number",
        "route",
        "sampling",
        "start_response_fn",
    )

    def __init__(
        self,
        middleware: LeakMiddleware,
        sampling: Sampling,
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> None:
        self.middleware = middleware
        self.number = sampling.number
        self.sampling: Sampling | None = sampling
        self.environ: dict[str, Any] | None = environ
        self.start_response_fn: StartResponse | None = start_response
        self.route: str | None = None  # named when the response starts
        self.measure = True  # False: the application raised

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        self.route = self.middleware.namer(self.environ, status)
        fn = self.start_response_fn
        assert fn is not None
        if exc_info is None:
            return fn(status, headers)
        return fn(status, headers, exc_info)

    def finish(self) -> None:
        mw = self.middleware
        try:
            environ = self.environ
            route = self.route or mw.namer(environ, "")
            roots = () if environ is None else (environ,)
            del environ
            mw.monitor.request_ended(self.number, route, self.sampling, roots, measure=self.measure)
        finally:
            self.environ = None
            self.start_response_fn = None
            self.sampling = None


_registry: Registry[LeakMiddleware] = Registry()


def instances() -> list[LeakMiddleware]:
    """The live middlewares of this process, oldest first (for the gunicorn hooks, Prometheus)."""
    return _registry.instances()


class LeakMiddleware:
    """A WSGI middleware that measures what each route of the wrapped application retains.

    ``sample``: the largest fraction of requests measured (default env ``LEAKSCOPE_SAMPLE``,
    else 1: as many as the budget allows); ``budget``: the largest fraction of wall time spent
    measuring (default env ``LEAKSCOPE_BUDGET``, else 0.01; 1: no limit); ``interval``: seconds
    between timeline points (heap censuses); ``history``: timeline points kept;
    ``directory``: where this worker publishes its state (default env ``LEAKSCOPE_DIR``;
    none: no publishing); ``route``: a function naming a request's route; ``clock``:
    seconds for the budget and the schedules (tests pass a fake one).

    >>> app = LeakMiddleware(lambda environ, start_response: [b"ok"], budget=0.02)
    >>> app.status()["requests"]
    0
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
        route: RouteFunction | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI application (callable), not {type(app).__name__}")
        self.namer = RouteNamer(route)
        self.monitor = Monitor(
            sample=sample,
            budget=budget,
            interval=interval,
            history=history,
            directory=directory,
            clock=clock,
        )
        self.app = app
        _registry.add(self)

    # -- configuration -------------------------------------------------------------------

    @property
    def sample(self) -> float:
        """The largest fraction of requests measured."""
        return self.monitor.sample

    @property
    def history(self) -> int:
        """Timeline points kept."""
        return self.monitor.history

    @property
    def directory(self) -> str | None:
        """Where this worker publishes its state (None: nowhere)."""
        return self.monitor.directory

    @property
    def route_function(self) -> RouteFunction | None:
        """The function naming a request's route (settable: adapters install theirs)."""
        return self.namer.route

    @route_function.setter
    def route_function(self, route: RouteFunction | None) -> None:
        if route is not None and not callable(route):
            raise TypeError(f"route must be callable, not {type(route).__name__}")
        self.namer.route = route

    @property
    def pid(self) -> int:
        """The process this middleware's state belongs to."""
        return self.monitor.pid

    def after_fork(self) -> None:
        """Start afresh in a forked child (done by the at-fork hook and the gunicorn hooks)."""
        self.monitor.after_fork()

    # -- the request path ------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        monitor = self.monitor
        number, sampling = monitor.start()
        if sampling is not None:
            return self._serve_sampled(_Request(self, sampling, environ, start_response))
        route = None

        def naming(status: str, headers: Any, exc_info: Any = None) -> Any:
            nonlocal route
            route = self.namer(environ, status)
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, naming)
        finally:
            monitor.request_ended(number, route or self.namer(environ, ""))

    def _serve_sampled(self, request: _Request) -> Iterable[bytes]:
        environ = request.environ
        assert environ is not None
        try:
            result = self.app(environ, request.start_response)
        except BaseException:
            # Not measured: the traceback being raised still holds the request's objects.
            request.measure = False
            request.finish()
            raise
        return _Response(result, request)

    # -- state -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """This worker's state: requests, memory, growth since the first census, routes, timeline."""
        return self.monitor.status()

    def workers(self) -> list[dict[str, Any]]:
        """Every worker's state: from the directory when there is one, else ``[self.status()]``."""
        return self.monitor.workers()

    def publish(self) -> None:
        """Publish this worker's state to the directory now (no-op without a directory)."""
        self.monitor.publish()

    def take_point(self) -> bool:
        """Take a timeline point (a heap census) now: see :meth:`Monitor.take_point`."""
        return self.monitor.take_point()
