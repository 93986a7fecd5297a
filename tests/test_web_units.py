"""The units under the WSGI middleware, each on its own: budget, naming, route table and
verdict, timeline, sampler, status assembly, publishing, fork handling and endpoints."""

from __future__ import annotations

import gc
import os
import sys
import weakref
from pathlib import Path
from typing import Any

import pytest

from leakscope.web.budget import INITIAL_CREDIT, MAX_CREDIT, Budget
from leakscope.web.core import Monitor, monitors
from leakscope.web.endpoints import PATHS, Call, Endpoints
from leakscope.web.forks import Registry, stale
from leakscope.web.holders import fix_hint, holder, parse_key, root_path
from leakscope.web.naming import OTHER, OWN, UNMATCHED, RouteNamer, fallback_name
from leakscope.web.publishing import Publisher
from leakscope.web.sampler import Sampler
from leakscope.web.status import growth_between, merge_routes
from leakscope.web.table import WARMUP_SAMPLES, RouteTable, Sample
from leakscope.web.timeline import Timeline
from leakscope.web.verdict import HeapWindow, route_leaking


# Python 3.12 starts with the interpreter's own objects frozen; freezing and unfreezing
# around a measurement unfreezes those too (never the host's: see host_froze_objects).
def unfrozen(before: int) -> int:
    return 0 if sys.version_info[:2] == (3, 12) and before <= 2000 else before


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Kept:
    """What the sampler test retains."""


class Tagged:
    """A retained object of a class with a ``__dict__`` (Python 3.11 finds it by size)."""

    def __init__(self) -> None:
        self.tag = str(id(self)) * 3  # allocated here, never from a free list


KEPT: list[Kept] = []


# -- budget ----------------------------------------------------------------------------------


def test_budget_accrues_credit_with_the_clock_and_pauses_when_spent() -> None:
    clock = Clock()
    budget = Budget(0.01, clock=clock)
    assert budget.open()
    budget.spend(INITIAL_CREDIT + 0.01)  # 10 ms overdrawn
    assert budget.paused(clock.now) and not budget.open()
    assert budget.skipped == 1
    clock.now += 0.5  # accrues 5 ms: still overdrawn
    assert not budget.open()
    clock.now += 0.6  # 11 ms in all: positive again
    assert not budget.paused(clock.now) and budget.open()
    clock.now += 10_000  # a long quiet spell accrues no more than the cap
    assert budget.affords(MAX_CREDIT) and not budget.affords(MAX_CREDIT + 0.01)
    overhead = budget.overhead()
    assert overhead["measured_seconds"] == pytest.approx(INITIAL_CREDIT + 0.01)
    assert overhead["wall_seconds"] == pytest.approx(10_001.1)


def test_an_unlimited_budget_never_refuses() -> None:
    budget = Budget(1.0, clock=Clock())
    budget.spend(100.0)
    assert budget.unlimited and budget.open() and budget.affords(50.0)


@pytest.mark.parametrize("value", [0, -1, 1.5, float("nan"), float("inf"), True, "0.1"])
def test_budget_rejects_bad_fractions(value: Any) -> None:
    with pytest.raises(ValueError, match="budget"):
        Budget(value)


# -- naming ----------------------------------------------------------------------------------


def test_the_namer_prefers_the_environ_then_the_function_then_the_path() -> None:
    namer = RouteNamer(lambda environ: environ.get("x"))
    base = {"REQUEST_METHOD": "GET", "PATH_INFO": "/items/42"}
    assert namer({**base, "leakscope.route": "given", "x": "fn"}, "200 OK") == "given"
    assert namer({**base, "x": "fn"}, "200 OK") == "fn"
    assert namer(base, "200 OK") == "GET /items/{id}"
    assert namer(base, "404 Not Found") == UNMATCHED
    assert namer(None, "200 OK") == OTHER
    assert namer({**base, "leakscope.route": "r" * 500}, "") == "r" * 200
    assert fallback_name(b"GET", None, 404) == UNMATCHED
    with pytest.raises(TypeError, match="route"):
        RouteNamer("nope")  # type: ignore[arg-type]


# -- route table and verdict -----------------------------------------------------------------


def sample(objects: int, kind: str = "app.Item") -> Sample:
    return Sample(objects, objects * 48, {kind: objects} if objects else {}, [])


def test_the_verdict_needs_steady_retention_after_warm_up() -> None:
    common: dict[str, Any] = {"grew_container": True, "top": ("app.Item", 4), "route": "r"}
    assert route_leaking([1, 1, 1, 1], still_alive=None, heap=None, **common)
    assert not route_leaking([1, 1, 1], still_alive=None, heap=None, **common)  # too few
    assert not route_leaking([1, 0, 0, 1], still_alive=None, heap=None, **common)  # not steady
    assert not route_leaking([1, 1, 1, 1], still_alive=False, heap=None, **common)  # dropped
    # Objects that cannot be followed and no container grew: wait for a second census...
    waiting = {**common, "grew_container": False}
    assert not route_leaking([1, 1, 1, 1], still_alive=None, heap=None, **waiting)
    # ...which either shows the type grew with the route's requests, or that it did not.
    grew = HeapWindow({"app.Item": 0}, {"app.Item": 100}, {"r": 0}, {"r": 100})
    flat = HeapWindow({"app.Item": 0}, {"app.Item": 5}, {"r": 0}, {"r": 100})
    assert route_leaking([1, 1, 1, 1], still_alive=None, heap=grew, **waiting)
    assert not route_leaking([1, 1, 1, 1], still_alive=None, heap=flat, **waiting)


def test_the_table_counts_routes_skips_warm_up_and_own_endpoints_and_is_bounded() -> None:
    table = RouteTable(max_routes=2)
    for _ in range(WARMUP_SAMPLES + 5):
        table.record("leaky", sample(1))
        table.record("clean", sample(0))
    table.record(OWN, sample(5))  # leakscope's own endpoint: not the application's
    table.record("third", None)  # over the bound: counted under <other>
    rows = {r["route"]: r for r in table.rows()}
    assert set(rows) == {"leaky", "clean", OTHER}
    assert rows["leaky"]["requests"] == rows["leaky"]["sampled"] == WARMUP_SAMPLES + 5
    assert rows["leaky"]["retained_objects_per_request"] == 1.0
    assert rows["leaky"]["top_types"] == [{"type": "app.Item", "per_request": 1.0}]
    assert rows["clean"]["leaking"] is False and rows[OTHER]["requests"] == 1
    assert table.sampled == 2 * (WARMUP_SAMPLES + 5)
    assert list(table.retaining(1)) == ["leaky"]


# -- timeline --------------------------------------------------------------------------------


def test_the_timeline_schedule_comes_sooner_at_first_and_is_bounded() -> None:
    clock = Clock()
    timeline = Timeline(interval=8.0, history=3, clock=clock)
    table = RouteTable()
    assert timeline.due() and not timeline.due()
    timeline.take(table)
    assert timeline.window() is None  # one census: nothing to compare
    gaps = []
    for _ in range(5):
        start = clock.now
        while not timeline.due():
            clock.now += 0.5
        gaps.append(clock.now - start)
        timeline.take(table)
    assert gaps == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert len(timeline.points) == 3 and timeline.window() is not None
    timeline.postpone()
    assert timeline.next_at == clock.now + 2.0


def test_take_point_forces_a_census_whatever_the_schedule() -> None:
    monitor = Monitor(budget=1.0, interval=3600.0, clock=Clock())
    n = monitor.request_started()
    monitor.request_ended(n, "r", monitor.try_sample(n))
    assert len(monitor.status()["timeline"]) == 1
    assert monitor.take_point() and monitor.take_point()
    assert len(monitor.status()["timeline"]) == 3


# -- sampler ---------------------------------------------------------------------------------


@pytest.mark.version_sensitive
def test_the_sampler_counts_what_stays_alive_not_garbage_nor_what_is_in_flight() -> None:
    sampler = Sampler()
    in_flight: dict[str, Any] = {}
    mark = sampler.begin()
    KEPT.append(Kept())
    garbage = [Kept() for _ in range(50)]
    del garbage
    in_flight["held"] = Kept()
    result = sampler.measure(mark, [in_flight], None)
    assert result is not None
    assert result.types.get(f"{__name__}.Kept") == 1, result.types
    assert result.refs and result.refs[0]() is KEPT[-1]


def test_the_sampler_keeps_no_strong_reference() -> None:
    sampler = Sampler()
    mark = sampler.begin()
    KEPT.append(Kept())
    ref = weakref.ref(KEPT[-1])
    result = sampler.measure(mark, [], None)
    assert result is not None
    KEPT.pop()
    gc.collect()
    assert ref() is None


# -- status assembly -------------------------------------------------------------------------


def test_merge_routes_weights_by_samples_and_ignores_bad_rows() -> None:
    states: list[dict[str, Any]] = [
        {"pid": 1, "routes": [{"route": "a", "requests": 10, "sampled": 3,
                               "retained_objects_per_request": 2.0, "leaking": True,
                               "top_types": [{"type": "app.X", "per_request": 2.0}],
                               "containers": [{"container": "app:C", "per_request": 1.0}]}]},
        {"pid": 2, "routes": [{"route": "a", "requests": 5, "sampled": 1,
                               "retained_objects_per_request": 0.0, "leaking": False},
                              "not a row", {"route": "b", "sampled": "x"}]},
        {"pid": 3, "routes": "nonsense"},
    ]  # fmt: skip
    merged = {r["route"]: r for r in merge_routes(states)}
    a = merged["a"]
    assert a["requests"] == 15 and a["sampled"] == 4 and a["leaking"] is True
    assert a["retained_objects_per_request"] == pytest.approx(1.5)
    assert a["workers"] == [1, 2]
    assert a["containers"] == [{"container": "app:C", "per_request": pytest.approx(0.75)}]
    assert merged["b"]["requests"] == 0


def test_growth_between_points() -> None:
    points = [
        {"time": 1.0, "rss": 10, "blocks": 5, "objects": 3, "types": {"dict": 2}},
        {"time": 4.0, "rss": 30, "blocks": "x", "objects": 9, "types": {"dict": 5, "list": 1}},
    ]
    growth = growth_between(points, 0, -1)
    assert growth["rss"] == 20 and growth["blocks"] is None and growth["seconds"] == 3.0
    assert growth["types"] == [{"type": "dict", "delta": 3}, {"type": "list", "delta": 1}]


# -- publishing and forks --------------------------------------------------------------------


def test_the_publisher_is_due_every_interval_and_reads_every_worker(tmp_path: Path) -> None:
    clock = Clock()
    publisher = Publisher(tmp_path, every=2.0, clock=clock)
    assert publisher.due() and not publisher.due()
    clock.now += 2.0
    assert publisher.due()
    publisher.publish({"pid": os.getpid(), "requests": 1})
    (tmp_path / "worker-1.json").write_text('{"pid": 1, "requests": 7}')
    own = {"pid": os.getpid(), "requests": 2}
    workers = publisher.workers(own)
    assert [w["requests"] for w in workers] == [7, 2]  # by pid; this one's fresh state
    assert Publisher(None).workers(own) == [own] and not Publisher(None).due()
    publisher.directory = str(tmp_path / "missing" / "\0bad")
    publisher.publish({"pid": 5})  # logged, never raised


def test_a_registry_resets_objects_of_another_process() -> None:
    class Thing:
        def __init__(self, pid: int) -> None:
            self.pid = pid
            self.resets = 0

        def after_fork(self) -> None:
            self.resets += 1
            self.pid = os.getpid()

    registry: Registry[Thing] = Registry()
    here, copied = Thing(os.getpid()), Thing(os.getpid() + 1_000_000)
    registry.add(here)
    registry.add(copied)
    assert stale(copied) and not stale(here)
    registry.reset_stale()
    assert (here.resets, copied.resets) == (0, 1) and registry.instances() == [here, copied]
    del copied
    gc.collect()
    assert registry.instances() == [here]


def test_every_monitor_is_listed() -> None:
    monitor = Monitor(budget=1.0)
    assert monitors()[-1] is monitor


# -- holders ---------------------------------------------------------------------------------


def test_container_keys() -> None:
    assert parse_key("app:_CACHE") == ("app", "_CACHE", "")
    assert parse_key("a.b:Reg.items") == ("a.b", "Reg", "items")
    assert root_path("a.b:Reg.items") == "sys.modules['a.b'].Reg.items"
    assert fix_hint("app:_CACHE", "dict").startswith("an unbounded cache")
    assert fix_hint("app:LOG", "list").startswith("a container that only grows")
    assert fix_hint("app:f.__defaults__[0]", "list").startswith("avoid mutable default")
    row = holder("app:_CACHE", "dict", 2.0)
    assert row == {
        "container": "app:_CACHE",
        "kind": "dict",
        "per_request": 2.0,
        "path": "sys.modules['app']._CACHE[...]",
        "hint": fix_hint("app:_CACHE", "dict"),
    }


# -- endpoints -------------------------------------------------------------------------------


def test_endpoints_refuse_before_anything_else_and_answer_with_the_token() -> None:
    monitor = Monitor(budget=1.0)
    clock = Clock()
    endpoints = Endpoints(monitor, allow=["127.0.0.1"], clock=clock)
    ok = {"authorization": "Bearer tok", "remote_addr": "127.0.0.1"}
    for path in PATHS:
        assert endpoints.handle(Call("GET", path, **ok), None).status == 404, path
        assert endpoints.handle(Call("POST", path), "tok").status in (401, 403), path
    assert endpoints.handle(Call("GET", "/nope", **ok), "tok").status == 404
    assert (
        endpoints.handle(Call("GET", "/api/status", authorization="Bearer tok"), "tok").status
        == 403
    )
    status = endpoints.handle(Call("GET", "/api/status", **ok), "tok")
    assert status.status == 200 and status.content_type == "application/json"
    assert ("X-Frame-Options", "DENY") in status.all_headers()
    assert endpoints.handle(Call("POST", "/api/cycles", **ok), "tok").status == 200
    assert endpoints.handle(Call("POST", "/api/cycles", **ok), "tok").status == 429
    clock.now += 11
    assert endpoints.handle(Call("POST", "/api/cycles", **ok), "tok").status == 200
    login = endpoints.handle(
        Call("POST", "/login", form_token="tok", remote_addr="127.0.0.1"), "tok"
    )
    cookie = dict(login.headers)["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert login.status == 303 and "tok" not in cookie
    page = Call("GET", "/", cookie=cookie, remote_addr="127.0.0.1")
    assert endpoints.handle(page, "tok").status == 200
    api = Call("GET", "/api/status", cookie=cookie, remote_addr="127.0.0.1")
    assert endpoints.handle(api, "tok").status == 401  # the cookie opens the page only


# -- interpreter state: the freeze and the tracemalloc window ----------------------------------


@pytest.mark.version_sensitive
def test_a_sample_leaves_the_heap_unfrozen_and_tracemalloc_as_it_was() -> None:
    import tracemalloc

    sampler = Sampler()
    assert not tracemalloc.is_tracing()
    frozen_before = gc.get_freeze_count()
    mark = sampler.begin(sites=True)
    assert tracemalloc.is_tracing() and gc.get_freeze_count() > frozen_before
    KEPT.append(Tagged())  # type: ignore[arg-type]
    result = sampler.measure(mark, [], None)
    assert not tracemalloc.is_tracing() and gc.get_freeze_count() == unfrozen(frozen_before)
    assert result is not None
    site = result.sites[f"{__name__}.Tagged"]
    assert site.split(":")[0].endswith("test_web_units.py"), site
    assert int(site.split(":")[1]) == KEPT_LINE, site
    # Cancelled marks (an overlapping request, an exception) undo the same, once.
    mark = sampler.begin(sites=True)
    sampler.cancel(mark)
    sampler.cancel(mark)
    assert not tracemalloc.is_tracing() and gc.get_freeze_count() == unfrozen(frozen_before)
    assert sampler.measure(mark, [], None) is None


KEPT_LINE = next(
    i
    for i, line in enumerate(Path(__file__).read_text().splitlines(), 1)
    if line.strip() == "KEPT.append(Tagged())  # type: ignore[arg-type]"
)


@pytest.mark.version_sensitive
def test_a_host_s_tracemalloc_is_never_stopped() -> None:
    import tracemalloc

    tracemalloc.start(3)
    try:
        sampler = Sampler()
        mark = sampler.begin(sites=True)
        KEPT.append(Tagged())  # type: ignore[arg-type]
        result = sampler.measure(mark, [], None)
        assert tracemalloc.is_tracing() and tracemalloc.get_traceback_limit() == 3
        assert result is not None and f"{__name__}.Tagged" in result.sites
    finally:
        tracemalloc.stop()


@pytest.mark.slow
@pytest.mark.version_sensitive
def test_a_host_s_freeze_is_never_undone() -> None:
    from _support import run_python_json

    out = run_python_json(
        """
        import gc, json
        from leakscope.web.core import Monitor

        class Item:
            pass

        kept = []
        junk = [[i] for i in range(5000)]
        gc.freeze()  # the host's pre-fork freeze
        frozen = gc.get_freeze_count()
        monitor = Monitor(budget=1.0, interval=3600.0)
        for i in range(12):
            n = monitor.request_started()
            s = monitor.try_sample(n)
            kept.append(Item())
            monitor.request_ended(n, "r", s)
        (row,) = monitor.status()["routes"]
        print(json.dumps({"before": frozen, "after": gc.get_freeze_count(),
                          "top": row["top_types"][0]["type"], "leaking": row["leaking"]}))
        """
    )
    assert out["after"] == out["before"] >= 5000
    assert out["top"] == "__main__.Item" and out["leaking"] is True


@pytest.mark.version_sensitive
def test_an_overlapping_request_voids_the_sample_and_unfreezes_at_once() -> None:
    monitor = Monitor(budget=1.0, interval=3600.0)
    frozen_before = gc.get_freeze_count()
    first = monitor.request_started()
    sampling = monitor.try_sample(first)
    assert sampling is not None and gc.get_freeze_count() > frozen_before
    second = monitor.request_started()  # overlaps: the measurement is void
    assert gc.get_freeze_count() == unfrozen(frozen_before)
    monitor.request_ended(second, "b")
    monitor.request_ended(first, "a", sampling)
    status = monitor.status()
    assert status["sampled"] == 0 and status["overhead"]["skipped_busy"] == 1
    assert gc.get_freeze_count() == unfrozen(frozen_before)


def test_a_request_that_raised_is_counted_not_measured_and_unfreezes() -> None:
    monitor = Monitor(budget=1.0, interval=3600.0)
    frozen_before = gc.get_freeze_count()
    n = monitor.request_started()
    sampling = monitor.try_sample(n)
    assert sampling is not None
    monitor.request_ended(n, "boom", sampling, measure=False)
    assert gc.get_freeze_count() == unfrozen(frozen_before)
    (row,) = monitor.status()["routes"]
    assert (row["requests"], row["sampled"]) == (1, 0)


def test_a_response_dropped_unclosed_does_not_leave_the_heap_frozen() -> None:
    from leakscope.web.middleware import LeakMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    mw = LeakMiddleware(app, budget=1.0, interval=3600.0)
    frozen_before = gc.get_freeze_count()
    result = mw({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda *a: None)
    assert gc.get_freeze_count() > frozen_before  # measured: frozen until it ends
    del result  # dropped without close(), as a broken server would
    gc.collect()
    mw.status()  # or the next request: the measurement is ended, the heap unfrozen
    assert gc.get_freeze_count() == unfrozen(frozen_before)
