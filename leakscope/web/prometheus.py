"""Prometheus metrics of every worker: memory, top types, what each route retains.

Needs the ``prometheus`` extra (``pip install 'pyleakscope[prometheus]'``)::

    from leakscope.prometheus import exposition
    body, content_type = exposition()     # serve it at /metrics

The metrics are read from the worker states that :class:`~leakscope.web.middleware.LeakMiddleware`
publishes (``LEAKSCOPE_DIR``), each labelled with its worker's ``pid``, so whichever
worker answers a scrape shows every live worker, once; a worker that exited (recycled by
``max_requests``) is left out, so its series end.  Nothing is written into
prometheus-client's global registry or its multiprocess files (where custom collectors do
not work): the exposition is built from a private registry each time, which is correct
with or without ``PROMETHEUS_MULTIPROC_DIR``.  Per route: the retained objects and bytes
per request of the recent samples (gauges), whether it leaks (gauge), and counters since
the worker started (``leakscope_route_retained_objects_total``,
``leakscope_route_sampled_total``...) that ``rate()`` can divide.
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
    from leakscope.web.core import monitors
    from leakscope.web.workers import read_workers

    found = monitors()
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


# (name, help, labels, counter?, the state or route field it reads)
_WORKER_METRICS = (
    ("leakscope_worker_rss_bytes", "Resident set size of the worker", "rss", False),
    (
        "leakscope_worker_allocated_blocks",
        "sys.getallocatedblocks() of the worker",
        "blocks",
        False,
    ),
    (
        "leakscope_worker_objects",
        "Objects tracked by the collector at the worker's last census",
        "objects",
        False,
    ),
    ("leakscope_requests", "Requests served by the worker", "requests", True),
    ("leakscope_requests_sampled", "Requests measured by leakscope", "sampled", True),
)
_ROUTE_METRICS = (
    (
        "leakscope_route_retained_objects_per_request",
        "Objects a route's sampled requests retained, per request",
        "retained_objects_per_request",
        False,
    ),
    (
        "leakscope_route_retained_bytes_per_request",
        "Bytes a route's sampled requests retained, per request",
        "retained_bytes_per_request",
        False,
    ),
    ("leakscope_route_leaking", "1 when the route keeps retaining objects", "leaking", False),
    ("leakscope_route_requests", "Requests served per route", "requests", True),
    ("leakscope_route_sampled", "Requests measured per route", "sampled", True),
    (
        "leakscope_route_retained_objects",
        "Objects the route's measured requests retained, since the worker started",
        "retained_objects_total",
        True,
    ),
    (
        "leakscope_route_retained_bytes",
        "Bytes the route's measured requests retained, since the worker started",
        "retained_bytes_total",
        True,
    ),
)


def _family(core: Any, name: str, text: str, labels: list[str], counter: bool) -> Any:
    kind = core.CounterMetricFamily if counter else core.GaugeMetricFamily
    return kind(name, text, labels=labels)


def _last_types(state: dict[str, Any]) -> dict[str, float]:
    timeline = state.get("timeline")
    if not (isinstance(timeline, list) and timeline and isinstance(timeline[-1], dict)):
        return {}
    types = timeline[-1].get("types")
    if not isinstance(types, dict):
        return {}
    values = {str(name): _num(count) for name, count in types.items()}
    return {name: v for name, v in values.items() if v is not None}


def _route_value(route: dict[str, Any], key: str) -> float | None:
    if key == "leaking":
        return 1.0 if route.get("leaking") is True else 0.0
    return _num(route.get(key))


def _families(states: list[dict[str, Any]], core: Any) -> Iterator[Any]:
    workers = [(key, _family(core, n, t, ["pid"], c)) for n, t, key, c in _WORKER_METRICS]
    routes = [(key, _family(core, n, t, ["pid", "route"], c)) for n, t, key, c in _ROUTE_METRICS]
    by_type = _family(
        core,
        "leakscope_worker_type_objects",
        "Objects of the most numerous types at the worker's last census",
        ["pid", "type"],
        False,
    )
    for state in states:
        pid = str(state.get("pid"))
        for key, family in workers:
            value = _num(state.get(key))
            if value is not None:
                family.add_metric([pid], value)
        for name, count in _last_types(state).items():
            by_type.add_metric([pid, name], count)
        rows = state.get("routes")
        for route in rows if isinstance(rows, list) else []:
            if isinstance(route, dict):
                for key, family in routes:
                    value = _route_value(route, key)
                    if value is not None:
                        family.add_metric([pid, str(route.get("route"))], value)
    yield from (family for _, family in workers[:3])
    yield by_type
    yield from (family for _, family in workers[3:])
    yield from (family for _, family in routes)


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
