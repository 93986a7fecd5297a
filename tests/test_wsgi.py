"""LeakMiddleware driven in-process with wsgiref testing environs (and a fork in a subprocess)."""

from __future__ import annotations

import contextvars
import gc
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from _support import run_python_json

from leakscope._env import DEFAULT_BUDGET, DEFAULT_REQUEST_SAMPLE
from leakscope.web import sampler, timeline
from leakscope.web.budget import INITIAL_CREDIT
from leakscope.web.middleware import LeakMiddleware, route_template
from leakscope.web.sampler import Containers, Sampler

STATUS_KEYS = {
    "pid",
    "started",
    "updated",
    "python",
    "requests",
    "sampled",
    "alive",
    "rss",
    "blocks",
    "objects",
    "growth",
    "routes",
    "timeline",
}
ROUTE_KEYS = {
    "route",
    "requests",
    "sampled",
    "retained_objects_per_request",
    "retained_bytes_per_request",
    "top_types",
    "leaking",
}


class Order:
    """What the leaking route keeps forever."""

    def __init__(self, n: int) -> None:
        self.n = n


class Entry:
    """What the cached route keeps in a bounded cache."""

    def __init__(self, n: int) -> None:
        self.n = n


LEAKED: list[Order] = []
STORED: dict[int, dict[str, Any]] = {}
CACHE: OrderedDict[int, Entry] = OrderedDict()


class Boom(Exception):
    pass


class Held:
    """An object the application puts in the environ: must not outlive the request."""


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ["PATH_INFO"]
    environ["app.held"] = Held()
    if path.startswith("/leaky/"):
        LEAKED.append(Order(len(LEAKED)))
    elif path.startswith("/stored/"):
        STORED[len(STORED)] = {"id": len(STORED), "name": "item"}  # not tracked by gc
    elif path.startswith("/cached/"):
        CACHE[int(path.rsplit("/", 1)[1])] = Entry(1)
        while len(CACHE) > 10:
            CACHE.popitem(last=False)
    elif path.startswith("/boom"):
        raise Boom("from the app")
    elif path.startswith("/missing"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no"]
    scratch = [{"i": i} for i in range(20)]  # garbage: created and freed by every request
    del scratch
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def call(mw: Any, path: str, method: str = "GET", **extra: Any) -> bytes:
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(PATH_INFO=path, REQUEST_METHOD=method, **extra)
    result = mw(environ, lambda status, headers, exc_info=None: None)
    try:
        return b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def routes(mw: LeakMiddleware) -> dict[str, dict[str, Any]]:
    return {r["route"]: r for r in mw.status()["routes"]}


def test_leaking_route_is_flagged_with_its_type_clean_and_bounded_cache_are_not() -> None:
    mw = LeakMiddleware(app, sample=1.0, budget=1.0, directory=None)
    for i in range(60):
        call(mw, f"/leaky/{i}")
        call(mw, f"/clean/{i}")
        call(mw, f"/cached/{i}")
        call(mw, f"/stored/{i}")
    by_route = routes(mw)
    leaky = by_route["GET /leaky/{id}"]
    assert leaky["leaking"], leaky
    assert leaky["top_types"][0]["type"] == f"{__name__}.Order"
    assert leaky["retained_objects_per_request"] >= 1
    assert leaky["retained_bytes_per_request"] > 0
    assert not by_route["GET /clean/{id}"]["leaking"], by_route["GET /clean/{id}"]
    assert by_route["GET /clean/{id}"]["retained_objects_per_request"] < 0.5
    assert not by_route["GET /cached/{id}"]["leaking"], by_route["GET /cached/{id}"]
    stored = by_route["GET /stored/{id}"]
    assert stored["leaking"], stored
    assert stored["top_types"] == [{"type": "dict", "per_request": 1.0}]
    (held,) = stored["containers"]
    assert held["container"] == f"{__name__}:STORED" and held["per_request"] == 1.0
    assert held["kind"] == "dict" and held["path"] == f"sys.modules['{__name__}'].STORED[...]"
    assert held["hint"].startswith("an unbounded cache")
    assert all(r["requests"] == 60 and r["sampled"] == 60 for r in by_route.values())
    status = mw.status()
    assert set(status) >= STATUS_KEYS
    assert all(set(r) >= ROUTE_KEYS for r in status["routes"])
    assert {r["route"] for r in status["routes"][:2]} == {"GET /leaky/{id}", "GET /stored/{id}"}
    assert status["requests"] == status["sampled"] == 240


REQUEST_STATE: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("state")


def test_what_context_variables_hold_is_in_flight_not_retained() -> None:
    # Frameworks keep the current request in a context variable, set anew by every request:
    # what it holds lives on in the thread's context until the next request replaces it.
    def stateful(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        REQUEST_STATE.set({"user": Held(), "path": [environ["PATH_INFO"]]})
        start_response("200 OK", [])
        return [b"ok"]

    mw = LeakMiddleware(stateful, sample=1.0, budget=1.0)
    for i in range(20):
        call(mw, f"/state/{i}")
    row = routes(mw)["GET /state/{id}"]
    assert row["sampled"] == 20 and row["retained_objects_per_request"] == 0, row


def test_route_names_template_ids() -> None:
    assert route_template("GET", "/items/42") == "GET /items/{id}"
    assert route_template("get", "/u/0b6f8c1e-2c49-4f55-9c1d-8a7d2a1f0e11/x") == "GET /u/{id}/x"
    assert route_template("POST", "/blob/deadbeef1234") == "POST /blob/{id}"
    assert route_template("GET", "/t/" + "aZ9" * 10) == "GET /t/{id}"
    assert route_template("GET", "/about/team") == "GET /about/team"
    assert route_template("BREW", "/pot") == "OTHER /pot"
    mw = LeakMiddleware(app, sample=1.0, route=lambda environ: environ.get("x.route"))
    call(mw, "/clean/1", **{"leakscope.route": "clean.item"})
    call(mw, "/clean/2", **{"x.route": "by-function"})
    call(mw, "/missing/123")
    call(mw, "/missing/abc")
    call(mw, "/clean/7", method="POST")
    assert set(routes(mw)) == {"clean.item", "by-function", "<unmatched>", "POST /clean/{id}"}
    assert routes(mw)["<unmatched>"]["requests"] == 2


def test_a_route_function_that_raises_falls_back_to_the_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def bad(environ: dict[str, Any]) -> str:
        raise RuntimeError("route lookup failed")

    mw = LeakMiddleware(app, sample=1.0, route=bad)
    with caplog.at_level(logging.ERROR, logger="leakscope"):
        assert call(mw, "/clean/5") == b"ok"
        assert call(mw, "/clean/6") == b"ok"
    assert set(routes(mw)) == {"GET /clean/{id}"}
    assert sum("route function raised" in r.getMessage() for r in caplog.records) == 1


def test_budget_limits_the_time_spent_measuring() -> None:
    mw = LeakMiddleware(app, sample=1.0, budget=0.001, interval=0.001)
    for i in range(400):
        call(mw, f"/clean/{i}")
    overhead = mw.status()["overhead"]
    # Initial credit plus what the budget accrued, plus at most one measurement's overshoot
    # (a measurement starts only while credit is left, so credit never sinks below minus
    # the longest one; the first census of a big test process can itself take 50+ ms).
    allowed = INITIAL_CREDIT + 0.001 * overhead["wall_seconds"]
    assert overhead["measured_seconds"] <= allowed + overhead["largest_seconds"] + 1e-6, overhead
    assert overhead["skipped_budget"] > 0
    assert mw.status()["sampled"] < 400


def test_the_heap_census_runs_once_per_interval_not_per_request() -> None:
    mw = LeakMiddleware(app, sample=1.0, budget=1.0, interval=3600.0)
    for i in range(50):
        call(mw, f"/clean/{i}")
    status = mw.status()
    assert len(status["timeline"]) == 1
    point = status["timeline"][0]
    assert set(point) == {"time", "rss", "blocks", "objects", "types", "growing", "routes"}
    assert point["objects"] > 0 and len(point["types"]) <= timeline.TYPES
    assert point["growing"] == {}  # nothing to compare the first point with


def test_timeline_is_bounded_by_history_and_growth_is_reported() -> None:
    mw = LeakMiddleware(app, sample=1.0, budget=1.0, interval=1e-9, history=5)
    call(mw, "/leaky/first")
    first = mw.status()["timeline"][0]["time"]
    deadline = time.monotonic() + 30
    # A census per request while the budget allows: until the first point was dropped.
    while mw.status()["timeline"][0]["time"] == first:
        assert time.monotonic() < deadline
        for i in range(10):
            call(mw, f"/leaky/{i}")
    status = mw.status()
    assert len(status["timeline"]) == 5
    # Each point also says which types grew since the one before, and what the routes
    # that retain most retained per request.
    last = status["timeline"][-1]
    assert last["growing"].get(f"{__name__}.Order", 0) > 0, last["growing"]
    assert last["routes"]["GET /leaky/{id}"]["objects"] >= 1, last["routes"]
    assert len(last["growing"]) <= timeline.GROWING
    growth = status["growth"]
    assert growth["objects"] is not None and growth["blocks"] != 0
    assert any(t["type"] == f"{__name__}.Order" and t["delta"] > 0 for t in growth["types"])


def test_exceptions_from_the_app_propagate_unchanged() -> None:
    mw = LeakMiddleware(app, sample=1.0, budget=1.0)
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = "/boom"
    with pytest.raises(Boom, match="from the app"):
        mw(environ, lambda *a: None)
    del environ
    # The failed request ended: later requests are still sampled.
    for i in range(3):
        call(mw, f"/clean/{i}")
    assert mw.status()["sampled"] == 3
    assert routes(mw)["GET /boom"] == {**routes(mw)["GET /boom"], "requests": 1, "sampled": 0}
    assert mw.status()["overhead"]["skipped_busy"] == 0


def test_leakscope_failures_never_break_a_request(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("leakscope bug")

    mw = LeakMiddleware(app, sample=1.0, budget=1.0, interval=1e-9)
    monkeypatch.setattr(sampler, "retained", broken)
    monkeypatch.setattr(timeline, "tracked_census", broken)
    monkeypatch.setattr(Sampler, "begin", broken)
    with caplog.at_level(logging.ERROR, logger="leakscope"):
        assert call(mw, "/clean/1") == b"ok"
    monkeypatch.undo()
    monkeypatch.setattr(sampler, "retained", broken)
    monkeypatch.setattr(timeline, "tracked_census", broken)
    with caplog.at_level(logging.ERROR, logger="leakscope"):
        assert call(mw, "/clean/2") == b"ok"
    assert any("leakscope bug" in r.getMessage() or r.exc_info for r in caplog.records)
    monkeypatch.undo()
    assert call(mw, "/clean/3") == b"ok"  # the failed requests ended: this one is measured
    status = mw.status()
    assert status["requests"] == 3 and status["sampled"] == 1
    assert status["overhead"]["skipped_busy"] == 0


def test_no_reference_to_request_objects_is_kept() -> None:
    mw = LeakMiddleware(app, sample=1.0, budget=1.0)
    refs: list[weakref.ref[Any]] = []

    def holding(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        held = Held()
        refs.append(weakref.ref(held))
        environ["app.object"] = held
        start_response("200 OK", [])
        yield b"x"

    mw.app = holding
    for i in range(5):
        assert call(mw, f"/items/{i}") == b"x"
    gc.collect()
    assert len(refs) == 5 and all(r() is None for r in refs)


def test_threads_share_one_middleware_safely() -> None:
    mw = LeakMiddleware(app, sample=1.0, budget=1.0, interval=0.01)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def worker(k: int) -> None:
        try:
            start.wait()
            for i in range(40):
                assert call(mw, f"/clean/{k * 100 + i}") == b"ok"
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    status = mw.status()
    assert status["requests"] == 240
    assert sum(r["requests"] for r in status["routes"]) == 240
    assert not any(r["leaking"] for r in status["routes"])
    # A sample is measured only when no other request ran meanwhile; the rest are skipped.
    overhead = status["overhead"]
    assert status["sampled"] + overhead["skipped_busy"] <= 240


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="WSGI application"):
        LeakMiddleware(42)  # type: ignore[arg-type]
    for kwargs, field in [
        ({"sample": 0}, "sample"),
        ({"sample": 1.5}, "sample"),
        ({"budget": -1}, "budget"),
        ({"interval": float("nan")}, "interval"),
        ({"history": 0}, "history"),
    ]:
        with pytest.raises(ValueError, match=field):
            LeakMiddleware(app, **kwargs)
    with pytest.raises(TypeError, match="route"):
        LeakMiddleware(app, route="x")  # type: ignore[arg-type]


def test_sample_and_budget_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    def settings() -> tuple[float, float]:
        mw = LeakMiddleware(app)
        return mw.sample, mw.status()["overhead"]["budget"]

    monkeypatch.delenv("LEAKSCOPE_SAMPLE", raising=False)
    monkeypatch.delenv("LEAKSCOPE_BUDGET", raising=False)
    assert settings() == (DEFAULT_REQUEST_SAMPLE, DEFAULT_BUDGET) == (1.0, 0.01)
    monkeypatch.setenv("LEAKSCOPE_SAMPLE", "0.25")
    monkeypatch.setenv("LEAKSCOPE_BUDGET", "0.05")
    assert settings() == (0.25, 0.05)
    assert LeakMiddleware(app, sample=0.5, budget=0.2).status()["overhead"]["budget"] == 0.2
    monkeypatch.setenv("LEAKSCOPE_SAMPLE", "lots")
    monkeypatch.setenv("LEAKSCOPE_BUDGET", "2")  # out of (0, 1]: ignored, with a warning
    assert settings() == (DEFAULT_REQUEST_SAMPLE, DEFAULT_BUDGET)


def test_workers_from_a_directory(tmp_path: Any) -> None:
    mw = LeakMiddleware(app, sample=1.0, budget=1.0, directory=tmp_path)
    call(mw, "/clean/1")
    mw.publish()
    assert (tmp_path / f"worker-{mw.status()['pid']}.json").exists()
    workers = mw.workers()
    assert [w["pid"] for w in workers] == [mw.status()["pid"]]
    assert LeakMiddleware(app).workers()[0]["requests"] == 0


@pytest.mark.slow
def test_a_forked_child_starts_afresh() -> None:
    result = run_python_json(
        """
        import json, os
        from wsgiref.util import setup_testing_defaults
        from leakscope.web.middleware import LeakMiddleware

        def app(environ, start_response):
            start_response("200 OK", [])
            return [b"ok"]

        mw = LeakMiddleware(app, sample=1.0, budget=1.0)
        for i in range(3):
            env = {}
            setup_testing_defaults(env)
            b"".join(mw(env, lambda *a: None))
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            s = mw.status()
            os.write(w, json.dumps([s["pid"], s["requests"], os.getpid()]).encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        child = json.loads(os.read(r, 1000))
        print(json.dumps({"parent": [mw.status()["pid"], mw.status()["requests"], os.getpid()],
                          "child": child}))
        """
    )
    parent_pid, parent_requests, parent_real = result["parent"]
    child_pid, child_requests, child_real = result["child"]
    assert parent_pid == parent_real and parent_requests == 3
    assert child_pid == child_real != parent_real and child_requests == 0


def test_a_request_overlapping_a_sample_voids_it() -> None:
    mw = LeakMiddleware(app, sample=1.0, budget=1.0)

    def outer(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/outer":
            assert call(mw, "/clean/1") == b"ok"  # another request while this one is sampled
        return app(environ, start_response)

    mw.app = outer
    call(mw, "/outer")
    call(mw, "/clean/2")
    status = mw.status()
    assert status["overhead"]["skipped_busy"] == 1
    by_route = routes(mw)
    assert by_route["GET /outer"]["sampled"] == 0
    assert by_route["GET /clean/{id}"] == {
        **by_route["GET /clean/{id}"],
        "requests": 2,
        "sampled": 1,
    }


def test_after_the_first_scan_only_containers_that_changed_are_read() -> None:
    containers = Containers()
    containers.rescan()
    everything = len(containers.entries)
    assert f"{__name__}:STORED" in {e[4] for e in containers.entries}
    STORED[-1] = {"id": -1}
    try:
        containers.refresh()  # a timeline point: every container read once
        keys = {e[4] for e in containers.entries}
        assert f"{__name__}:STORED" in keys
        assert len(keys) < everything / 2
        assert len(containers.lengths()) == len(keys)
    finally:
        del STORED[-1]


def test_a_response_never_closed_still_ends_its_request() -> None:
    mw = LeakMiddleware(app, sample=1.0, budget=1.0)
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    result = mw(environ, lambda *a: None)
    assert b"".join(result) == b"ok"
    del result  # dropped without close(), as a broken server would
    assert call(mw, "/clean/1") == b"ok"  # no longer blocked by the abandoned request
    assert call(mw, "/clean/2") == b"ok"
    status = mw.status()
    assert status["sampled"] == 2 and status["overhead"]["skipped_busy"] == 0


@pytest.mark.slow
def test_a_bounded_cache_of_dicts_is_cleared_by_the_heap_census() -> None:
    # In a fresh process: the timeline's censuses see the whole heap, and in a test worker
    # that heap also holds what earlier tests left (freed between points: decreases).
    out = run_python_json(
        """
        import functools, json
        from wsgiref.util import setup_testing_defaults
        from leakscope.web.middleware import LeakMiddleware

        @functools.lru_cache(maxsize=16)
        def lookup(n):
            # A bounded cache of plain dicts: entries cannot be followed by weak reference.
            return {"n": [n]}

        def cached(environ, start_response):
            lookup(int(environ["PATH_INFO"].rsplit("/", 1)[1]))
            start_response("200 OK", [])
            return [b"ok"]

        def call(mw, path):
            environ = {}
            setup_testing_defaults(environ)
            environ["PATH_INFO"] = path
            result = mw(environ, lambda status, headers, exc_info=None: None)
            b"".join(result)
            getattr(result, "close", lambda: None)()

        # The schedule never fires (interval 3600 s): the test takes the censuses itself,
        # after the first request (the baseline), after the warm-up and at the end.
        mw = LeakMiddleware(cached, sample=1.0, budget=1.0, interval=3600.0)
        for i in range(200):
            call(mw, f"/lookup/{i}")
            if i == 20:
                assert mw.take_point()
        assert mw.take_point()
        assert len(mw.status()["timeline"]) == 3
        status = mw.status()
        print(json.dumps({"routes": status["routes"], "growth": status["growth"]}))
        """
    )
    (row,) = out["routes"]
    assert row["retained_objects_per_request"] >= 1  # each request adds an entry...
    assert not row["leaking"], row  # ...and the heap shows the cache does not grow
    # The timeline's own points are not counted as the application's growth.
    assert all(abs(t["delta"]) < 50 for t in out["growth"]["types"]), out["growth"]


@pytest.mark.slow
def test_retained_dicts_wait_for_a_second_census_that_shows_them_growing() -> None:
    # Dicts take no weak reference: until two heap censuses exist, a route that keeps
    # them (in an object, not a module container) is not called leaking; then it is, since
    # the census sees dicts grow.  A fresh process: the censuses see the whole heap.
    out = run_python_json(
        """
        import json
        from wsgiref.util import setup_testing_defaults
        from leakscope.web.middleware import LeakMiddleware

        class Registry:
            def __init__(self):
                self.entries = []

        registry = Registry()

        def app(environ, start_response):
            registry.entries.append({"n": [len(registry.entries)]})
            start_response("200 OK", [])
            return [b"ok"]

        def call(mw):
            environ = {}
            setup_testing_defaults(environ)
            result = mw(environ, lambda status, headers, exc_info=None: None)
            b"".join(result)
            result.close()

        # One census (the first request's); the test takes the second one itself.
        mw = LeakMiddleware(app, sample=1.0, budget=1.0, interval=3600.0)
        for _ in range(40):
            call(mw)
        (before,) = mw.status()["routes"]
        assert mw.take_point()
        (after,) = mw.status()["routes"]
        print(json.dumps({"before": before, "after": after}))
        """
    )
    before, after = out["before"], out["after"]
    assert before["sampled"] == 40 and before["retained_objects_per_request"] >= 2
    assert not before["leaking"], before
    assert after["leaking"], after
    assert after["top_types"][0]["type"] in {"dict", "list"}
