"""The ASGI middleware: the example Starlette service under a real ``uvicorn --workers 2``.

A real uvicorn serves ``examples/asgi_service`` on a free loopback port; a real HTTP client
(httpx) sends bounded batches of 8 concurrent requests to its leaking and clean routes and
reads leakscope's API as a user would.  The token and secret rules, WebSocket and
lifespan pass-through are checked on the same server, and unit tests drive the
middleware in process for what needs no server (naming, refusals).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support import PROJECT_ROOT, child_env

httpx = pytest.importorskip("httpx", reason="httpx is not installed")
pytest.importorskip("starlette", reason="starlette is not installed")
pytest.importorskip("uvicorn", reason="uvicorn is not installed")

from leakscope.asgi import LeakMiddleware, route_name  # noqa: E402

EXAMPLE = PROJECT_ROOT / "examples" / "asgi_service"
TOKEN = "asgi-test-token"
SECRET = "asgi-secret-value-never-shown"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A running ``uvicorn app:app`` of the example; ``get`` talks to it."""

    def __init__(self, tmp_path: Path, *, workers: int = 2, token: bool = True) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.state = tmp_path / "state"
        self.log = tmp_path / "uvicorn.log"
        extra = {"LEAKSCOPE_DIR": str(self.state), "APP_SECRET": SECRET}
        extra.update(LEAKSCOPE_SAMPLE="1", LEAKSCOPE_BUDGET="1")
        env = child_env(extra, EXAMPLE)
        if token:
            env["LEAKSCOPE_TOKEN"] = TOKEN
        else:
            env.pop("LEAKSCOPE_TOKEN", None)
        args = [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--workers", str(workers), "--log-level", "warning"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                args, cwd=EXAMPLE, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.base = f"http://127.0.0.1:{self.port}"
        self.bodies: list[bytes] = []

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(self.base + "/lifespan", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not answer\n" + self.output()
            time.sleep(0.05)

    def get(self, path: str, **kwargs: Any) -> Any:
        response = httpx.get(self.base + path, timeout=10, **kwargs)
        self.bodies.append(response.content + str(response.headers).encode())
        return response

    def api(self, name: str) -> Any:
        response = self.get(f"/_leakscope/api/{name}", headers=AUTH)
        assert response.status_code == 200, response.text[:200]
        return response.json()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            self.process.kill()
            self.process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


async def _batch(client: Any, start: int) -> None:
    """8 requests in flight at once: 4 to the leaking route, 4 to the clean one."""
    paths = [f"/{kind}/items/{start + i}" for i in range(4) for kind in ("leaky", "clean")]
    responses = await asyncio.gather(*(client.get(p) for p in paths))
    assert [r.status_code for r in responses] == [200] * 8


async def _drive(server: Server, batches: int) -> None:
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    async with httpx.AsyncClient(base_url=server.base, limits=limits, timeout=10) as client:
        for b in range(batches):
            await _batch(client, b * 4)


LEAKY = "GET /leaky/items/{item_id}"
CLEAN = "GET /clean/items/{item_id}"


@pytest.mark.slow
@pytest.mark.integration
def test_uvicorn_two_workers_name_the_leaking_route_under_8_concurrent_requests(
    server: Server,
) -> None:
    found = None
    pids: set[int] = set()
    routes: dict[str, Any] = {}
    for round_ in range(20):  # at most 20 x 25 batches of 8 requests
        asyncio.run(_drive(server, 25))
        pids = {int(w["pid"]) for w in server.api("status")["workers"] if w.get("alive", True)}
        routes = {r["route"]: r for r in server.api("routes")["routes"]}
        assert routes.get(CLEAN, {}).get("leaking") is not True, routes
        leaky = routes.get(LEAKY, {})
        if leaky.get("leaking") and len(pids) == 2 and round_ >= 1:
            found = leaky
            break
    assert found is not None, (pids, routes)
    assert found["top_types"][0]["type"] == "app.Item", found
    holders = {c["container"]: c for c in found["containers"]}
    assert holders["app:_CACHE"]["path"] == "sys.modules['app']._CACHE[...]", holders
    assert holders["app:_CACHE"]["kind"] == "dict"
    clean = routes[CLEAN]
    assert clean["leaking"] is False and clean["sampled"] >= 8, clean
    # leakscope's own endpoints are not the application's routes.
    assert not any("_leakscope" in name for name in routes), set(routes)


@pytest.mark.slow
@pytest.mark.integration
def test_token_rules_and_no_secrets(server: Server, tmp_path: Path) -> None:
    assert server.get("/_leakscope/api/status").status_code == 401
    wrong = server.get("/_leakscope/api/status", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "workers" not in wrong.text
    assert server.get("/_leakscope/").status_code == 401  # the login page, no data
    asyncio.run(_drive(server, 3))
    for name in ("status", "routes", "timeline", "growth"):
        server.api(name)
    page = server.get("/_leakscope/", headers=AUTH)
    assert page.status_code == 200 and "leakscope dashboard" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    everything = b"".join(server.bodies)
    assert SECRET.encode() not in everything and TOKEN.encode() not in everything
    assert b" object at 0x" not in everything

    # Without LEAKSCOPE_TOKEN every endpoint is a 404, with or without a bearer token.
    off = Server(tmp_path / "off", workers=1, token=False)
    try:
        off.wait_ready()
        for path in ("/_leakscope/", "/_leakscope/api/status", "/_leakscope/metrics"):
            assert off.get(path).status_code == 404
            assert off.get(path, headers=AUTH).status_code == 404
    finally:
        off.stop()


@pytest.mark.slow
@pytest.mark.integration
def test_websocket_and_lifespan_pass_through(server: Server) -> None:
    from websockets.sync.client import connect

    assert server.get("/lifespan").json()["started"] is True  # lifespan reached the app
    with connect(f"ws://127.0.0.1:{server.port}/ws/echo", open_timeout=10) as ws:
        for text in ("one", "two"):
            ws.send(text)
            assert ws.recv(timeout=10) == f"echo: {text}"
    # The closed WebSocket was counted under its route by the worker that served it.
    deadline = time.monotonic() + 20
    while True:
        names = {r["route"] for w in server.api("status")["workers"] for r in w["routes"]}
        if "WS /ws/echo" in names:
            break
        assert time.monotonic() < deadline, names
        asyncio.run(_drive(server, 1))  # a request after its publishing interval publishes


# -- in process: what needs no server ------------------------------------------------------


def _call(app: Any, scope: dict[str, Any], body: bytes = b"") -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def _scope(path: str, method: str = "GET", **extra: Any) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": [], **extra}


def test_route_names() -> None:
    assert route_name(_scope("/nope/3"), 404) == "<unmatched>"
    assert route_name(_scope("/a/42"), 200) == "GET /a/{id}"
    assert route_name({"type": "websocket", "path": "/ws/9"}, None) == "WS /ws/{id}"
    assert route_name(_scope("/x", **{"leakscope.route": "mine"}), 200) == "mine"


def test_lifespan_and_other_scopes_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    mw = LeakMiddleware(app)
    scope = {"type": "lifespan"}

    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: Any) -> None:
        pass

    asyncio.run(mw(scope, receive, send))
    assert seen == [(scope, receive, send)]  # the very objects, not wrappers
    assert mw.status()["requests"] == 0


def test_endpoints_refusals_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not see leakscope's endpoints")

    monkeypatch.delenv("LEAKSCOPE_TOKEN", raising=False)
    off = LeakMiddleware(app)
    assert _call(off, _scope("/_leakscope/api/status"))[0] == 404
    on = LeakMiddleware(app, token="t0k")
    assert _call(on, _scope("/_leakscope/api/status"))[0] == 401
    auth = [(b"authorization", b"Bearer t0k")]
    status, body = _call(on, _scope("/_leakscope/api/status", headers=auth))
    assert status == 200 and json.loads(body)["workers"][0]["pid"] == os.getpid()
    # The login form sets the dashboard cookie; a wrong token gets 401.
    login = _scope("/_leakscope/login", method="POST")
    assert _call(on, login, b"token=bad")[0] == 401
    assert _call(on, login, b"token=t0k")[0] == 303
    assert _call(on, login, b"x" * 10_000)[0] == 413


def test_a_raising_app_is_counted_not_measured() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    mw = LeakMiddleware(app, budget=1.0)
    with pytest.raises(RuntimeError):
        _call(mw, _scope("/boom"))
    state = mw.status()
    assert state["requests"] == 1 and state["sampled"] == 0
    assert mw.monitor.in_flight() == 0
