"""The leakscope web endpoints, framework-neutral: security, the JSON API, the pages.

An adapter (the Flask blueprint, an ASGI or Django middleware) turns each request under
its prefix into a :class:`Call` and sends back the :class:`Reply`::

    endpoints = Endpoints(source=middleware, prefix="/_leakscope")
    reply = endpoints.handle(Call("GET", "/api/status", authorization="Bearer t"), token="t")
    reply.status, reply.headers, reply.body

Paths (relative to the prefix): ``/`` the dashboard, ``/login``, ``/api/status``,
``/api/routes``, ``/api/timeline``, ``/api/growth``, ``/api/cycles``, ``/api/snapshot``,
``/metrics``.  Security: everything answers 404 unless a token is configured; then every
call needs ``Authorization: Bearer <token>`` (compared in constant time); the dashboard
also accepts an HttpOnly, SameSite=Strict cookie set by its login form.  A wrong or
missing token gets 401 and no data; a client outside ``allow`` gets 403.  Taking a
snapshot or looking for cycles is rate-limited (429).  Replies hold type names,
counts, sizes, routes and source locations only: never object reprs or configuration.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from leakscope.errors import MissingDependencyError
from leakscope.web.dashboard import dashboard_page, login_page
from leakscope.web.status import MAX_TYPES, growth_between, merge_routes

__all__ = ["COOKIE", "PATHS", "Call", "Endpoints", "Reply", "Source", "networks"]

COOKIE = "leakscope_token"
PATHS = (
    "/",
    "/login",
    "/api/status",
    "/api/routes",
    "/api/timeline",
    "/api/growth",
    "/api/cycles",
    "/api/snapshot",
    "/metrics",
)
"""Every endpoint path under the prefix; each takes GET and POST (a disabled one: 404 to both)."""
RATE_INTERVAL = 10.0  # seconds between two snapshots (or cycle searches) in one worker
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "form-action 'self'; frame-ancestors 'none'",
    ),
    ("Cache-Control", "no-store"),
)
_HTML = "text/html; charset=utf-8"


class Source(Protocol):
    """Where the endpoints read the state: a LeakMiddleware or a Monitor."""

    def status(self) -> dict[str, Any]: ...

    def workers(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Call:
    """One HTTP request to an endpoint, as the adapter read it (``path`` below the prefix)."""

    method: str
    path: str
    authorization: str = ""
    cookie: str | None = None
    form_token: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    remote_addr: str | None = None
    secure: bool = False


@dataclass
class Reply:
    """What to send back: status code, headers (security headers included) and body."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def all_headers(self) -> list[tuple[str, str]]:
        """``Content-Type``, the reply's own headers, then the security headers."""
        return [("Content-Type", self.content_type), *self.headers, *_SECURITY_HEADERS]


def networks(allow: Iterable[str] | str | None) -> list[_Network] | None:
    """The allowed client networks, parsed (None: every client).

    >>> networks(["10.0.0.0/8"])
    [IPv4Network('10.0.0.0/8')]
    """
    if allow is None:
        return None
    if isinstance(allow, str):
        allow = [allow]
    nets: list[_Network] = []
    for item in allow:
        if not isinstance(item, str):
            raise TypeError(f"allow must hold address strings, not {type(item).__name__}")
        try:
            nets.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"allow: {item!r:.60} is not an IP address or network") from None
    return nets


def _plain(text: str, status: int) -> Reply:
    return Reply(status, (text + "\n").encode())


def _json(data: Any, status: int = 200) -> Reply:
    body = json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
    return Reply(status, body, "application/json")


def _cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"leakscope dashboard", hashlib.sha256).hexdigest()


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


class Endpoints:
    """The endpoints of one application (see the module docstring); thread-safe.

    ``source``: whose state is shown; ``prefix``: where the adapter mounts them (for the
    links, the login form and the cookie's path); ``allow``: client networks or None;
    ``clock``: seconds, for the rate limit.
    """

    def __init__(
        self,
        source: Source,
        *,
        prefix: str = "/_leakscope",
        allow: Iterable[str] | str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(prefix, str) or not prefix.startswith("/") or prefix == "/":
            raise ValueError(f"prefix must be a path like '/_leakscope', not {prefix!r:.60}")
        self.source = source
        self.prefix = prefix.rstrip("/")
        self.allow = networks(allow)
        self.clock = clock
        self._lock = threading.Lock()
        self._last_take: dict[str, float] = {}
        self._snapshot: bytes | None = None
        self._views: dict[str, Callable[[Call, str], Reply]] = {
            "/": self._dashboard,
            "/login": self._login,
            "/api/status": self._status,
            "/api/routes": self._routes,
            "/api/timeline": self._timeline,
            "/api/growth": self._growth,
            "/api/cycles": self._cycles,
            "/api/snapshot": self._take_snapshot,
            "/metrics": self._metrics,
        }

    def handle(self, call: Call, token: str | None) -> Reply:
        """The reply to ``call``; ``token`` is the configured token (None: disabled)."""
        view = self._views.get(call.path.rstrip("/") or "/")
        if view is None:
            return _plain("Not Found", 404)
        refused = self._refused(call, token)
        if refused is not None or token is None:
            return refused or _plain("Not Found", 404)
        return view(call, token)

    # -- security --------------------------------------------------------------------------

    def _allowed(self, remote_addr: str | None) -> bool:
        if self.allow is None:
            return True
        try:
            address = ipaddress.ip_address(remote_addr or "")
        except ValueError:
            return False
        return any(address in net for net in self.allow)

    def _refused(self, call: Call, token: str | None) -> Reply | None:
        """None when the call may proceed, else the refusal."""
        if token is None:
            return _plain("Not Found", 404)
        if not self._allowed(call.remote_addr):
            return _plain("Forbidden", 403)
        scheme, _, given = call.authorization.partition(" ")
        if scheme.lower() == "bearer" and _same(given.strip(), token):
            return None
        path = call.path.rstrip("/") or "/"
        if path == "/" and call.cookie and _same(call.cookie, _cookie_value(token)):
            return None
        if path == "/login" and call.method == "POST":
            return None  # the form's token is checked by the view
        if path in ("/", "/login"):
            reply = Reply(401, login_page(self.prefix + "/login", False).encode(), _HTML)
        else:
            reply = _plain("Unauthorized", 401)
        reply.headers.append(("WWW-Authenticate", 'Bearer realm="leakscope"'))
        return reply

    def _rate_limited(self, what: str) -> Reply | None:
        now = self.clock()
        with self._lock:
            last = self._last_take.get(what)
            if last is not None and now - last < RATE_INTERVAL:
                reply = _plain("Too Many Requests", 429)
                wait = max(1, int(RATE_INTERVAL - (now - last)) + 1)
                reply.headers.append(("Retry-After", str(wait)))
                return reply
            self._last_take[what] = now
        return None

    # -- views -----------------------------------------------------------------------------

    def _dashboard(self, call: Call, token: str) -> Reply:
        workers = self.source.workers()
        return Reply(200, dashboard_page(workers, merge_routes(workers)).encode(), _HTML)

    def _login(self, call: Call, token: str) -> Reply:
        dashboard = [("Location", self.prefix + "/")]
        if call.method != "POST":  # already authorized by the bearer token
            return Reply(303, b"", headers=dashboard)
        given = call.form_token
        if not isinstance(given, str) or not _same(given, token):
            reply = Reply(401, login_page(self.prefix + "/login", True).encode(), _HTML)
            reply.headers.append(("WWW-Authenticate", 'Bearer realm="leakscope"'))
            return reply
        cookie = f"{COOKIE}={_cookie_value(token)}; Path={self.prefix}/; HttpOnly; SameSite=Strict"
        if call.secure:
            cookie += "; Secure"
        return Reply(303, b"", headers=[*dashboard, ("Set-Cookie", cookie)])

    def _status(self, call: Call, token: str) -> Reply:
        return _json({"workers": self.source.workers()})

    def _routes(self, call: Call, token: str) -> Reply:
        return _json({"routes": merge_routes(self.source.workers())})

    def _timeline(self, call: Call, token: str) -> Reply:
        workers = self.source.workers()
        return _json(
            {
                "workers": [
                    {"pid": w.get("pid"), "timeline": w.get("timeline") or []} for w in workers
                ]
            }
        )

    def _growth(self, call: Call, token: str) -> Reply:
        state = self.source.status()
        args = call.query
        if "start" not in args and "end" not in args:
            return _json({"pid": state["pid"], "growth": state["growth"]})
        points = state["timeline"]
        try:
            start = int(args.get("start", 0))
            end = int(args.get("end", len(points) - 1))
        except ValueError:
            return _json({"error": "start and end must be integers"}, 400)
        n = len(points)
        if not points or not (-n <= start < n) or not (-n <= end < n):
            return _json({"error": f"start and end must index the {n} timeline points"}, 400)
        growth = growth_between(points, start, end)
        return _json({"pid": state["pid"], "start": start, "end": end, "growth": growth})

    def _cycles(self, call: Call, token: str) -> Reply:
        refused = self._rate_limited("cycles")
        if refused is not None:
            return refused
        from leakscope.cycles import find_cycles

        report = find_cycles()
        cycles = [
            {
                "size": c.size,
                "count": c.count,
                "has_finalizer": c.has_finalizer,
                "types": [{"type": t, "count": n} for t, n in c.types],
            }
            for c in report.cycles[:50]
        ]
        return _json(
            {
                "pid": os.getpid(),
                "garbage": report.garbage,
                "collections": report.collections,
                "total": report.total,
                "uncollectable": list(report.uncollectable)[:MAX_TYPES],
                "cycles": cycles,
            }
        )

    def _take_snapshot(self, call: Call, token: str) -> Reply:
        if call.method != "POST":
            data = self._snapshot
            if data is None:
                return _json({"error": "no snapshot taken in this worker"}, 404)
            disposition = f'attachment; filename="leakscope-{os.getpid()}.json"'
            return Reply(200, data, "application/json", [("Content-Disposition", disposition)])
        refused = self._rate_limited("snapshot")
        if refused is not None:
            return refused
        from leakscope._snapshot import snapshot as take

        taken = take(memory=False).to_dict()
        self._snapshot = json.dumps(taken, separators=(",", ":"), allow_nan=False).encode()
        return _json({"pid": os.getpid(), "taken": True, "objects": taken.get("objects")}, 201)

    def _metrics(self, call: Call, token: str) -> Reply:
        try:
            from leakscope.web.prometheus import exposition

            body, content_type = exposition()
        except MissingDependencyError:
            return _plain("Not Found", 404)
        return Reply(200, body, content_type)
