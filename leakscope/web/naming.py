"""Route names: what a request's retention is attributed to.

A web adapter names each request when its response starts (the framework's request
object is then still at work) or, failing that, when it ends::

    route_template("GET", "/items/42")          # 'GET /items/{id}'
    namer = RouteNamer(route=my_function)        # WSGI: reads the environ
    namer(environ, "200 OK")                     # 'items.show' or the template

Names are strings of at most :data:`MAX_NAME` characters; :data:`UNMATCHED` collects the
requests no route matched (404), :data:`OTHER` what cannot be named or is over the
route table's bound.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "MAX_NAME",
    "OTHER",
    "OWN",
    "UNMATCHED",
    "RouteFunction",
    "RouteNamer",
    "fallback_name",
    "given_name",
    "route_template",
]

logger = logging.getLogger("leakscope")

MAX_NAME = 200
UNMATCHED = "<unmatched>"
"""The route of every request that matched no route (a 404, or Flask's 405)."""
OTHER = "<other>"
"""The route of requests that cannot be named, and of new routes past the table's bound."""

OWN = "<leakscope>"
"""The route of leakscope's own endpoints: such requests are not counted as the application's."""

RouteFunction = Callable[[dict[str, Any]], "str | None"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
    r"|(?=[^/]*\d)[0-9a-fA-F]{8,}|(?=[^/]*\d)[A-Za-z0-9_\-.~%=+]{20,}|[^/]{48,})$"
)


def route_template(method: str, path: str) -> str:
    """``"GET /items/{id}"`` for ``GET /items/42``: ids, uuids, hex and long tokens become ``{id}``.

    >>> route_template("get", "/u/0b6f8c1e-2c49-4f55-9c1d-8a7d2a1f0e11/x")
    'GET /u/{id}/x'
    """
    method = method.upper() if method.upper() in _METHODS else "OTHER"
    parts = path.split("/")[:16]
    return f"{method} " + "/".join(map(_segment, parts))[:MAX_NAME]


def _segment(part: str) -> str:
    if part.isdigit() or (len(part) >= 8 and _ID_SEGMENT.match(part)):
        return "{id}"
    return part


def given_name(value: object) -> str | None:
    """``value`` as a route name when it is a non-empty string (trimmed), else None.

    >>> given_name("items.show"), given_name(""), given_name(42)
    ('items.show', None, None)
    """
    if type(value) is str and value:
        return value[:MAX_NAME]
    return None


def fallback_name(method: object, path: object, status: object) -> str:
    """The name of a request nothing else named: :data:`UNMATCHED` for a 404, else the template.

    >>> fallback_name("GET", "/missing/7", "404 Not Found"), fallback_name("GET", "/a/7", 200)
    ('<unmatched>', 'GET /a/{id}')
    """
    code = status if type(status) is int else None
    if code == 404 or (type(status) is str and status[:3] == "404"):
        return UNMATCHED
    return route_template(
        method if isinstance(method, str) else "",
        path if isinstance(path, str) else "",
    )[:MAX_NAME]


class RouteNamer:
    """Names a WSGI request: ``environ["leakscope.route"]``, else ``route(environ)``, else the
    path's template (:data:`UNMATCHED` for a 404).  Never raises; a raising route function
    is logged once and the path is used.

    >>> RouteNamer()({"REQUEST_METHOD": "GET", "PATH_INFO": "/items/42"}, "200 OK")
    'GET /items/{id}'
    """

    __slots__ = ("_error_logged", "route")

    def __init__(self, route: RouteFunction | None = None) -> None:
        if route is not None and not callable(route):
            raise TypeError(f"route must be callable, not {type(route).__name__}")
        self.route = route
        self._error_logged = False

    def __call__(self, environ: dict[str, Any] | None, status: str) -> str:
        # Runs for every request: given_name() and _ask() inlined.
        try:
            if environ is None:
                return OTHER
            name = environ.get("leakscope.route")
            if type(name) is str and name:
                return name[:MAX_NAME]
            route = self.route
            if route is not None:
                try:
                    name = route(environ)
                except Exception:
                    name = None
                    self._route_failed()
                if type(name) is str and name:
                    return name[:MAX_NAME]
            return fallback_name(environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), status)
        except Exception:
            logger.exception("leakscope: could not name a request's route")
            return OTHER

    def _route_failed(self) -> None:
        if not self._error_logged:
            self._error_logged = True
            logger.exception("leakscope: the route function raised; using the path")
