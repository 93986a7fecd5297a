"""The example Flask service under a real ``gunicorn -w 2``: which route leaks, seen live.

Starts ``examples/flask_service`` with its ``gunicorn.conf.py`` on a free port, sends
a bounded number of requests to its leaky and clean routes, and reads leakscope's
API and dashboard as a user would (bearer token), then stops gunicorn and loads the
workers' exit snapshots.
"""

from __future__ import annotations

import http.client
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
from _support import CHROMIUM, CHROMIUM_FLAGS, PROJECT_ROOT, require_browser

from leakscope import Snapshot

pytest.importorskip("flask", reason="flask is not installed")
pytest.importorskip("gunicorn", reason="gunicorn is not installed")

EXAMPLE = PROJECT_ROOT / "examples" / "flask_service"
TOKEN = "web-service-test-token"
SECRET = "web-service-secret-key-never-shown"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """A running gunicorn of the example app; ``request`` talks to it."""

    def __init__(self, tmp_path: Path, defaults: bool = False) -> None:
        self.state = tmp_path / "state"
        self.port = free_port()
        self.log = tmp_path / "gunicorn.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        env.update(LEAKSCOPE_TOKEN=TOKEN, LEAKSCOPE_DIR=str(self.state), SECRET_KEY=SECRET)
        if defaults:
            env.pop("LEAKSCOPE_SAMPLE", None)
            env.pop("LEAKSCOPE_BUDGET", None)
        else:
            env.update(LEAKSCOPE_SAMPLE="1", LEAKSCOPE_BUDGET="1")
        args = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", "2"]
        args += ["-b", f"127.0.0.1:{self.port}", "--graceful-timeout", "5", "app:app"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                args, cwd=EXAMPLE, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.responses: list[bytes] = []

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, deadline: float) -> None:
        while True:
            assert self.process.poll() is None, self.output()
            try:
                if self.request("GET", "/clean/items/0")[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer\n" + self.output()
            time.sleep(0.05)

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            body = response.read()
            raw_headers = str(response.getheaders())
        finally:
            conn.close()
        self.responses.append(body + raw_headers.encode())
        return response.status, body, raw_headers

    def api(self, name: str) -> Any:
        status, body, _ = self.request("GET", f"/_leakscope/api/{name}", AUTH)
        assert status == 200, body[:200]
        return json.loads(body)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            self.process.kill()
            self.process.wait()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    server = Service(tmp_path)
    try:
        server.wait_ready(time.monotonic() + 30)
        yield server
    finally:
        server.stop()


@pytest.fixture
def default_service(tmp_path: Path) -> Iterator[Service]:
    """The example at default settings: LEAKSCOPE_SAMPLE and LEAKSCOPE_BUDGET unset."""
    server = Service(tmp_path, defaults=True)
    try:
        server.wait_ready(time.monotonic() + 30)
        yield server
    finally:
        server.stop()


ITEM_LINE = next(
    i
    for i, line in enumerate((EXAMPLE / "app.py").read_text().splitlines(), 1)
    if "_CACHE[key] = Item(item_id)" in line
)


@pytest.mark.slow
@pytest.mark.integration
def test_defaults_name_the_leak_its_type_holder_and_line_within_400_requests(
    default_service: Service,
) -> None:
    # The README's loop, sequential, on the same cores as the server; the routes are read
    # every 25 requests per route, as a user refreshing the dashboard would.
    found = None
    for i in range(1, 401):
        assert default_service.request("GET", f"/leaky/items/{i}")[0] == 200
        assert default_service.request("GET", f"/clean/items/{i}")[0] == 200
        if i % 25:
            continue
        routes = {r["route"]: r for r in default_service.api("routes")["routes"]}
        assert routes.get("clean.clean_item", {}).get("leaking") is not True, routes
        leaky = routes.get("leaky.item", {})
        holders = {c["container"]: c for c in leaky.get("containers", [])}
        if leaky.get("leaking") and "app:_CACHE" in holders and found is None:
            found = i, leaky, holders["app:_CACHE"]
    assert found is not None, "leaky.item not named within 400 requests per route"
    requests, leaky, holder = found
    assert leaky["top_types"][0]["type"] == "app.Item", leaky
    assert holder["path"] == "sys.modules['app']._CACHE[...]" and holder["kind"] == "dict"
    assert holder["hint"].startswith("an unbounded cache")
    assert requests <= 400
    # By the end of the loop, the line that allocated the leaked items is known too.
    final = {r["route"]: r for r in default_service.api("routes")["routes"]}
    sites = {t["type"]: t.get("site") for t in final["leaky.item"]["top_types"]}
    assert sites["app.Item"] == f"app.py:{ITEM_LINE}", sites
    # leakscope's own endpoints (the routes read above) are not the application's routes.
    assert not any(name.startswith("leakscope.") for name in final), set(final)
    clean = final["clean.clean_item"]
    assert clean["leaking"] is False and clean["sampled"] >= 8, clean


def _routes_ready(service: Service) -> tuple[set[int], dict[str, dict[str, Any]]]:
    pids = {int(w["pid"]) for w in service.api("status")["workers"] if w.get("alive", True)}
    routes = {r["route"]: r for r in service.api("routes")["routes"]}
    return pids, routes


@pytest.mark.slow
@pytest.mark.integration
def test_gunicorn_two_workers_find_the_leaking_route(service: Service) -> None:
    deadline = time.monotonic() + 40
    pids: set[int] = set()
    routes: dict[str, dict[str, Any]] = {}
    sent = 0
    while sent < 800:
        for i in range(50):
            assert service.request("GET", f"/leaky/items/{sent + i}")[0] == 200
            assert service.request("GET", f"/clean/items/{sent + i}")[0] == 200
        sent += 50
        pids, routes = _routes_ready(service)
        leaky = routes.get("leaky.item")
        if len(pids) == 2 and leaky is not None and leaky["leaking"] and sent >= 200:
            break
        assert time.monotonic() < deadline, (sent, pids, routes)
    assert len(pids) == 2, pids
    leaky = routes["leaky.item"]
    assert leaky["leaking"] is True, leaky
    assert any(t["type"].endswith("Item") for t in leaky["top_types"]), leaky
    clean = routes["clean.clean_item"]
    assert clean["leaking"] is False, clean
    # Sampled often enough to be judged (the states other workers publish lag a little).
    assert clean["sampled"] >= 8, clean

    # Without the token: 401 and nothing of the data.
    for path in ("/_leakscope/api/status", "/_leakscope/api/routes", "/_leakscope/"):
        status, body, headers = service.request("GET", path)
        assert status == 401, path
        assert b"leaky" not in body and b"pid" not in body and "Bearer" in headers
    status, body, _ = service.request(
        "GET", "/_leakscope/api/status", {"Authorization": "Bearer no"}
    )
    assert status == 401 and b"workers" not in body

    # Every endpoint with the token; the SECRET_KEY never appears anywhere.
    for path in ("/", "/metrics", "/api/timeline", "/api/growth", "/api/cycles"):
        assert service.request("GET", "/_leakscope" + path, AUTH)[0] == 200, path
    assert service.request("POST", "/_leakscope/api/snapshot", AUTH)[0] in (201, 429)
    assert not any(SECRET.encode() in body for body in service.responses)

    service.stop()
    assert service.process.returncode == 0, service.output()
    exits = sorted(service.state.glob("exit-*.json"))
    assert {int(p.stem.split("-")[1]) for p in exits} >= pids, (exits, pids)
    for path in exits:
        assert Snapshot.load(path).pid == int(path.stem.split("-")[1])


@pytest.mark.slow
@pytest.mark.integration
def test_dashboard_in_headless_chromium(service: Service) -> None:
    sync_api = require_browser()

    deadline = time.monotonic() + 30
    pids: set[int] = set()
    leaking = False
    sent = 0
    while len(pids) < 2 or not leaking:
        for i in range(20):
            service.request("GET", f"/leaky/items/{sent + i}")
            service.request("GET", f"/clean/items/{sent + i}")
        sent += 20
        pids = {int(w["pid"]) for w in service.api("status")["workers"]}
        leaking = any(r["leaking"] for r in service.api("routes")["routes"])
        assert time.monotonic() < deadline, pids
    url = f"http://127.0.0.1:{service.port}/_leakscope/"
    with sync_api.sync_playwright() as p:
        # launch() gives Chromium a fresh, empty temporary profile of its own.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url)
            # The login page has the report's look: a card, styled by the shared stylesheet.
            card = page.locator("section.card.login")
            assert card.is_visible()
            radius = card.evaluate("e => getComputedStyle(e).borderTopLeftRadius")
            assert radius == "10px", radius
            shots = os.environ.get("LEAKSCOPE_SCREENSHOTS")  # for the web guide's images
            if shots:
                page.screenshot(path=f"{shots}/dashboard-login.png")
            # The login form: the token once, then the page itself (cookie).
            page.fill("input[name=token]", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("svg")
            if shots:
                page.set_viewport_size({"width": 1200, "height": 900})
                page.screenshot(path=f"{shots}/dashboard.png", full_page=True)
            # The verdict badge, a card for the leaking route with its holder and hint.
            assert page.inner_text("#verdict").strip() == "LEAK"
            leak = page.locator("#leaks .route-leak").first
            assert "leaky.item" in leak.inner_text() and "app.Item" in leak.inner_text()
            assert "sys.modules['app']._CACHE[...]" in leak.inner_text()
            assert "unbounded cache" in leak.inner_text()
            badge = page.locator("#verdict .badge")
            colour = badge.evaluate("e => getComputedStyle(e).backgroundColor")
            assert colour not in ("rgba(0, 0, 0, 0)", "transparent"), colour
            text = page.inner_text("body")
            for pid in pids:
                assert str(pid) in text, (pid, text[:500])
            assert page.locator("svg").count() >= 3
            assert page.locator("tr.worker").count() >= 2
            assert page.locator("svg.ls-line").first.is_visible()
            assert SECRET not in page.content()
            origin = f"http://127.0.0.1:{service.port}/"
            assert requests and all(u.startswith(origin) for u in requests), requests
        finally:
            browser.close()


PROMETHEUS = Path("/usr/bin/prometheus")  # Debian's package; .ci/run installs it
RULES = EXAMPLE / "prometheus" / "leakscope-rules.yml"
GRAFANA = EXAMPLE / "prometheus" / "grafana-dashboard.json"


class Prometheus:
    """A real Prometheus on loopback scraping the example's /_leakscope/metrics every second."""

    def __init__(self, tmp_path: Path, target_port: int) -> None:
        self.port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{json.dumps(str(RULES))}]\n"
            "scrape_configs:\n"
            "  - job_name: flask_service\n"
            "    metrics_path: /_leakscope/metrics\n"
            f"    authorization: {{type: Bearer, credentials: {TOKEN}}}\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
        )
        self.log = tmp_path / "prometheus.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    str(PROMETHEUS),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def get(self, path: str) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def query(self, expr: str) -> list[dict[str, Any]]:
        from urllib.parse import quote

        status, body = self.get("/api/v1/query?query=" + quote(expr))
        data = json.loads(body)
        assert status == 200 and data["status"] == "success", (expr, body[:300])
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def wait_ready(self, deadline: float) -> None:
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if self.get("/-/ready")[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            self.process.kill()
            self.process.wait()


@pytest.mark.slow
@pytest.mark.integration
def test_a_real_prometheus_alert_selects_the_leaking_route_not_the_clean_one(
    default_service: Service, tmp_path: Path
) -> None:
    if not PROMETHEUS.exists():
        pytest.skip(f"no Prometheus at {PROMETHEUS}")
    yaml = pytest.importorskip("yaml")
    rules = {r["alert"]: r["expr"] for r in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]}
    prometheus = Prometheus(tmp_path, default_service.port)
    try:
        deadline = time.monotonic() + 90
        prometheus.wait_ready(deadline)
        # Both rules load and evaluate in a real Prometheus.
        status, body = prometheus.get("/api/v1/rules")
        assert status == 200, body[:300]
        loaded = {r["name"]: r for g in json.loads(body)["data"]["groups"] for r in g["rules"]}
        assert set(loaded) == set(rules), loaded
        assert all(r["health"] in ("ok", "unknown") for r in loaded.values()), loaded
        selected: set[str] = set()
        sent = 0
        while "leaky.item" not in selected:
            assert time.monotonic() < deadline, (
                selected,
                prometheus.query("leakscope_route_leaking"),
            )
            for i in range(25):
                assert default_service.request("GET", f"/leaky/items/{sent + i}")[0] == 200
                assert default_service.request("GET", f"/clean/items/{sent + i}")[0] == 200
            sent += 25
            time.sleep(0.5)
            result = prometheus.query(rules["LeakscopeRouteRetaining"])
            selected = {r["metric"].get("route", "") for r in result}
            assert "clean.clean_item" not in selected, result
        # Every worker is scraped through whichever one answers, each once.
        pids = {r["metric"]["pid"] for r in prometheus.query("leakscope_worker_rss_bytes")}
        workers = {str(w["pid"]) for w in default_service.api("status")["workers"] if w["alive"]}
        assert pids <= workers and len(pids) >= 1, (pids, workers)
        clean = prometheus.query('leakscope_route_leaking{route="clean.clean_item"}')
        assert clean and all(r["value"][1] == "0" for r in clean), clean
        prometheus.query(rules["LeakscopeNativeMemoryGrowth"])  # evaluates (query() checks)
        # The Grafana dashboard's queries are valid PromQL, and the per-route one has data.
        panels = json.loads(GRAFANA.read_text())["panels"]
        for panel in panels:
            for target in panel["targets"]:
                expr = target["expr"].replace("$__rate_interval", "30s")
                prometheus.query(expr)  # a syntax error fails in query()
        per_request = next(p for p in panels if p["title"].startswith("Retained objects"))
        rows = prometheus.query(
            per_request["targets"][0]["expr"].replace("$__rate_interval", "30s")
        )
        by_route = {r["metric"]["route"]: float(r["value"][1]) for r in rows}
        assert by_route.get("leaky.item", 0) >= 1 and by_route.get("clean.clean_item", 0) < 0.5, (
            by_route
        )
    finally:
        prometheus.stop()
