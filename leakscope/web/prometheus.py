"""Prometheus metrics of every worker: memory, top types, what each route retains.

Needs the ``prometheus`` extra (``pip install 'pyleakscope[prometheus]'``)::

    from leakscope.prometheus import exposition
    body, content_type = exposition()     # serve it at /metrics

The metrics are read from the worker states that :class:`~leakscope.web.middleware.LeakMiddleware`
publishes (``LEAKSCOPE_DIR``), each labelled with its worker's ``pid``, so whichever
worker answers shows every live worker.  Nothing is written into prometheus-client's
global registry or its multiprocess files: the exposition is built from a private
registry each time, which is correct with or without ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from leakscope.errors import MissingDependencyError

__all__ = ["exposition", "worker_states"]


def _client() -> Any:
    try:
        import prometheus_client
        from prometheus_client import core
    except ImportError:
        raise MissingDependencyError(
            "leakscope.prometheus", "prometheus-client", "prometheus"
        ) from None
    return prometheus_client, core


def worker_states() -> list[dict[str, Any]]:
    """The states of every live worker: this process's middleware's view, else ``LEAKSCOPE_DIR``."""
    from leakscope.web.middleware import instances
    from leakscope.web.workers import read_workers

    found = instances()
    if found:
        states = found[-1].workers()
    else:
        directory = os.environ.get("LEAKSCOPE_DIR")
        states = read_workers(directory) if directory else []
    return [s for s in states if s.get("alive", True)]


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _families(states: list[dict[str, Any]], core: Any) -> Iterator[Any]:
    gauge, counter = core.GaugeMetricFamily, core.CounterMetricFamily
    rss = gauge("leakscope_worker_rss_bytes", "Resident set size of the worker", labels=["pid"])
    blocks = gauge(
        "leakscope_worker_allocated_blocks",
        "sys.getallocatedblocks() of the worker",
        labels=["pid"],
    )
    objects = gauge(
        "leakscope_worker_objects",
        "Objects tracked by the collector at the worker's last census",
        labels=["pid"],
    )
    by_type = gauge(
        "leakscope_worker_type_objects",
        "Objects of the most numerous types at the worker's last census",
        labels=["pid", "type"],
    )
    requests = counter("leakscope_requests", "Requests served by the worker", labels=["pid"])
    sampled = counter(
        "leakscope_requests_sampled", "Requests measured by leakscope", labels=["pid"]
    )
    route_objects = gauge(
        "leakscope_route_retained_objects_per_request",
        "Objects a route's sampled requests retained, per request",
        labels=["pid", "route"],
    )
    route_bytes = gauge(
        "leakscope_route_retained_bytes_per_request",
        "Bytes a route's sampled requests retained, per request",
        labels=["pid", "route"],
    )
    route_leaking = gauge(
        "leakscope_route_leaking",
        "1 when the route keeps retaining objects",
        labels=["pid", "route"],
    )
    route_requests = counter(
        "leakscope_route_requests", "Requests served per route", labels=["pid", "route"]
    )
    for state in states:
        pid = str(state.get("pid"))
        for family, key in ((rss, "rss"), (blocks, "blocks"), (objects, "objects")):
            value = _num(state.get(key))
            if value is not None:
                family.add_metric([pid], value)
        for family, key in ((requests, "requests"), (sampled, "sampled")):
            value = _num(state.get(key))
            if value is not None:
                family.add_metric([pid], value)
        timeline = state.get("timeline")
        if isinstance(timeline, list) and timeline and isinstance(timeline[-1], dict):
            types = timeline[-1].get("types")
            if isinstance(types, dict):
                for name, count in types.items():
                    value = _num(count)
                    if value is not None:
                        by_type.add_metric([pid, str(name)], value)
        routes = state.get("routes")
        for route in routes if isinstance(routes, list) else []:
            if not isinstance(route, dict):
                continue
            name = str(route.get("route"))
            for family, key in (
                (route_objects, "retained_objects_per_request"),
                (route_bytes, "retained_bytes_per_request"),
                (route_requests, "requests"),
            ):
                value = _num(route.get(key))
                if value is not None:
                    family.add_metric([pid, name], value)
            route_leaking.add_metric([pid, name], 1.0 if route.get("leaking") is True else 0.0)
    yield from (rss, blocks, objects, by_type, requests, sampled)
    yield from (route_objects, route_bytes, route_leaking, route_requests)


class _Collector:
    def __init__(self, states: list[dict[str, Any]], core: Any) -> None:
        self._states = states
        self._core = core

    def collect(self) -> Iterator[Any]:
        return _families(self._states, self._core)


def exposition() -> tuple[bytes, str]:
    """The leakscope metrics of every live worker in Prometheus text format: ``(body, content type)``.

    Raises :class:`~leakscope.MissingDependencyError` without prometheus-client.
    """
    client, core = _client()
    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(_Collector(worker_states(), core))
    body: bytes = client.generate_latest(registry)
    return body, str(client.CONTENT_TYPE_LATEST)
