"""Django adapter: which view of a live Django service leaks, and leakscope's endpoints.

In ``settings.py`` and the root URLconf::

    MIDDLEWARE = ["leakscope.django.LeakMiddleware", ...]     # first: it sees every request
    urlpatterns = [path("_leakscope/", include("leakscope.django.urls")), ...]

The middleware (sync- and async-capable) reports each request to the process's
:class:`~leakscope.web.core.Monitor` and names it by the resolver's ``view_name``
(``"shop:item"``), else its URL pattern (``"items/<int:pk>"``), else the path's template
(:data:`~leakscope.web.naming.UNMATCHED` for a 404).  Requests to leakscope's own URLs
are not counted.  Settings come from ``settings.LEAKSCOPE`` (a dict: ``token``,
``sample``, ``budget``, ``interval``, ``history``, ``directory``, ``allow``, ``prefix``),
else the ``LEAKSCOPE_*`` environment variables.  With ``DEBUG=True`` Django keeps every
SQL query of a request in ``connection.queries``: that growth is not the application's,
and the status and the dashboard say so (once).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from leakscope.errors import MissingDependencyError
from leakscope.web.core import Monitor
from leakscope.web.endpoints import COOKIE, PATHS, Call, Endpoints, networks
from leakscope.web.naming import MAX_NAME, OTHER, OWN, UNMATCHED, fallback_name

__all__ = ["DEBUG_WARNING", "LeakMiddleware", "endpoint_view", "monitor", "url_patterns"]

logger = logging.getLogger("leakscope")

NAMESPACE = "leakscope"
DEBUG_WARNING = (
    "Django runs with DEBUG=True: it keeps every SQL query in connection.queries (cleared "
    "only when a request starts), so part of the growth shown is Django's, not the "
    "application's. Measure with DEBUG=False."
)
_OPTIONS = ("sample", "budget", "interval", "history", "directory")

_lock = threading.Lock()
_state: dict[str, Any] = {}


def _django() -> Any:
    try:
        import django
    except ImportError:
        raise MissingDependencyError("leakscope.django", "Django", "django") from None
    return django


def _settings() -> dict[str, Any]:
    """``settings.LEAKSCOPE`` (a dict; {} when unset or Django is not configured)."""
    _django()
    from django.conf import settings

    try:
        given = getattr(settings, "LEAKSCOPE", None)
    except Exception:  # settings not configured
        return {}
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise TypeError(f"settings.LEAKSCOPE must be a dict, not {type(given).__name__}")
    unknown = set(given) - {*_OPTIONS, "token", "allow", "prefix"}
    if unknown:
        raise ValueError(f"settings.LEAKSCOPE: unknown keys {sorted(unknown)}")
    return given


def _debug() -> bool:
    from django.conf import settings

    try:
        return bool(settings.DEBUG)
    except Exception:
        return False


def monitor() -> Monitor:
    """The process's monitor of the Django application (made from the settings once).

    >>> monitor() is monitor()
    True
    """
    with _lock:
        found = _state.get("monitor")
        if found is None:
            options = _settings()
            found = Monitor(**{k: options[k] for k in _OPTIONS if k in options})
            endpoints = Endpoints(found, prefix=options.get("prefix", "/_leakscope"))
            endpoints.allow = networks(options.get("allow"))
            _state.update(monitor=found, endpoints=endpoints, options=options)
        if _debug():
            if not found.warnings:
                logger.warning("leakscope: %s", DEBUG_WARNING)
            found.warn(DEBUG_WARNING)
        return found


def _route(request: Any, status: object) -> str:
    """The route of a Django request: its view name, URL pattern or path template."""
    try:
        match = getattr(request, "resolver_match", None)
        if match is not None:
            namespaces = getattr(match, "namespaces", None) or []
            if NAMESPACE in namespaces[:1]:
                return OWN
            name = getattr(match, "view_name", None)
            if isinstance(name, str) and name:
                return name[:MAX_NAME]
            pattern = getattr(match, "route", None)
            if isinstance(pattern, str) and pattern:
                return pattern[:MAX_NAME]
        name = fallback_name(getattr(request, "method", ""), getattr(request, "path", ""), status)
        return UNMATCHED if status == 404 else name
    except Exception:
        logger.exception("leakscope: could not name a request's route")
        return OTHER


class LeakMiddleware:
    """The Django middleware (``"leakscope.django.LeakMiddleware"``), sync and async.

    >>> MIDDLEWARE = ["leakscope.django.LeakMiddleware"]
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        from asgiref.sync import iscoroutinefunction, markcoroutinefunction

        self.get_response = get_response
        self.monitor = monitor()
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self._acall(request)
        monitor = self.monitor
        number, sampling = monitor.start()
        response = None
        measure = True
        try:
            response = self.get_response(request)
            return response
        except BaseException:
            measure = False
            raise
        finally:
            self._end(number, sampling, request, response, measure)

    async def _acall(self, request: Any) -> Any:
        number, sampling = self.monitor.start()
        response = None
        measure = True
        try:
            response = await self.get_response(request)
            return response
        except BaseException:
            measure = False
            raise
        finally:
            self._end(number, sampling, request, response, measure)

    def _end(self, number: int, sampling: Any, request: Any, response: Any, measure: bool) -> None:
        route = _route(request, getattr(response, "status_code", ""))
        if sampling is None:
            self.monitor.request_ended(number, route)
            return
        meta = getattr(request, "META", None)
        roots = (request, response) if meta is None else (request, response, meta)
        frame = sys._getframe(1)
        self.monitor.request_ended(number, route, sampling, roots, frame, measure=measure)


def endpoint_view(request: Any, below: str = "/") -> Any:
    """The Django view of one leakscope path (``below`` the prefix); CSRF-exempt, since
    every call carries the token."""
    _django()
    from django.http import HttpResponse

    monitor()
    endpoints: Endpoints = _state["endpoints"]
    options: dict[str, Any] = _state["options"]
    token = options.get("token") or os.environ.get("LEAKSCOPE_TOKEN") or None
    form_token = request.POST.get("token") if request.method == "POST" else None
    call = Call(
        method=request.method or "GET",
        path=below,
        authorization=request.META.get("HTTP_AUTHORIZATION", ""),
        cookie=request.COOKIES.get(COOKIE),
        form_token=form_token if isinstance(form_token, str) else None,
        query={k: v for k, v in request.GET.items() if isinstance(v, str)},
        remote_addr=request.META.get("REMOTE_ADDR"),
        secure=bool(request.is_secure()),
    )
    reply = endpoints.handle(call, token if isinstance(token, str) else None)
    response = HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)
    for name, value in reply.headers:
        response[name] = value
    for name, value in reply.all_headers()[len(reply.headers) + 1 :]:
        response[name] = value
    return response


endpoint_view.csrf_exempt = True  # type: ignore[attr-defined]


def url_patterns() -> list[Any]:
    """The URL patterns of leakscope's paths (for ``leakscope.django.urls``)."""
    _django()
    from django.urls import path

    patterns = []
    for below in PATHS:
        name = below.strip("/").replace("/", "-") or "dashboard"
        patterns.append(path(below.lstrip("/"), endpoint_view, {"below": below}, name=name))
    return patterns
