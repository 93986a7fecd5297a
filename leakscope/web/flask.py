"""Flask adapter: leak diagnosis of a live Flask service, behind a token.

::

    from leakscope.flask import LeakScope
    LeakScope(app)                 # or: scope = LeakScope(); scope.init_app(app)

Wraps ``app.wsgi_app`` in :class:`~leakscope.web.middleware.LeakMiddleware` (once), names each
request's route after its Flask endpoint (``"leaky.item"``; ``"<unmatched>"`` for a
404 or 405), with no hook in Flask's request path, and registers a blueprint
under ``prefix`` (default ``/_leakscope``): a dashboard page at ``/`` and JSON under
``/api/`` (``status``, ``routes``, ``timeline``, ``growth``, ``cycles``, ``snapshot``),
plus ``/metrics`` (Prometheus text, with the ``prometheus`` extra).

Security: everything answers 404 unless a token is configured (``token=``, app config
``LEAKSCOPE_TOKEN`` or env ``LEAKSCOPE_TOKEN``).  Every request then needs
``Authorization: Bearer <token>`` (compared in constant time); the dashboard page also
accepts an HttpOnly, SameSite=Strict cookie set by its login form.  A wrong or
missing token gets 401 and no data; a client outside ``allow`` (addresses or
networks) gets 403.  Taking a snapshot or looking for cycles is rate-limited (429).
Responses hold type names, counts, sizes and routes only: never object reprs or
configuration values.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from leakscope._format import format_bytes
from leakscope.errors import MissingDependencyError
from leakscope.web.middleware import _UNMATCHED, LeakMiddleware

__all__ = ["LeakScope"]

_COOKIE = "leakscope_token"
_RATE_INTERVAL = 10.0  # seconds between two snapshots (or cycle searches) in one worker
_MAX_TYPES = 20
_MAX_SERIES = 8  # routes drawn in the dashboard's retention-over-time chart
# Every leakscope URL takes GET and POST, so that a disabled one answers 404 to both
# (never 405, which would tell that it exists); the method matters to /api/snapshot and /login.
_BOTH = ["GET", "POST"]
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _flask() -> Any:
    try:
        import flask
    except ImportError:
        raise MissingDependencyError("the Flask dashboard", "flask", "flask") from None
    return flask


def _networks(allow: Iterable[str] | None) -> list[_Network] | None:
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


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)


def _merge_routes(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every route's row merged over the workers (per-request figures weighted by samples)."""
    merged: dict[str, dict[str, Any]] = {}
    for state in workers:
        routes = state.get("routes")
        for row in routes if isinstance(routes, list) else []:
            if not isinstance(row, dict):
                continue
            name = str(row.get("route"))
            entry = merged.setdefault(
                name,
                {
                    "route": name,
                    "requests": 0,
                    "sampled": 0,
                    "leaking": False,
                    "workers": [],
                    "_objects": 0.0,
                    "_bytes": 0.0,
                    "_types": {},
                },
            )
            weight = max(_num(row.get("sampled")), 1.0)
            entry["requests"] += int(_num(row.get("requests")))
            entry["sampled"] += int(_num(row.get("sampled")))
            entry["leaking"] = entry["leaking"] or row.get("leaking") is True
            entry["workers"].append(state.get("pid"))
            entry["_objects"] += _num(row.get("retained_objects_per_request")) * weight
            entry["_bytes"] += _num(row.get("retained_bytes_per_request")) * weight
            entry["_weight"] = entry.get("_weight", 0.0) + weight
            types = row.get("top_types")
            for t in types if isinstance(types, list) else []:
                if isinstance(t, dict):
                    key = str(t.get("type"))
                    value = _num(t.get("per_request")) * weight
                    entry["_types"][key] = entry["_types"].get(key, 0.0) + value
    out = []
    for entry in merged.values():
        weight = entry.pop("_weight", 1.0) or 1.0
        types = entry.pop("_types")
        entry["retained_objects_per_request"] = entry.pop("_objects") / weight
        entry["retained_bytes_per_request"] = entry.pop("_bytes") / weight
        entry["top_types"] = [
            {"type": t, "per_request": v / weight}
            for t, v in sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        ]
        out.append(entry)
    out.sort(key=lambda r: (not r["leaking"], -r["retained_objects_per_request"], r["route"]))
    return out


def _growth_between(timeline: list[dict[str, Any]], start: int, end: int) -> dict[str, Any]:
    a, b = timeline[start], timeline[end]

    def diff(key: str) -> int | None:
        x, y = a.get(key), b.get(key)
        if isinstance(x, int) and isinstance(y, int):
            return y - x
        return None

    ta, tb = a.get("types") or {}, b.get("types") or {}
    deltas = [(n, int(_num(tb.get(n))) - int(_num(ta.get(n)))) for n in set(ta) | set(tb)]
    deltas.sort(key=lambda nd: (-abs(nd[1]), nd[0]))
    return {
        "rss": diff("rss"),
        "blocks": diff("blocks"),
        "objects": diff("objects"),
        "types": [{"type": n, "delta": d} for n, d in deltas[:_MAX_TYPES] if d],
        "seconds": _num(b.get("time")) - _num(a.get("time")),
    }


def _size(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return format_bytes(value)


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;
margin:1.5em;color:#222;max-width:70em}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;font-size:.9em}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.leak{color:#b00020;font-weight:600}.ok{color:#2e7d32}.muted{color:#777}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>"
    )


def _login_page(action: str, failed: bool) -> str:
    note = '<p class="leak">Wrong token.</p>' if failed else ""
    return _page(
        "leakscope: sign in",
        "<h1>leakscope</h1><p>This dashboard needs the leakscope token.</p>"
        f'{note}<form method="post" action="{html.escape(action)}">'
        '<label>Token <input type="password" name="token" autocomplete="off" required>'
        '</label> <button type="submit">Open</button></form>',
    )


def _dashboard(workers: list[dict[str, Any]], routes: list[dict[str, Any]]) -> str:
    from leakscope.render.svg import bar_chart, line_chart

    esc = html.escape
    rows = []
    for w in workers:
        leaking = [
            str(r.get("route"))
            for r in (w.get("routes") or [])
            if isinstance(r, dict) and r.get("leaking") is True
        ]
        growth = w.get("growth") if isinstance(w.get("growth"), dict) else {}
        assert isinstance(growth, dict)
        state = "alive" if w.get("alive", True) else "exited"
        rows.append(
            f'<tr class="worker"><td class="n pid">{esc(str(w.get("pid")))}</td>'
            f"<td>{esc(state)}</td>"
            f'<td class="n">{int(_num(w.get("requests"))):,}</td>'
            f'<td class="n">{int(_num(w.get("sampled"))):,}</td>'
            f'<td class="n">{esc(_size(w.get("rss")))}</td>'
            f'<td class="n">{esc(_size(growth.get("rss")))}</td>'
            f'<td class="n">{int(_num(growth.get("blocks"))):,}</td>'
            f'<td class="{"leak" if leaking else "ok"}">'
            f"{esc(', '.join(leaking) or 'none')}</td></tr>"
        )
    rss: dict[str, list[tuple[float, float]]] = {}
    blocks: dict[str, list[tuple[float, float]]] = {}
    retained: dict[str, list[tuple[float, float]]] = {}
    for w in workers:
        timeline = w.get("timeline")
        for p in timeline if isinstance(timeline, list) else []:
            if not isinstance(p, dict):
                continue
            t = _num(p.get("time"))
            if isinstance(p.get("rss"), int):
                rss.setdefault(f"pid {w.get('pid')}", []).append((t, float(p["rss"])))
            blocks.setdefault(f"pid {w.get('pid')}", []).append((t, _num(p.get("blocks"))))
            point_routes = p.get("routes")
            for name, r in point_routes.items() if isinstance(point_routes, dict) else ():
                if isinstance(r, dict):
                    key = f"{name} (pid {w.get('pid')})" if len(workers) > 1 else str(name)
                    retained.setdefault(key, []).append((t, _num(r.get("objects"))))
    top = sorted(retained, key=lambda k: (-retained[k][-1][1], k))[:_MAX_SERIES]
    retained = {k: retained[k] for k in top}
    route_rows = []
    for r in routes:
        types = ", ".join(f"{t['type']} ({t['per_request']:.2g}/req)" for t in r["top_types"][:3])
        route_rows.append(
            f'<tr class="route"><td>{esc(r["route"])}</td>'
            f'<td class="{"leak" if r["leaking"] else "ok"}">'
            f"{'leaking' if r['leaking'] else 'no'}</td>"
            f'<td class="n">{r["requests"]:,}</td><td class="n">{r["sampled"]:,}</td>'
            f'<td class="n">{r["retained_objects_per_request"]:.2f}</td>'
            f'<td class="n">{esc(_size(r["retained_bytes_per_request"]))}</td>'
            f"<td>{esc(types) or '<span class=muted>-</span>'}</td></tr>"
        )
    bars = [(str(r["route"]), float(r["retained_objects_per_request"])) for r in routes[:20]]
    body = [
        "<h1>leakscope: live service</h1>",
        f'<p class="muted">{len(workers)} worker(s); generated '
        f"{esc(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()))}</p>",
        "<h2>Workers</h2><table><thead><tr><th>pid</th><th>state</th><th>requests</th>"
        "<th>sampled</th><th>RSS</th><th>RSS growth</th><th>blocks growth</th>"
        f"<th>leaking routes</th></tr></thead><tbody>{''.join(rows)}</tbody></table>",
        "<h2>Memory over time</h2>",
        line_chart(rss, title="Resident memory (RSS) per worker", y_format=_size),
        line_chart(blocks, title="Allocated blocks per worker"),
        line_chart(retained, title="Retained objects per request over time, by route"),
        "<h2>Routes</h2>",
        bar_chart(bars, title="Retained objects per request, by route"),
        "<table><thead><tr><th>route</th><th>leaking</th><th>requests</th><th>sampled</th>"
        "<th>objects/req</th><th>bytes/req</th><th>top retained types</th></tr></thead>"
        f"<tbody>{''.join(route_rows)}</tbody></table>",
    ]
    return _page("leakscope dashboard", "".join(body))


def _endpoint(environ: dict[str, Any]) -> str | None:
    """The Flask endpoint of a request (``"leaky.item"``), read as its response starts.

    Flask's request object is then in the environ (``werkzeug.request``, cleared when the
    request ends) with the URL rule it matched, so naming a request adds no hook to
    Flask's request path; a request that matched no rule (404, 405) is ``"<unmatched>"``.
    """
    request = environ.get("werkzeug.request")
    endpoint = getattr(getattr(request, "url_rule", None), "endpoint", None)
    if isinstance(endpoint, str) and endpoint:
        return endpoint
    if getattr(request, "routing_exception", None) is not None:
        return _UNMATCHED
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
        self._allow = _networks(allow)
        self._sample = sample
        self._directory = directory
        self._budget = budget
        self._lock = threading.Lock()
        self._last_take: dict[str, float] = {}
        self._snapshot: bytes | None = None
        self.middleware: Any = None
        if app is not None:
            self.init_app(app)

    # -- setup -----------------------------------------------------------------------------

    def init_app(self, app: Any) -> None:
        """Wrap ``app.wsgi_app`` (once), name routes by endpoint, register the blueprint."""
        flask = _flask()
        if not isinstance(app, flask.Flask):
            raise TypeError(f"init_app needs a Flask application, not {type(app).__name__}")
        if "leakscope" in app.extensions:
            raise ValueError("leakscope is already set up on this application")
        wsgi = app.wsgi_app
        if not isinstance(wsgi, LeakMiddleware):
            wsgi = LeakMiddleware(
                wsgi,
                sample=self._sample,
                budget=self._budget,
                directory=self._directory,
                route=_endpoint,
            )
            app.wsgi_app = wsgi
        elif wsgi._route_fn is None:
            wsgi._route_fn = _endpoint
        elif wsgi._route_fn is not _endpoint:
            wsgi._route_fn = _EndpointFirst(wsgi._route_fn)
        self.middleware = wsgi
        app.extensions["leakscope"] = self
        app.register_blueprint(self._blueprint(flask), url_prefix=self.prefix)

    # -- security --------------------------------------------------------------------------

    def _configured_token(self, flask: Any) -> str | None:
        token = self._token
        if token is None:
            value = flask.current_app.config.get("LEAKSCOPE_TOKEN")
            token = value if isinstance(value, str) and value else None
        if token is None:
            token = os.environ.get("LEAKSCOPE_TOKEN") or None
        return token

    @staticmethod
    def _cookie_value(token: str) -> str:
        return hmac.new(token.encode(), b"leakscope dashboard", hashlib.sha256).hexdigest()

    def _allowed(self, flask: Any) -> bool:
        if self._allow is None:
            return True
        try:
            address = ipaddress.ip_address(flask.request.remote_addr or "")
        except ValueError:
            return False
        return any(address in net for net in self._allow)

    def _check(self, flask: Any) -> Any:
        """``None`` when the request may proceed, else the refusal response."""
        token = self._configured_token(flask)
        if token is None:
            return self._plain(flask, "Not Found", 404)
        if not self._allowed(flask):
            return self._plain(flask, "Forbidden", 403)
        request = flask.request
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return None
        cookie = request.cookies.get(_COOKIE)
        if (
            request.endpoint == "leakscope.dashboard"
            and cookie
            and hmac.compare_digest(cookie.encode(), self._cookie_value(token).encode())
        ):
            return None
        if request.endpoint in {"leakscope.dashboard", "leakscope.login"}:
            if request.endpoint == "leakscope.login" and request.method == "POST":
                return None
            response = flask.Response(
                _login_page(flask.url_for("leakscope.login"), False),
                401,
                content_type="text/html; charset=utf-8",
            )
        else:
            response = self._plain(flask, "Unauthorized", 401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="leakscope"'
        return response

    @staticmethod
    def _plain(flask: Any, text: str, status: int) -> Any:
        response = flask.Response(text + "\n", status, content_type="text/plain; charset=utf-8")
        response.headers["Cache-Control"] = "no-store"
        return response

    def _rate_limited(self, flask: Any, what: str) -> Any:
        now = time.monotonic()
        with self._lock:
            last = self._last_take.get(what)
            if last is not None and now - last < _RATE_INTERVAL:
                wait = max(1, int(_RATE_INTERVAL - (now - last)) + 1)
                response = self._plain(flask, "Too Many Requests", 429)
                response.headers["Retry-After"] = str(wait)
                return response
            self._last_take[what] = now
        return None

    # -- views -----------------------------------------------------------------------------

    def _blueprint(self, flask: Any) -> Any:
        bp = flask.Blueprint("leakscope", __name__)
        scope = self

        def json_response(data: Any, status: int = 200) -> Any:
            body = json.dumps(data, separators=(",", ":"), allow_nan=False)
            response = flask.Response(body, status, content_type="application/json")
            response.headers["Cache-Control"] = "no-store"
            return response

        @bp.before_request  # type: ignore[untyped-decorator]
        def _guard() -> Any:
            return scope._check(flask)

        @bp.after_request  # type: ignore[untyped-decorator]
        def _headers(response: Any) -> Any:
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["Content-Security-Policy"] = (
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                "form-action 'self'; frame-ancestors 'none'"
            )
            response.headers["Cache-Control"] = "no-store"
            return response

        @bp.route("/", endpoint="dashboard", methods=_BOTH, strict_slashes=False)  # type: ignore[untyped-decorator]
        def dashboard() -> Any:
            workers = scope.middleware.workers()
            page = _dashboard(workers, _merge_routes(workers))
            return flask.Response(page, 200, content_type="text/html; charset=utf-8")

        @bp.route("/login", methods=_BOTH, endpoint="login")  # type: ignore[untyped-decorator]
        def login() -> Any:
            if flask.request.method == "GET":  # already authorized by the bearer token
                return flask.redirect(flask.url_for("leakscope.dashboard"), 303)
            token = scope._configured_token(flask) or ""
            given = flask.request.form.get("token", "")
            if not isinstance(given, str) or not hmac.compare_digest(
                given.encode(), token.encode()
            ):
                response = flask.Response(
                    _login_page(flask.url_for("leakscope.login"), True),
                    401,
                    content_type="text/html; charset=utf-8",
                )
                response.headers["WWW-Authenticate"] = 'Bearer realm="leakscope"'
                return response
            response = flask.redirect(flask.url_for("leakscope.dashboard"), 303)
            response.set_cookie(
                _COOKIE,
                scope._cookie_value(token),
                path=scope.prefix + "/",
                httponly=True,
                samesite="Strict",
                secure=flask.request.is_secure,
            )
            return response

        @bp.route("/api/status", methods=_BOTH, endpoint="status")  # type: ignore[untyped-decorator]
        def status() -> Any:
            return json_response({"workers": scope.middleware.workers()})

        @bp.route("/api/routes", methods=_BOTH, endpoint="routes")  # type: ignore[untyped-decorator]
        def routes() -> Any:
            return json_response({"routes": _merge_routes(scope.middleware.workers())})

        @bp.route("/api/timeline", methods=_BOTH, endpoint="timeline")  # type: ignore[untyped-decorator]
        def timeline() -> Any:
            return json_response(
                {
                    "workers": [
                        {"pid": w.get("pid"), "timeline": w.get("timeline") or []}
                        for w in scope.middleware.workers()
                    ]
                }
            )

        @bp.route("/api/growth", methods=_BOTH, endpoint="growth")  # type: ignore[untyped-decorator]
        def growth() -> Any:
            state = scope.middleware.status()
            args = flask.request.args
            if "start" not in args and "end" not in args:
                return json_response({"pid": state["pid"], "growth": state["growth"]})
            points = state["timeline"]
            try:
                start = int(args.get("start", 0))
                end = int(args.get("end", len(points) - 1))
            except ValueError:
                return json_response({"error": "start and end must be integers"}, 400)
            if (
                not points
                or not (-len(points) <= start < len(points))
                or not (-len(points) <= end < len(points))
            ):
                return json_response(
                    {"error": f"start and end must index the {len(points)} timeline points"},
                    400,
                )
            return json_response(
                {
                    "pid": state["pid"],
                    "start": start,
                    "end": end,
                    "growth": _growth_between(points, start, end),
                }
            )

        @bp.route("/api/cycles", methods=["GET", "POST"], endpoint="cycles")  # type: ignore[untyped-decorator]
        def cycles() -> Any:
            refused = scope._rate_limited(flask, "cycles")
            if refused is not None:
                return refused
            from leakscope.cycles import find_cycles

            report = find_cycles()
            return json_response(
                {
                    "pid": os.getpid(),
                    "garbage": report.garbage,
                    "collections": report.collections,
                    "total": report.total,
                    "uncollectable": list(report.uncollectable)[:_MAX_TYPES],
                    "cycles": [
                        {
                            "size": c.size,
                            "count": c.count,
                            "has_finalizer": c.has_finalizer,
                            "types": [{"type": t, "count": n} for t, n in c.types],
                        }
                        for c in report.cycles[:50]
                    ],
                }
            )

        @bp.route("/api/snapshot", methods=["GET", "POST"], endpoint="snapshot")  # type: ignore[untyped-decorator]
        def snapshot() -> Any:
            if flask.request.method == "GET":
                data = scope._snapshot
                if data is None:
                    return json_response({"error": "no snapshot taken in this worker"}, 404)
                response = flask.Response(data, 200, content_type="application/json")
                response.headers["Content-Disposition"] = (
                    f'attachment; filename="leakscope-{os.getpid()}.json"'
                )
                return response
            refused = scope._rate_limited(flask, "snapshot")
            if refused is not None:
                return refused
            from leakscope._snapshot import snapshot as take

            taken = take(memory=False).to_dict()
            body = json.dumps(taken, separators=(",", ":"), allow_nan=False)
            scope._snapshot = body.encode()
            return json_response(
                {"pid": os.getpid(), "taken": True, "objects": taken.get("objects")}, 201
            )

        @bp.route("/metrics", methods=_BOTH, endpoint="metrics")  # type: ignore[untyped-decorator]
        def metrics() -> Any:
            try:
                from leakscope.web.prometheus import exposition

                body, content_type = exposition()
            except MissingDependencyError:
                return scope._plain(flask, "Not Found", 404)
            return flask.Response(body, 200, content_type=content_type)

        return bp
