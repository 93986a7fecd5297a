"""leakscope.web.flask with Flask's test client: security, JSON shapes, dashboard, a real leak."""

from __future__ import annotations

import json
from typing import Any

import pytest

flask = pytest.importorskip("flask", reason="flask is not installed")

from leakscope.web.flask import LeakScope  # noqa: E402

TOKEN = "t0ken-for-tests"
SECRET = "s3cret-value-that-must-never-leak-out"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API = ["status", "routes", "timeline", "growth", "cycles", "snapshot"]


class Record:
    """What the leaky endpoint keeps."""

    def __init__(self, n: int) -> None:
        self.n = n


# The leak: a module-level cache that is never trimmed (as in examples/flask_service).
KEPT: dict[int, Record] = {}


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker directory or token from the environment the tests run in."""
    monkeypatch.delenv("LEAKSCOPE_DIR", raising=False)
    monkeypatch.delenv("LEAKSCOPE_TOKEN", raising=False)


def make_app(**options: Any) -> tuple[Any, LeakScope]:
    app = flask.Flask("leakscope_test_app")
    app.config["SECRET_KEY"] = SECRET
    leaky = flask.Blueprint("leaky", "leaky")
    clean = flask.Blueprint("clean", "clean")

    @leaky.get("/leaky/<int:n>")
    def item(n: int) -> str:
        KEPT[len(KEPT)] = Record(n)
        return "ok"

    @clean.get("/clean/<int:n>")
    def clean_item(n: int) -> str:
        return str(Record(n).n)

    app.register_blueprint(leaky)
    app.register_blueprint(clean)
    options.setdefault("token", TOKEN)
    scope = LeakScope(app, **options)
    return app, scope


def fetch(client: Any, method: str, path: str, **kwargs: Any) -> Any:
    # buffered: the test client reads and closes the response inside Werkzeug, as a server
    # does; unbuffered, it would still hold the response's iterator in its own frames when
    # closing it, and every route would seem to retain that iterator, its list and a tuple.
    response = client.open(path, method=method, buffered=True, **kwargs)
    response.close()  # the middleware measures a sampled request when its response is closed
    return response


def test_disabled_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEAKSCOPE_TOKEN", raising=False)
    app, _ = make_app(token=None)
    client = app.test_client()
    paths = ["/_leakscope", "/_leakscope/", "/_leakscope/metrics", "/_leakscope/login"]
    for path in [*paths, *(f"/_leakscope/api/{p}" for p in API)]:
        assert fetch(client, "GET", path, headers=AUTH).status_code == 404, path
        assert fetch(client, "POST", path, headers=AUTH).status_code == 404, path
    assert fetch(client, "POST", "/_leakscope/login", data={"token": ""}).status_code == 404
    assert fetch(client, "GET", "/clean/1").status_code == 200


def test_token_from_config_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEAKSCOPE_TOKEN", raising=False)
    app, _ = make_app(token=None)
    app.config["LEAKSCOPE_TOKEN"] = TOKEN
    assert (
        fetch(app.test_client(), "GET", "/_leakscope/api/status", headers=AUTH).status_code == 200
    )
    monkeypatch.setenv("LEAKSCOPE_TOKEN", "from-env")
    app, _ = make_app(token=None)
    client = app.test_client()
    assert fetch(client, "GET", "/_leakscope/api/status", headers=AUTH).status_code == 401
    ok = fetch(
        client, "GET", "/_leakscope/api/status", headers={"Authorization": "Bearer from-env"}
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
    ids=["missing", "wrong", "no-scheme", "basic"],
)
def test_wrong_or_missing_token_is_401_without_data(headers: dict[str, str]) -> None:
    app, _ = make_app()
    client = app.test_client()
    fetch(client, "GET", "/leaky/1")
    for path in ["/_leakscope/", *(f"/_leakscope/api/{p}" for p in API), "/_leakscope/metrics"]:
        response = fetch(client, "GET", path, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body = response.get_data(as_text=True)
        assert "leaky" not in body and "pid" not in body and "<svg" not in body, path
    assert fetch(client, "POST", "/_leakscope/api/snapshot", headers=headers).status_code == 401


def test_json_shapes_with_the_token() -> None:
    app, scope = make_app(sample=1, budget=1)
    client = app.test_client()
    for i in range(5):
        fetch(client, "GET", f"/clean/{i}")
    status = fetch(client, "GET", "/_leakscope/api/status", headers=AUTH)
    assert status.status_code == 200 and status.content_type == "application/json"
    workers = status.get_json()["workers"]
    assert [w["pid"] for w in workers] == [scope.middleware.status()["pid"]]
    assert {"pid", "requests", "rss", "growth", "routes", "timeline"} <= set(workers[0])
    routes = fetch(client, "GET", "/_leakscope/api/routes", headers=AUTH).get_json()["routes"]
    row = next(r for r in routes if r["route"] == "clean.clean_item")
    assert row["requests"] == 5 and row["leaking"] is False
    timeline = fetch(client, "GET", "/_leakscope/api/timeline", headers=AUTH).get_json()
    assert isinstance(timeline["workers"][0]["timeline"], list)
    growth = fetch(client, "GET", "/_leakscope/api/growth", headers=AUTH).get_json()
    assert {"rss", "blocks", "objects", "types"} <= set(growth["growth"])
    # The first request took the first census: the timeline has a point to compare.
    points = scope.middleware.status()["timeline"]
    assert len(points) >= 1
    between = fetch(client, "GET", "/_leakscope/api/growth?start=0&end=-1", headers=AUTH)
    assert between.status_code == 200
    assert (
        between.get_json()["growth"]
        == {
            "rss": 0,
            "blocks": 0,
            "objects": 0,
            "types": [],
            "seconds": 0.0,
        }
        or len(points) > 1
    )
    assert (
        fetch(client, "GET", "/_leakscope/api/growth?start=0&end=99", headers=AUTH).status_code
        == 400
    )
    bad = fetch(client, "GET", "/_leakscope/api/growth?start=x", headers=AUTH)
    assert bad.status_code == 400
    cycles = fetch(client, "POST", "/_leakscope/api/cycles", headers=AUTH).get_json()
    assert {"garbage", "cycles", "collections", "total", "uncollectable"} <= set(cycles)
    assert isinstance(cycles["cycles"], list)
    assert all(set(c) == {"size", "count", "has_finalizer", "types"} for c in cycles["cycles"])


def test_metrics_with_prometheus_client() -> None:
    pytest.importorskip("prometheus_client")
    app, _ = make_app(sample=1, budget=1)
    client = app.test_client()
    fetch(client, "GET", "/clean/1")
    metrics = fetch(client, "GET", "/_leakscope/metrics", headers=AUTH)
    assert metrics.status_code == 200
    assert metrics.content_type.startswith("text/plain")
    assert b"leakscope_worker_rss_bytes" in metrics.data
    assert b'route="clean.clean_item"' in metrics.data


def test_cycles_lists_a_cycle_of_garbage() -> None:
    import gc

    class Node:
        def __init__(self) -> None:
            self.other: Any = None

    # No request sampled (the first would be the 1000th): a sample's collection of the
    # young generations before the request would free the cycle before the endpoint runs.
    app, _ = make_app(sample=0.001)
    client = app.test_client()
    gc.collect()
    gc.disable()  # no automatic collection frees the cycle before the endpoint looks
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        cycles = fetch(client, "POST", "/_leakscope/api/cycles", headers=AUTH).get_json()
    finally:
        gc.enable()
    assert cycles["garbage"] >= 2, cycles
    assert any(any(t["type"].endswith("Node") for t in c["types"]) for c in cycles["cycles"]), (
        cycles
    )


def test_snapshot_is_post_only_to_take_and_rate_limited() -> None:
    app, _ = make_app()
    client = app.test_client()
    assert fetch(client, "GET", "/_leakscope/api/snapshot", headers=AUTH).status_code == 404
    taken = fetch(client, "POST", "/_leakscope/api/snapshot", headers=AUTH)
    assert taken.status_code == 201
    again = fetch(client, "POST", "/_leakscope/api/snapshot", headers=AUTH)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 1
    download = fetch(client, "GET", "/_leakscope/api/snapshot", headers=AUTH)
    assert download.status_code == 200
    from leakscope import Snapshot

    assert Snapshot.from_dict(json.loads(download.data)).pid == taken.get_json()["pid"]
    assert fetch(client, "GET", "/_leakscope/api/cycles", headers=AUTH).status_code == 200
    assert fetch(client, "GET", "/_leakscope/api/cycles", headers=AUTH).status_code == 429


def test_allow_list() -> None:
    app, _ = make_app(allow=["10.0.0.0/8"])
    client = app.test_client()
    refused = fetch(client, "GET", "/_leakscope/api/status", headers=AUTH)
    assert refused.status_code == 403 and b"pid" not in refused.data
    inside = {"REMOTE_ADDR": "10.1.2.3"}
    ok = fetch(client, "GET", "/_leakscope/api/status", headers=AUTH, environ_base=inside)
    assert ok.status_code == 200
    with pytest.raises(ValueError, match="not an IP address"):
        make_app(allow=["nonsense"])


def test_dashboard_renders_charts_and_login_cookie() -> None:
    app, _ = make_app(sample=1, budget=1)
    client = app.test_client()
    for i in range(3):
        fetch(client, "GET", f"/clean/{i}")
    page = fetch(client, "GET", "/_leakscope/", headers=AUTH)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<svg" in text and "clean.clean_item" in text and "<script" not in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    login = fetch(client, "GET", "/_leakscope/")
    assert login.status_code == 401 and "<form" in login.get_data(as_text=True)
    assert "<svg" not in login.get_data(as_text=True)
    wrong = fetch(client, "POST", "/_leakscope/login", data={"token": "nope"})
    assert wrong.status_code == 401
    signed = fetch(client, "POST", "/_leakscope/login", data={"token": TOKEN})
    assert signed.status_code == 303
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    assert fetch(client, "GET", "/_leakscope/").status_code == 200
    # the cookie opens the page only, never the API
    assert fetch(client, "GET", "/_leakscope/api/status").status_code == 401


def test_dashboard_charts_what_routes_retained_over_time() -> None:
    from leakscope.web.middleware import LeakMiddleware

    app = flask.Flask("charted")

    @app.get("/keep/<int:n>")
    def keep(n: int) -> str:
        KEPT[-1 - len(KEPT)] = Record(n)
        return "ok"

    # A census with every request: each timeline point holds what the route retained.
    app.wsgi_app = LeakMiddleware(app.wsgi_app, sample=1.0, budget=1.0, interval=1e-9)
    LeakScope(app, token=TOKEN)
    client = app.test_client()
    for i in range(12):
        fetch(client, "GET", f"/keep/{i}")
    timeline = fetch(client, "GET", "/_leakscope/api/timeline", headers=AUTH).get_json()
    (worker,) = timeline["workers"]
    assert worker["timeline"][-1]["routes"]["keep"]["objects"] >= 1
    page = fetch(client, "GET", "/_leakscope/", headers=AUTH).get_data(as_text=True)
    chart = page.split("Retained objects per request over time, by route", 1)[1]
    assert "keep" in chart.split("</svg>", 1)[0]


def test_secret_key_never_appears_in_any_response() -> None:
    app, _ = make_app(sample=1, budget=1)
    client = app.test_client()
    for i in range(10):
        fetch(client, "GET", f"/leaky/{i}")
    fetch(client, "POST", "/_leakscope/api/snapshot", headers=AUTH)
    paths = ["/_leakscope/", "/_leakscope/metrics", *(f"/_leakscope/api/{p}" for p in API)]
    seen = 0
    for headers in ({}, AUTH):
        for method in ("GET", "POST"):
            for path in paths:
                response = fetch(client, method, path, headers=headers)
                seen += len(response.data)
                assert SECRET.encode() not in response.data, (method, path)
                assert SECRET not in str(response.headers), (method, path)
    assert seen > 10_000


def test_leaking_route_is_named_with_its_type() -> None:
    app, _ = make_app(sample=1, budget=1)
    client = app.test_client()
    for i in range(40):
        fetch(client, "GET", f"/leaky/{i}")
        fetch(client, "GET", f"/clean/{i}")
    routes = fetch(client, "GET", "/_leakscope/api/routes", headers=AUTH).get_json()["routes"]
    by_name = {r["route"]: r for r in routes}
    leaky = by_name["leaky.item"]
    assert leaky["leaking"] is True, leaky
    assert any(t["type"].endswith("Record") for t in leaky["top_types"]), leaky
    clean = by_name["clean.clean_item"]
    assert clean["leaking"] is False and clean["retained_objects_per_request"] < 0.5, clean
    page = fetch(client, "GET", "/_leakscope/", headers=AUTH).get_data(as_text=True)
    assert "leaky.item" in page


def test_routes_are_named_by_endpoint_and_unmatched_paths_share_one_row() -> None:
    app, scope = make_app(sample=1, budget=1)
    client = app.test_client()
    for i in range(3):
        assert fetch(client, "GET", f"/clean/{i}").status_code == 200
        assert fetch(client, "GET", f"/no/such/page/{i}").status_code == 404
    assert fetch(client, "POST", "/clean/1").status_code == 405
    requests = {r["route"]: r["requests"] for r in scope.middleware.status()["routes"]}
    assert requests == {"clean.clean_item": 3, "<unmatched>": 4}


def test_a_middleware_wrapped_before_keeps_its_route_function_as_a_fallback() -> None:
    from leakscope.web.middleware import LeakMiddleware

    app = flask.Flask("prewrapped")

    @app.get("/named")
    def named() -> str:
        return "ok"

    def outer(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/outside":  # answered before Flask sees it
            start_response("200 OK", [])
            return [b"ok"]
        return inner(environ, start_response)

    inner = app.wsgi_app
    middleware = LeakMiddleware(outer, sample=1.0, route=lambda environ: "by-function")
    app.wsgi_app = middleware
    scope = LeakScope(app, token=TOKEN)
    assert scope.middleware is middleware
    client = app.test_client()
    fetch(client, "GET", "/named")
    fetch(client, "GET", "/outside")
    assert {r["route"] for r in middleware.status()["routes"]} == {"named", "by-function"}


def test_init_app_once_and_bad_arguments() -> None:
    app, scope = make_app()
    with pytest.raises(ValueError, match="already"):
        scope.init_app(app)
    with pytest.raises(ValueError, match="prefix"):
        LeakScope(prefix="nope")
    with pytest.raises(TypeError):
        LeakScope().init_app(object())
    other = LeakScope(prefix="/diag/", token=TOKEN)
    app2 = flask.Flask("second")
    other.init_app(app2)
    assert fetch(app2.test_client(), "GET", "/diag/api/status", headers=AUTH).status_code == 200


@pytest.mark.slow
def test_missing_flask_names_the_extra() -> None:
    from _support import run_python

    out = run_python(
        """
        import sys
        sys.modules["flask"] = None  # as if Flask were not installed
        import leakscope.web.flask
        try:
            leakscope.web.flask.LeakScope().init_app(object())
        except leakscope.MissingDependencyError as e:
            print(e.package, e.extra)
        """
    )
    assert out.split() == ["flask", "flask"]
