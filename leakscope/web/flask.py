"""Flask adapter: leak diagnosis of a live Flask service, behind a token.

::

    from leakscope.flask import LeakScope
    LeakScope(app)                 # or: scope = LeakScope(); scope.init_app(app)

Wraps ``app.wsgi_app`` in :class:`~leakscope.web.middleware.LeakMiddleware` (once), names each
request's route after its Flask endpoint (``"leaky.item"``; ``"<unmatched>"`` for a
404 or 405), with no hook in Flask's request path, and registers a blueprint
under ``prefix`` (default ``/_leakscope``) serving :class:`~leakscope.web.endpoints.Endpoints`:
a dashboard page at ``/`` and JSON under ``/api/`` (``status``, ``routes``, ``timeline``,
``growth``, ``cycles``, ``snapshot``), plus ``/metrics`` (Prometheus text, with the
``prometheus`` extra).  leakscope's own endpoints are not counted as routes.

Security: everything answers 404 unless a token is configured (``token=``, app config
``LEAKSCOPE_TOKEN`` or env ``LEAKSCOPE_TOKEN``); see :mod:`leakscope.web.endpoints`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from leakscope.errors import MissingDependencyError
from leakscope.web.endpoints import COOKIE, PATHS, Call, Endpoints, networks
from leakscope.web.middleware import LeakMiddleware
from leakscope.web.naming import OWN, UNMATCHED

__all__ = ["LeakScope"]

_BLUEPRINT = "leakscope"
_OWN_PREFIX = _BLUEPRINT + "."
# Flask endpoint names of the paths (``url_for("leakscope.status")``).
_NAMES = {
    "/": "dashboard",
    "/login": "login",
    "/api/status": "status",
    "/api/routes": "routes",
    "/api/timeline": "timeline",
    "/api/growth": "growth",
    "/api/cycles": "cycles",
    "/api/snapshot": "snapshot",
    "/metrics": "metrics",
}
assert set(_NAMES) == set(PATHS)


def _flask() -> Any:
    try:
        import flask
    except ImportError:
        raise MissingDependencyError("the Flask dashboard", "flask", "flask") from None
    return flask


def _endpoint(environ: dict[str, Any]) -> str | None:
    """The Flask endpoint of a request (``"leaky.item"``), read as its response starts.

    Flask's request object is then in the environ (``werkzeug.request``, cleared when the
    request ends) with the URL rule it matched, so naming a request adds no hook to
    Flask's request path; a request that matched no rule (404, 405) is ``"<unmatched>"``,
    one to leakscope's own blueprint is not the application's (``OWN``).
    """
    request = environ.get("werkzeug.request")
    endpoint = getattr(getattr(request, "url_rule", None), "endpoint", None)
    if isinstance(endpoint, str) and endpoint:
        return OWN if endpoint.startswith(_OWN_PREFIX) else endpoint
    if getattr(request, "routing_exception", None) is not None:
        return UNMATCHED
    return None


class _EndpointFirst:
    """A route function of the user's, asked when Flask did not name the request."""

    __slots__ = ("fallback",)

    def __init__(self, fallback: Callable[[dict[str, Any]], str | None]) -> None:
        self.fallback = fallback

    def __call__(self, environ: dict[str, Any]) -> str | None:
        return _endpoint(environ) or self.fallback(environ)


class LeakScope:
    """The leakscope extension of a Flask application: middleware, JSON API and dashboard.

    ``token`` (else app config or env ``LEAKSCOPE_TOKEN``) enables it; ``allow`` is an
    optional list of client addresses or networks; ``sample``, ``budget`` and
    ``directory`` go to :class:`~leakscope.web.middleware.LeakMiddleware`.

    >>> scope = LeakScope(app, token="s3cret")  # doctest: +SKIP
    """

    def __init__(
        self,
        app: Any = None,
        *,
        prefix: str = "/_leakscope",
        token: str | None = None,
        allow: Iterable[str] | None = None,
        sample: float | None = None,
        directory: str | os.PathLike[str] | None = None,
        budget: float | None = None,
    ) -> None:
        if not isinstance(prefix, str) or not prefix.startswith("/") or prefix == "/":
            raise ValueError(f"prefix must be a path like '/_leakscope', not {prefix!r:.60}")
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError("token must be a non-empty string or None")
        self.prefix = prefix.rstrip("/")
        self._token = token
        networks(allow)  # a bad address fails here, at set-up
        self._allow = None if allow is None else [allow] if isinstance(allow, str) else list(allow)
        self._options: dict[str, Any] = {"sample": sample, "budget": budget, "directory": directory}
        self.middleware: Any = None
        self.endpoints: Endpoints | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Any) -> None:
        """Wrap ``app.wsgi_app`` (once), name routes by endpoint, register the blueprint."""
        flask = _flask()
        if not isinstance(app, flask.Flask):
            raise TypeError(f"init_app needs a Flask application, not {type(app).__name__}")
        if "leakscope" in app.extensions:
            raise ValueError("leakscope is already set up on this application")
        self.middleware = _wrapped(app, self._options)
        self.endpoints = Endpoints(self.middleware, prefix=self.prefix, allow=self._allow)
        app.extensions["leakscope"] = self
        app.register_blueprint(self._blueprint(flask), url_prefix=self.prefix)

    def _configured_token(self, flask: Any) -> str | None:
        token = self._token
        if token is None:
            value = flask.current_app.config.get("LEAKSCOPE_TOKEN")
            token = value if isinstance(value, str) and value else None
        if token is None:
            token = os.environ.get("LEAKSCOPE_TOKEN") or None
        return token

    def _serve(self, flask: Any, path: str) -> Any:
        """One leakscope request: read it into a Call, answer the Reply."""
        request = flask.request
        form_token = request.form.get("token") if request.method == "POST" else None
        call = Call(
            method=request.method,
            path=path,
            authorization=request.headers.get("Authorization", ""),
            cookie=request.cookies.get(COOKIE),
            form_token=form_token if isinstance(form_token, str) else None,
            query={k: v for k, v in request.args.items() if isinstance(v, str)},
            remote_addr=request.remote_addr,
            secure=bool(request.is_secure),
        )
        assert self.endpoints is not None
        reply = self.endpoints.handle(call, self._configured_token(flask))
        response = flask.Response(reply.body, reply.status)
        for name, value in reply.all_headers():
            if name in ("Content-Type", "Location"):
                response.headers[name] = value
            else:
                response.headers.add(name, value)
        return response

    def _blueprint(self, flask: Any) -> Any:
        bp = flask.Blueprint(_BLUEPRINT, __name__)
        for path, name in _NAMES.items():
            view = _View(self, flask, path)
            # Every URL takes GET and POST, so that a disabled one answers 404 to both
            # (never 405, which would tell that it exists).
            bp.add_url_rule(
                path, endpoint=name, view_func=view, methods=["GET", "POST"], strict_slashes=False
            )
        return bp


class _View:
    """The Flask view of one leakscope path."""

    __slots__ = ("__name__", "flask", "path", "scope")

    def __init__(self, scope: LeakScope, flask: Any, path: str) -> None:
        self.scope, self.flask, self.path = scope, flask, path
        self.__name__ = _NAMES[path]

    def __call__(self) -> Any:
        return self.scope._serve(self.flask, self.path)


def _wrapped(app: Any, options: dict[str, Any]) -> LeakMiddleware:
    """``app.wsgi_app`` as a LeakMiddleware naming routes by Flask endpoint (wrapped once)."""
    wsgi = app.wsgi_app
    if not isinstance(wsgi, LeakMiddleware):
        wsgi = app.wsgi_app = LeakMiddleware(wsgi, route=_endpoint, **options)
        return wsgi
    current = wsgi.route_function
    if current is None:
        wsgi.route_function = _endpoint
    elif current is not _endpoint:
        wsgi.route_function = _EndpointFirst(current)
    return wsgi
