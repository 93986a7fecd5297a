"""ASGI middleware (Starlette, FastAPI, any ASGI 3 app): which route of a live service leaks.

Wrap the application; that is the whole set-up::

    from leakscope.asgi import LeakMiddleware
    app = LeakMiddleware(app)      # endpoints under /_leakscope when LEAKSCOPE_TOKEN is set

A pure ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which runs the app in
another task and breaks context variables): ``lifespan`` and unknown scope types pass
through untouched; every ``http`` and ``websocket`` scope is reported to a
:class:`~leakscope.web.core.Monitor` and named after the route that served it, read from
the scope once the app is done (Starlette and FastAPI leave the matched route there):
``"GET /items/{item_id}"``, ``"WS /ws/{room}"``, :data:`~leakscope.web.naming.UNMATCHED`
for a 404.  Requests interleave on one event loop, so a request is measured only when it
ran alone: it started with nothing else in flight and nothing started before it ended.
A request whose ``await`` let another one start is counted, not measured
(``overhead.skipped_busy`` in the status); nothing is ever split between the routes in
flight.  An open WebSocket is in flight for as long as it stays open.

Under ``/_leakscope`` (``prefix``) the middleware serves
:class:`~leakscope.web.endpoints.Endpoints` itself (dashboard, JSON API, ``/metrics``):
404 unless a token is configured (``token=`` or env ``LEAKSCOPE_TOKEN``), 401 without
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from leakscope.web.core import Monitor
from leakscope.web.endpoints import COOKIE, Call, Endpoints, Reply, networks
from leakscope.web.naming import MAX_NAME, OTHER, UNMATCHED, fallback_name

__all__ = ["LeakMiddleware", "route_name"]

logger = logging.getLogger("leakscope")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ScopeRoute = Callable[[Scope], "str | None"]

_MAX_FORM = 4096  # bytes of a login form read; a larger body is refused


def _template(scope: Scope) -> str | None:
    """The path template of the route that served ``scope`` (Starlette/FastAPI), if any.

    FastAPI leaves the route in ``scope["route"]``; Starlette leaves the endpoint and the
    router, whose routes are searched for it.  A Mount's prefix is what it added to
    ``root_path``.
    """
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if path is not None and getattr(route, "endpoint", None) is None:
        path = "/{path}"  # a Mount of an application that is not a router: its prefix + any
    if not isinstance(path, str):
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return None
        path = None
        for candidate in getattr(scope.get("router"), "routes", ()) or ():
            if getattr(candidate, "endpoint", None) is endpoint:
                found = getattr(candidate, "path_format", None) or getattr(candidate, "path", None)
                if isinstance(found, str):
                    path = found
                    break
        if path is None:
            return None
    root, base = scope.get("root_path") or "", scope.get("app_root_path")
    if isinstance(root, str) and isinstance(base, str) and root.startswith(base):
        path = root[len(base) :] + path
    return path


def route_name(scope: Scope, status: int | None) -> str:
    """The route a finished ``http`` or ``websocket`` scope is counted under.

    ``scope["leakscope.route"]`` when the app set it, else the matched route's template
    with the method (``"GET /items/{item_id}"``, ``"WS /ws/{room}"``), else
    :data:`UNMATCHED` for a 404, else the path's template.  Never raises.

    >>> route_name({"type": "http", "method": "GET", "path": "/nope/3"}, 404)
    '<unmatched>'
    """
    try:
        given = scope.get("leakscope.route")
        if type(given) is str and given:
            return given[:MAX_NAME]
        method = "WS" if scope.get("type") == "websocket" else str(scope.get("method", "GET"))
        template = _template(scope)
        if template is not None:
            return f"{method} {template}"[:MAX_NAME]
        if method == "WS":
            name = fallback_name("GET", scope.get("path"), status or "")
            return name if name == UNMATCHED else "WS " + name.partition(" ")[2]
        return fallback_name(method, scope.get("path"), status or "")
    except Exception:
        logger.exception("leakscope: could not name a request's route")
        return OTHER


class _Status:
    """The status code of the response, read from the messages the app sends."""

    __slots__ = ("code", "send")

    def __init__(self, send: Send) -> None:
        self.send: Send | None = send
        self.code: int | None = None

    async def __call__(self, message: Message) -> None:
        if message.get("type") == "http.response.start":
            code = message.get("status")
            self.code = code if type(code) is int else None
        send = self.send
        assert send is not None
        await send(message)


def _server_objects(send: object) -> list[object]:
    """What the server keeps of a request behind its ``send``: the object ``send`` is bound
    to (uvicorn's request cycle) and the objects its own bound methods belong to (the
    connection's protocol, which sets a keep-alive timer as the response ends).

    >>> _server_objects(print)
    []
    """
    owner = getattr(send, "__self__", None)
    if owner is None or isinstance(owner, type(sys)):
        return []
    found: list[object] = [owner]
    try:
        values = list(vars(owner).values())
    except TypeError:
        return found
    for value in values[:64]:
        bound = getattr(value, "__self__", None)
        if bound is not None and bound is not owner and not isinstance(bound, type(sys)):
            found.append(bound)
    return found


class LeakMiddleware:
    """An ASGI middleware that measures what each route of the wrapped application retains.

    The keyword options are the WSGI middleware's (``sample``, ``budget``, ``interval``,
    ``history``, ``directory``, ``route``: a function of the scope naming its route,
    ``clock``), plus ``token`` (else env ``LEAKSCOPE_TOKEN``), ``allow`` (client networks
    for the endpoints) and ``prefix`` (where they are served).

    >>> app = LeakMiddleware(lambda scope, receive, send: None, budget=0.02)
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        sample: float | None = None,
        budget: float | None = None,
        interval: float = 10.0,
        history: int = 360,
        directory: str | os.PathLike[str] | None = None,
        route: ScopeRoute | None = None,
        clock: Callable[[], float] = time.monotonic,
        token: str | None = None,
        allow: Iterable[str] | None = None,
        prefix: str = "/_leakscope",
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI application, not {type(app).__name__}")
        if route is not None and not callable(route):
            raise TypeError(f"route must be callable, not {type(route).__name__}")
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError("token must be a non-empty string or None")
        self.app = app
        self.route = route
        self._token = token
        self.monitor = Monitor(
            sample=sample,
            budget=budget,
            interval=interval,
            history=history,
            directory=directory,
            clock=clock,
        )
        self.endpoints = Endpoints(self.monitor, prefix=prefix, clock=clock)
        self.endpoints.allow = networks(allow)
        self.prefix = self.endpoints.prefix
        self._route_failed = False

    # -- the request path ------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan and the rest: untouched
            return
        path = scope.get("path")
        if kind == "http" and isinstance(path, str) and self._own(path):
            await self._serve(scope, receive, send, path[len(self.prefix) :])
            return
        monitor = self.monitor
        number, sampling = monitor.start()
        status = _Status(send)
        measure = True
        try:
            await self.app(scope, receive, status)
        except BaseException:
            measure = False  # the traceback being raised still holds the request's objects
            raise
        finally:
            status.send = None
            route = self.name(scope, status.code)
            if sampling is None:
                monitor.request_ended(number, route)
            else:
                roots = (scope, send, *_server_objects(send))
                monitor.request_ended(number, route, sampling, roots, measure=measure)

    def _own(self, path: str) -> bool:
        prefix = self.prefix
        return path == prefix or path.startswith(prefix + "/")

    def name(self, scope: Scope, status: int | None) -> str:
        """The route ``scope`` is counted under: the ``route`` function's name, else :func:`route_name`."""
        route = self.route
        if route is not None:
            try:
                name = route(scope)
            except Exception:
                name = None
                if not self._route_failed:
                    self._route_failed = True
                    logger.exception("leakscope: the route function raised; using the path")
            if type(name) is str and name:
                return name[:MAX_NAME]
        return route_name(scope, status)

    # -- leakscope's own endpoints ------------------------------------------------------------

    def _configured_token(self) -> str | None:
        return self._token or os.environ.get("LEAKSCOPE_TOKEN") or None

    async def _serve(self, scope: Scope, receive: Receive, send: Send, below: str) -> None:
        """One request to the endpoints: read it into a Call, send the Reply."""
        method = str(scope.get("method", "GET")).upper()
        form_token = None
        if method == "POST":
            body = await _body(receive)
            if body is None:
                await _send_reply(send, Reply(413, b"Payload Too Large\n"))
                return
            form = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
            form_token = form.get("token")
        headers = _headers(scope)
        query_string = scope.get("query_string") or b""
        client = scope.get("client")
        call = Call(
            method=method,
            path=below or "/",
            authorization=headers.get("authorization", ""),
            cookie=_cookie(headers.get("cookie", "")),
            form_token=form_token,
            query=dict(parse_qsl(bytes(query_string).decode("latin-1"))),
            remote_addr=client[0] if isinstance(client, (list, tuple)) and client else None,
            secure=scope.get("scheme") in ("https", "wss"),
        )
        try:
            reply = self.endpoints.handle(call, self._configured_token())
        except Exception:
            logger.exception("leakscope: an endpoint failed")
            reply = Reply(500, b"Internal Server Error\n")
        await _send_reply(send, reply)

    # -- state -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """This worker's state: requests, memory, growth since the first census, routes, timeline."""
        return self.monitor.status()

    def workers(self) -> list[dict[str, Any]]:
        """Every worker's state: from the directory when there is one, else ``[self.status()]``."""
        return self.monitor.workers()


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in scope.get("headers") or ():
        try:
            name, value = item
            out[bytes(name).decode("latin-1").lower()] = bytes(value).decode("latin-1")
        except (TypeError, ValueError):
            continue
    return out


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


async def _body(receive: Receive) -> bytes | None:
    """The request body (None when over :data:`_MAX_FORM` bytes)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            return b"".join(chunks)
        chunk = message.get("body") or b""
        size += len(chunk)
        if size > _MAX_FORM:
            return None
        chunks.append(bytes(chunk))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_reply(send: Send, reply: Reply) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.all_headers()]
    headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})
